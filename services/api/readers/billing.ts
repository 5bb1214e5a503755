import type { Knex } from 'knex';
import { timedRead } from '../db.js';

/**
 * Reads of the billing read model (services/projector-billing) through its
 * stable schema's views: accounts by status, an account's charges (prices
 * joined from the chargemaster), and the billing-accuracy worklist.
 */
export const ACCOUNT_STATUSES = ['placeholder', 'open', 'discharged', 'cancelled'] as const;
export const WORKLIST_PROBLEMS = [
  'resulted_order_without_charge',
  'charge_on_cancelled_encounter',
  'charge_without_price',
] as const;

export interface Account {
  encounterId: unknown;
  patientId: unknown;
  encounterClass: unknown;
  admittedAt: string | null;
  dischargedAt: string | null;
  status: unknown;
  payer: unknown;
}

export type ChargeLine = Record<string, unknown>;
export type WorklistItem = Record<string, unknown>;

export interface ListPage<T> {
  total: number;
  items: T[];
}

export interface BillingReader {
  accounts(status: string | undefined, count: number, offset: number): Promise<ListPage<Account>>;
  /** The account with its charge lines; null when there is no such account. */
  charges(
    encounterId: string,
  ): Promise<{ account: Account; patientId: string; charges: ChargeLine[] } | null>;
  worklist(problem: string | undefined, count: number, offset: number): Promise<ListPage<WorklistItem>>;
}

type Row = Record<string, unknown>;

const iso = (v: unknown): string | null =>
  v instanceof Date ? v.toISOString() : typeof v === 'string' || typeof v === 'number' ? String(v) : null;

const toAccount = (r: Row): Account => ({
  encounterId: r['encounter_id'],
  patientId: r['patient_id'],
  encounterClass: r['encounter_class'] ?? null,
  admittedAt: iso(r['admitted_at']),
  dischargedAt: iso(r['discharged_at']),
  status: r['status'],
  payer: r['payer'] ?? null,
});

const toCharge = (r: Row): ChargeLine => ({
  lineId: r['line_id'],
  patientId: r['patient_id'],
  orderId: r['order_id'] ?? null,
  encounterId: r['encounter_id'] ?? null,
  code: r['code'],
  description: r['description'] ?? null,
  category: r['category'],
  priority: r['priority'] ?? null,
  orderedAt: iso(r['ordered_at']),
  firstFinalAt: iso(r['first_final_at']),
  finalResultId: r['final_result_id'] ?? null,
  cpt: r['cpt'] ?? null,
  priceCents: r['price_cents'] ?? null,
  status: r['status'],
});

const toWorklistItem = (r: Row): WorklistItem => ({
  problem: r['problem'],
  lineId: r['line_id'],
  patientId: r['patient_id'],
  encounterId: r['encounter_id'] ?? null,
  code: r['code'],
});

export function createBillingReader(db: Knex, schema: string, timeoutMs: number): BillingReader {
  const run = (q: Knex.QueryBuilder): Promise<Row[]> => timedRead<Row[]>(q, timeoutMs);
  /** One page of a view with the count of all its rows, in one statement. */
  const page = async (q: Knex.QueryBuilder, count: number, offset: number) => {
    const rows = await run(
      q.select('*', db.raw('count(*) over () as total_rows')).limit(count).offset(offset),
    );
    return { total: Number(rows[0]?.['total_rows'] ?? 0), rows };
  };
  return {
    async accounts(status, count, offset) {
      let q = db.withSchema(schema).from('accounts');
      if (status) q = q.where({ status });
      q = q.orderBy([{ column: 'admitted_at', order: 'desc', nulls: 'last' }, { column: 'encounter_id' }]);
      const p = await page(q, count, offset);
      return { total: p.total, items: p.rows.map(toAccount) };
    },
    async charges(encounterId) {
      const acc = (await run(db.withSchema(schema).from('accounts').where({ encounter_id: encounterId })))[0];
      if (!acc) return null;
      const lines = await run(
        db.withSchema(schema).from('charges').where({ encounter_id: encounterId }).orderBy('line_id'),
      );
      return { account: toAccount(acc), patientId: String(acc['patient_id']), charges: lines.map(toCharge) };
    },
    async worklist(problem, count, offset) {
      let q = db.withSchema(schema).from('billing_problems');
      if (problem) q = q.where({ problem });
      const p = await page(q.orderBy(['problem', 'line_id']), count, offset);
      return { total: p.total, items: p.rows.map(toWorklistItem) };
    },
  };
}
