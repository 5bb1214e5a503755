import type { FastifyPluginAsync } from 'fastify';
import { sendHtml, sessionOf, type PageOptions } from '../context.js';
import { page } from '../layout.js';
import { KPIS } from '../outcomes/kpis.js';
import { readKpi } from '../outcomes/query.js';
import { outcomesBody, RANGES, type RangeKey } from '../outcomes/view.js';

/**
 * Outcomes: the analytics KPIs as charts over time, each from the read-model
 * view named beside it. Aggregates only (no PHI), so nothing is audited;
 * the range is a GET parameter (a fixed choice, never a value about anyone).
 */
const isRange = (v: unknown): v is RangeKey => typeof v === 'string' && Object.hasOwn(RANGES, v);

export const outcomesPage: FastifyPluginAsync<PageOptions> = (app, { ctx }) => {
  app.get<{ Querystring: { range?: string } }>('/', async (req, reply) => {
    const range: RangeKey = isRange(req.query.range) ? req.query.range : '7d';
    const at = { nowMs: ctx.now(), daysBack: RANGES[range].daysBack };
    const schemaOf = (model: 'analytics' | 'billing') =>
      model === 'analytics' ? ctx.settings.analyticsSchema : ctx.settings.billingSchema;
    // One after another: the pool is small and shared with the other pages.
    const sections = [];
    for (const kpi of KPIS)
      sections.push({ kpi, state: await readKpi(ctx.db, kpi, schemaOf(kpi.model), at) });
    return sendHtml(
      reply,
      page({
        title: 'Outcomes',
        session: sessionOf(req),
        active: '/outcomes',
        body: outcomesBody(sections, range),
        scripts: ['/assets/chart.umd.js', '/assets/charts.js'],
      }),
    );
  });
  return Promise.resolve();
};
