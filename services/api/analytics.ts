import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import {
  ALL_DIMS,
  ALL_MEASURES,
  INTERVALS,
  VIEW_NAMES,
  VIEW_SPECS,
  normaliseRows,
  planView,
  toCsv,
  type Interval,
} from './analytics-views.js';
import { timedRead } from './db.js';
import { jsonErrors } from './schemas.js';

/**
 * Analytics KPI views by date range and grouping, as JSON or CSV. Only the
 * documented views (aggregates, no patient ids) are reachable; the scope is
 * `system/analytics.read`, which opens nothing identified.
 */
const date = { type: 'string', format: 'date' } as const;

const nullable = (type: 'string' | 'number') => ({ type: [type, 'null'] });
const rowSchema = {
  type: 'object',
  properties: Object.fromEntries<{ type: string[] }>([
    ['day', nullable('string')],
    ...ALL_DIMS.map((d) => [d, nullable('string')] as const),
    ...ALL_MEASURES.map((m) => [m, nullable('number')] as const),
  ]),
};

export function analyticsRoutes(
  app: FastifyInstance,
  opts: { db: Knex; schema: string; timeoutMs: number },
): Promise<void> {
  const security = {
    interaction: 'search-type' as const,
    resourceType: null,
    namesPatient: false,
    access: () => ({ kind: 'analytics' as const }),
  };

  app.get(
    '/views',
    {
      schema: {
        tags: ['analytics'],
        summary: 'The KPI views, their dimensions and measures',
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                dated: { type: 'boolean' },
                dims: { type: 'array', items: { type: 'string' } },
                summable: { type: 'array', items: { type: 'string' } },
                measures: { type: 'array', items: { type: 'string' } },
              },
            },
          },
          ...jsonErrors,
        },
      },
      config: { security },
    },
    () =>
      VIEW_SPECS.map((v) => ({
        name: v.name,
        dated: v.dated,
        dims: v.dims,
        summable: v.sums,
        measures: [...v.sums, ...v.others],
      })),
  );

  app.get<{
    Params: { view: string };
    Querystring: {
      from?: string;
      to?: string;
      groupBy?: string;
      interval?: Interval;
      format?: 'json' | 'csv';
    };
  }>(
    '/views/:view',
    {
      schema: {
        tags: ['analytics'],
        summary:
          'Rows of one KPI view, by date range (local days of the site reporting zone, inclusive) and grouping; JSON or CSV',
        params: {
          type: 'object',
          required: ['view'],
          properties: { view: { type: 'string', enum: VIEW_NAMES } },
        },
        querystring: {
          type: 'object',
          properties: {
            from: date,
            to: date,
            groupBy: {
              type: 'string',
              maxLength: 100,
              description: 'comma-separated dimensions of the view',
            },
            interval: { type: 'string', enum: [...INTERVALS] },
            format: { type: 'string', enum: ['json', 'csv'], default: 'json' },
          },
        },
        response: {
          200: {
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: {
                    view: { type: 'string' },
                    columns: { type: 'array', items: { type: 'string' } },
                    rows: { type: 'array', items: rowSchema },
                  },
                },
              },
              'text/csv': { schema: { type: 'string' } },
            },
          },
          ...jsonErrors,
        },
      },
      config: { security },
    },
    async (req, reply) => {
      const plan = planView(opts.schema, { view: req.params.view, ...req.query });
      const r = await timedRead<{ rows: Record<string, unknown>[] }>(
        opts.db.raw(plan.sql, plan.bindings),
        opts.timeoutMs,
      );
      const rows = normaliseRows(plan, r.rows);
      if (req.query.format === 'csv') {
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="${req.params.view}.csv"`)
          .send(toCsv(plan.columns, rows));
      }
      return reply
        .type('application/json; charset=utf-8')
        .send({ view: req.params.view, columns: plan.columns, rows });
    },
  );
  // Fastify awaits plugins; these register routes synchronously.
  return Promise.resolve();
}
