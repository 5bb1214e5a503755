import type { Knex } from 'knex';
import { timedRead } from '../db.js';

/**
 * Reads of the billing read model (services/projector-billing) through its
 * stable schema's views: accounts by status with their primary coverage, an
 * account's charges (prices joined from the chargemaster), and the
 * billing-accuracy worklist.
 */
export const ACCOUNT_STATUSES = ['placeholder', 'open', 'discharged', 'cancelled'] as const;
export const WORKLIST_PROBLEMS = [
  'resulted_order_without_charge',
  'charge_on_cancelled_encounter',
  'charge_without_price',
  'charges_without_coverage',
] as const;

/** The account's primary coverage (view account_coverage): payer, plan, member id. */
export interface AccountCoverage {
  coverageId: unknown;
  order: unknown;
  payerId: unknown;
  payerName: unknown;
  planId: unknown;
  planName: unknown;
  planType: unknown;
  groupNumber: unknown;
  groupName: unknown;
  memberId: unknown;
  periodStart: unknown;
  periodEnd: unknown;
}

export interface Account {
  encounterId: unknown;
  patientId: unknown;
  encounterClass: unknown;
  admittedAt: string | null;
  dischargedAt: string | null;
  status: unknown;
  /** The financial class the visit was admitted under (EncounterStarted.payer), as sent. */
  payer: unknown;
  /** Null when the patient has no active coverage for the admission day. */
  coverage: AccountCoverage | null;
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
  coverage:
    r['coverage_id'] === null || r['coverage_id'] === undefined
      ? null
      : {
          coverageId: r['coverage_id'],
          order: r['coverage_order'] ?? null,
          payerId: r['payer_id'] ?? null,
          payerName: r['payer_name'] ?? null,
          planId: r['plan_code'] ?? null,
          planName: r['plan_display'] ?? null,
          planType: r['plan_type'] ?? null,
          groupNumber: r['group_number'] ?? null,
          groupName: r['group_name'] ?? null,
          memberId: r['member_id'] ?? null,
          periodStart: r['period_start'] ?? null,
          periodEnd: r['period_end'] ?? null,
        },
});

/** The coverage columns an account is read with (accounts has none of these names). */
const COVERAGE_COLUMNS = [
  'coverage_id',
  'coverage_order',
  'payer_id',
  'payer_name',
  'plan_code',
  'plan_display',
  'plan_type',
  'group_number',
  'group_name',
  'member_id',
  'period_start',
  'period_end',
].map((c) => `c.${c}`);

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
  // Null for a problem of a whole account (charges without coverage).
  lineId: r['line_id'] ?? null,
  patientId: r['patient_id'],
  encounterId: r['encounter_id'] ?? null,
  code: r['code'] ?? null,
});

export function createBillingReader(db: Knex, schema: string, timeoutMs: number): BillingReader {
  const run = (q: Knex.QueryBuilder): Promise<Row[]> => timedRead<Row[]>(q, timeoutMs);
  /** One page of a view with the count of all its rows, in one statement. */
  const page = async (q: Knex.QueryBuilder, count: number, offset: number) => {
    const rows = await run(q.select(db.raw('count(*) over () as total_rows')).limit(count).offset(offset));
    return { total: Number(rows[0]?.['total_rows'] ?? 0), rows };
  };
  /** Accounts with their primary coverage, chosen by the view when read. */
  const accountsWithCoverage = () =>
    db
      .withSchema(schema)
      .from('accounts as a')
      .leftJoin(db.raw('??.account_coverage as c', [schema]), 'c.encounter_id', 'a.encounter_id')
      .select('a.*', ...COVERAGE_COLUMNS);
  return {
    async accounts(status, count, offset) {
      let q = accountsWithCoverage();
      if (status) q = q.where('a.status', status);
      q = q.orderBy([
        { column: 'a.admitted_at', order: 'desc', nulls: 'last' },
        { column: 'a.encounter_id' },
      ]);
      const p = await page(q, count, offset);
      return { total: p.total, items: p.rows.map(toAccount) };
    },
    async charges(encounterId) {
      const acc = (await run(accountsWithCoverage().where('a.encounter_id', encounterId)))[0];
      if (!acc) return null;
      const lines = await run(
        db.withSchema(schema).from('charges').where({ encounter_id: encounterId }).orderBy('line_id'),
      );
      return { account: toAccount(acc), patientId: String(acc['patient_id']), charges: lines.map(toCharge) };
    },
    async worklist(problem, count, offset) {
      let q = db.withSchema(schema).from('billing_problems').select('*');
      if (problem) q = q.where({ problem });
      const p = await page(q.orderBy(['problem', 'line_id', 'encounter_id']), count, offset);
      return { total: p.total, items: p.rows.map(toWorklistItem) };
    },
  };
}
