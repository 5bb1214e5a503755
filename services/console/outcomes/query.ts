import type { Knex } from 'knex';
import { assertSqlIdentifier, toDbError } from '../../../libs/db/index.js';
import type { Kpi } from './kpis.js';
import { toSeries, type KpiRow } from './series.js';
import type { KpiState } from './view.js';

/** One KPI's query may take this long; a slow one shows as unavailable, the others still render. */
const STATEMENT_TIMEOUT_MS = 5000;
/** Undefined table / schema: the read model (or this view's migration) is not there yet. */
const NOT_THERE = new Set(['42P01', '3F000']);

/** Whether a Postgres error says the relation or schema does not exist (yet): its service has not started. */
export function notThereYet(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NOT_THERE.has(code);
}

/** Runs a KPI's query over its schema and shapes the rows; a missing view or a failure becomes a state, not a page error. */
export async function readKpi(
  db: Knex,
  kpi: Kpi,
  schema: string,
  at: { nowMs: number; daysBack: number },
): Promise<KpiState> {
  try {
    const sql = kpi.sql(`"${assertSqlIdentifier(schema)}"`);
    const rows = await db.transaction(async (trx) => {
      await trx.raw(`select set_config('statement_timeout', ?, true)`, [String(STATEMENT_TIMEOUT_MS)]);
      const r = await trx.raw<{ rows: KpiRow[] }>(sql, [at.nowMs, at.daysBack]);
      return r.rows;
    });
    return rows.length === 0 ? { kind: 'empty' } : { kind: 'data', data: toSeries(kpi, rows) };
  } catch (err) {
    if (notThereYet(err))
      return {
        kind: 'unavailable',
        why: `${kpi.view} is not there yet (its read model has not been built).`,
      };
    return { kind: 'unavailable', why: `${kpi.view} could not be read (${toDbError(err).code}).` };
  }
}
