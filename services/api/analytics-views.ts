import { HubError } from '../../libs/errors/index.js';
import { ANALYTICS_VIEWS } from '../../libs/read-models/analytics/views.js';

/**
 * The analytics KPI views as the API exposes them, from the one catalogue
 * the analytics read model creates them from (libs/read-models/analytics):
 * which column is the day, which columns are dimensions, which measures can
 * be summed when rows are grouped more coarsely. Views with percentiles or
 * means cannot be re-aggregated and are served at their own grain only.
 * Pure: builds SQL text from whitelisted names and renders CSV.
 */
export interface ViewSpec {
  name: string;
  dated: boolean;
  dims: readonly string[];
  /** Summable measures; empty means the view is not re-aggregable. */
  sums: readonly string[];
  /** Other measures, served as they are. */
  others: readonly string[];
}

export const VIEW_SPECS: readonly ViewSpec[] = ANALYTICS_VIEWS.filter((v) => v.inApi !== false).map((v) => ({
  name: v.name,
  dated: v.zoned === true,
  ...v.columns,
}));

export const VIEW_NAMES = VIEW_SPECS.map((v) => v.name);
export const ALL_DIMS = [...new Set(VIEW_SPECS.flatMap((v) => v.dims))];
export const ALL_MEASURES = [...new Set(VIEW_SPECS.flatMap((v) => [...v.sums, ...v.others]))];
export const INTERVALS = ['day', 'week', 'month', 'all'] as const;
export type Interval = (typeof INTERVALS)[number];

export interface ViewQuery {
  view: string;
  from?: string;
  to?: string;
  groupBy?: string;
  interval?: Interval;
}

export interface ViewPlan {
  sql: string;
  bindings: string[];
  columns: string[];
  numeric: ReadonlySet<string>;
}

const q = (id: string) => `"${id}"`;

/** Turns a validated request into SQL over `<schema>.<view>`; names come only from VIEW_SPECS. */
export function planView(schema: string, req: ViewQuery): ViewPlan {
  const spec = VIEW_SPECS.find((v) => v.name === req.view);
  if (!spec) throw new HubError('HUB_NOT_FOUND', 'no such analytics view');
  if (!spec.dated && (req.from || req.to || req.interval)) {
    throw new HubError('HUB_INPUT_INVALID', `${spec.name} has no date: from, to and interval do not apply`);
  }
  const where: string[] = [];
  const bindings: string[] = [];
  if (req.from) {
    where.push('day >= ?::date');
    bindings.push(req.from);
  }
  if (req.to) {
    where.push('day <= ?::date');
    bindings.push(req.to);
  }
  const numeric = new Set([...spec.sums, ...spec.others]);
  const whereSql = where.length > 0 ? ` where ${where.join(' and ')}` : '';
  const from = `${q(schema)}.${q(spec.name)}${whereSql}`;
  const grouping = req.groupBy !== undefined || (req.interval !== undefined && req.interval !== 'day');
  if (!grouping) {
    const cols = [...(spec.dated ? ['day'] : []), ...spec.dims, ...spec.sums, ...spec.others];
    const select = cols.map((c) => (c === 'day' ? `to_char(day, 'YYYY-MM-DD') as day` : q(c)));
    const order = [...(spec.dated ? ['day'] : []), ...spec.dims].map(q);
    return {
      sql: `select ${select.join(', ')} from ${from}${order.length ? ` order by ${order.join(', ')}` : ''}`,
      bindings,
      columns: cols,
      numeric,
    };
  }
  if (spec.sums.length === 0) {
    throw new HubError(
      'HUB_INPUT_INVALID',
      `${spec.name} holds percentiles or means and cannot be regrouped`,
    );
  }
  const dims = (req.groupBy ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const d of dims) {
    if (!spec.dims.includes(d)) {
      throw new HubError(
        'HUB_INPUT_INVALID',
        `groupBy: ${spec.name} can be grouped by ${spec.dims.join(', ') || 'date only'}`,
      );
    }
  }
  const interval: Interval = spec.dated ? (req.interval ?? 'day') : 'all';
  const dateCol = interval === 'all' ? [] : [`to_char(date_trunc('${interval}', day), 'YYYY-MM-DD') as day`];
  const groupCols = [...(interval === 'all' ? [] : ['1']), ...dims.map(q)];
  const sums = spec.sums.map((m) => `sum(${q(m)})::bigint as ${q(m)}`);
  const cols = [...(interval === 'all' ? [] : ['day']), ...dims, ...spec.sums];
  const select = [...dateCol, ...dims.map(q), ...sums];
  const group = groupCols.length ? ` group by ${groupCols.join(', ')} order by ${groupCols.join(', ')}` : '';
  return { sql: `select ${select.join(', ')} from ${from}${group}`, bindings, columns: cols, numeric };
}

/** Postgres returns numeric and bigint as strings; measures are numbers in the API. */
export function normaliseRows(
  plan: ViewPlan,
  rows: readonly Record<string, unknown>[],
): Record<string, unknown>[] {
  return rows.map((r) => {
    const out: Record<string, unknown> = {};
    for (const c of plan.columns) {
      const v = r[c];
      out[c] =
        typeof v === 'string' || typeof v === 'number' ? (plan.numeric.has(c) ? Number(v) : String(v)) : null;
    }
    return out;
  });
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s =
    typeof v === 'string'
      ? v
      : typeof v === 'number' || typeof v === 'boolean'
        ? String(v)
        : JSON.stringify(v);
  // Quote when needed; a leading = + - @ is neutralised so a spreadsheet does not run it as a formula.
  const safe = /^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export function toCsv(columns: readonly string[], rows: readonly Record<string, unknown>[]): string {
  const lines = [columns.join(',')];
  for (const r of rows) lines.push(columns.map((c) => csvCell(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
