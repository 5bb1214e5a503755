import type { FastifyPluginAsync } from 'fastify';
import { jsonErrorHandler } from '../../../libs/http/errors.js';
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
} from '../analytics-views.js';
import type { AnalyticsReader } from '../readers/analytics.js';
import { arrayOf, jsonErrors } from '../schemas.js';
import type { RouteSecurity } from '../security.js';

/**
 * Analytics KPI views by date range and grouping, as JSON or CSV. Only the
 * documented views (aggregates, no patient ids) are reachable; the scope is
 * `system/analytics.read`, which opens nothing identified. Errors are
 * `{code, message, retriable}`.
 */
export interface AnalyticsRoutesOptions {
  /** Stable schema of the analytics read model: the views are planned over it. */
  schema: string;
  reader: AnalyticsReader;
}

interface ViewQuerystring {
  from?: string;
  to?: string;
  groupBy?: string;
  interval?: Interval;
  format?: 'json' | 'csv';
}

const str = { type: 'string' } as const;
const strArr = { type: 'array', items: str } as const;
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

const viewListSchema = {
  tags: ['analytics'],
  summary: 'The KPI views, their dimensions and measures',
  response: {
    200: arrayOf({ name: str, dated: { type: 'boolean' }, dims: strArr, summable: strArr, measures: strArr }),
    ...jsonErrors,
  },
};

const viewRowsSchema = {
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
      groupBy: { type: 'string', maxLength: 100, description: 'comma-separated dimensions of the view' },
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
            properties: { view: str, columns: strArr, rows: { type: 'array', items: rowSchema } },
          },
        },
        'text/csv': { schema: str },
      },
    },
    ...jsonErrors,
  },
};

const security: RouteSecurity = {
  interaction: 'search-type',
  resourceType: null,
  namesPatient: false,
  access: () => ({ kind: 'analytics' }),
};

export const analyticsRoutes: FastifyPluginAsync<AnalyticsRoutesOptions> = (app, opts) => {
  app.setErrorHandler(jsonErrorHandler);

  app.get('/views', { schema: viewListSchema, config: { security } }, () =>
    VIEW_SPECS.map((v) => ({
      name: v.name,
      dated: v.dated,
      dims: v.dims,
      summable: v.sums,
      measures: [...v.sums, ...v.others],
    })),
  );

  app.get<{ Params: { view: string }; Querystring: ViewQuerystring }>(
    '/views/:view',
    { schema: viewRowsSchema, config: { security } },
    async (req, reply) => {
      // The plan refuses groupings a view cannot be summed by (400) before anything is read.
      const plan = planView(opts.schema, { view: req.params.view, ...req.query });
      const rows = normaliseRows(plan, await opts.reader.rows(plan));
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
  // Fastify awaits plugins; this one registers its routes synchronously.
  return Promise.resolve();
};
