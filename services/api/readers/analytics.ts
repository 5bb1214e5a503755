import type { Knex } from 'knex';
import type { ViewPlan } from '../analytics-views.js';
import { timedRead } from '../db.js';

/** Runs a planned KPI view (analytics-views.ts decides the SQL from the request). */
export interface AnalyticsReader {
  rows(plan: ViewPlan): Promise<Record<string, unknown>[]>;
}

export function createAnalyticsReader(db: Knex, timeoutMs: number): AnalyticsReader {
  return {
    async rows(plan) {
      const r = await timedRead<{ rows: Record<string, unknown>[] }>(
        db.raw(plan.sql, plan.bindings),
        timeoutMs,
      );
      return r.rows;
    },
  };
}
