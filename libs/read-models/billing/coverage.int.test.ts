import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropSchema, type Knex } from '../../db/index.js';
import type { ClinicalEvent } from '../../events/index.js';
import { migrateProjection, type Projection } from '../../projections/runner.js';
import { dropReadModel, resolveActiveVersion } from '../../projections/versions.js';
import { endpoints, uniqueId } from '../../../test/support/harness.js';
import { asRecords } from '../../../test/support/read-model-testing.js';
import { coverage } from '../../../test/support/coverage-diagnosis.js';
import { admitted, at, merged, ordered, resulted, obs } from '../../../test/support/hospital-day.js';
import { BILLING_VERSION_HOOKS, billingProjection } from './model.js';

/**
 * Coverage on accounts and the "charges without coverage" worklist against
 * real Postgres: the views that choose an account's primary coverage when
 * read, so that the order coverage and charges arrive in does not matter.
 */
describe('billing: coverage on accounts and in the worklist (Postgres)', () => {
  let db: Knex;
  let projection: Projection;
  const schemas: string[] = [];

  async function freshModel(): Promise<string> {
    const schema = uniqueId('billcov').toLowerCase();
    schemas.push(schema);
    await migrateProjection(db, schema, projection);
    return schema;
  }

  /** Applies each batch in its own transaction, as the runner commits batches. */
  async function apply(schema: string, ...batches: ClinicalEvent[][]): Promise<void> {
    for (const b of batches) await db.transaction((trx) => projection.apply(trx, schema, asRecords(b)));
  }

  const q = async (sql: string) => (await db.raw<{ rows: Record<string, unknown>[] }>(sql)).rows;

  beforeAll(() => {
    db = createDb(endpoints().databaseUrl);
    projection = billingProjection(['t']);
  });
  afterAll(async () => {
    for (const s of schemas) await dropSchema(db, s);
    await db.destroy();
  });

  const visit = (pid: string, eid: string, oid: string, t: number): ClinicalEvent[] => [
    admitted(pid, eid, 'inpatient', '4W', `a-${eid}`, t),
    ordered(pid, oid, eid, 'cbc', 'stat', `o-${oid}`, t + 3_600_000),
    resulted(pid, `R-${oid}`, oid, eid, 'cbc', 'final', `r-${oid}`, t + 7_200_000, [
      obs('718-7', 'Hgb', 12, 'g/dL', null, 'final'),
    ]),
  ];

  it('given charges and then coverage, then the account flagged "charges without coverage" is cleared and shows the primary coverage', async () => {
    const s = await freshModel();
    await apply(s, visit('P1', 'E1', 'O1', at(8)));
    expect(
      await q(`select problem, line_id, patient_id, encounter_id, code from ${s}.billing_problems`),
    ).toEqual([
      {
        problem: 'charges_without_coverage',
        line_id: null,
        patient_id: 'P1',
        encounter_id: 'E1',
        code: null,
      },
    ]);
    await apply(s, [
      coverage('P1', 'C-SECOND', 'in2', at(9), { order: 2, payerName: 'Second Payer', memberId: 'S-1' }),
      coverage('P1', 'C-PRIMARY', 'in1', at(9), { order: 1 }),
    ]);
    expect(await q(`select * from ${s}.billing_problems`)).toEqual([]);
    expect(await q(`select * from ${s}.account_coverage`)).toEqual([
      {
        encounter_id: 'E1',
        coverage_id: 'C-PRIMARY',
        coverage_order: 1,
        payer_id: 'ACME01',
        payer_id_system: 'urn:genhosp:payer',
        payer_name: 'ACME Health',
        plan_code: 'GOLD',
        plan_display: 'ACME Gold PPO',
        plan_type: 'PPO',
        group_number: 'G-100',
        group_name: 'Testville Employers',
        member_id: 'M-P1',
        period_start: '2026-01-01',
        period_end: '2026-12-31',
      },
    ]);
  });

  it('given the same facts in one batch in either order (replay) or batch by batch (live), then the same accounts, coverage and worklist', async () => {
    const facts = [
      ...visit('P2', 'E2', 'O2', at(8)),
      ...visit('P3', 'E3', 'O3', at(8)),
      coverage('P2', 'C2', 'in-p2', at(7)),
    ];
    const read = async (s: string) => ({
      coverage: await q(`select encounter_id, coverage_id from ${s}.account_coverage order by 1`),
      problems: await q(`select problem, encounter_id from ${s}.billing_problems order by 1, 2`),
    });
    const live = await freshModel();
    await apply(live, ...facts.map((e) => [e]));
    const replayed = await freshModel();
    await apply(replayed, [...facts].reverse());
    const expected = {
      coverage: [{ encounter_id: 'E2', coverage_id: 'C2' }],
      problems: [{ problem: 'charges_without_coverage', encounter_id: 'E3' }],
    };
    expect(await read(live)).toEqual(expected);
    expect(await read(replayed)).toEqual(expected);
  });

  it('given coverage that is not active or whose period does not hold the admission day, then it does not cover the account', async () => {
    const s = await freshModel();
    await apply(s, [
      ...visit('P4', 'E4', 'O4', at(8)),
      coverage('P4', 'C-EXPIRED', 'in-x', at(7), { periodStart: '2025-01-01', periodEnd: '2025-12-31' }),
      coverage('P4', 'C-LATER', 'in-l', at(7), { periodStart: '2026-03-03', periodEnd: null }),
      coverage('P4', 'C-CANCELLED', 'in-c', at(7), { status: 'cancelled' }),
    ]);
    expect(await q(`select * from ${s}.account_coverage`)).toEqual([]);
    expect(await q(`select problem from ${s}.billing_problems`)).toEqual([
      { problem: 'charges_without_coverage' },
    ]);
    // The admission day (2026-03-02) is the first day of the period: covered.
    await apply(s, [
      coverage('P4', 'C-LATER', 'in-l2', at(9), { periodStart: '2026-03-02', periodEnd: null }),
    ]);
    expect(await q(`select coverage_id from ${s}.account_coverage`)).toEqual([{ coverage_id: 'C-LATER' }]);
    expect(await q(`select problem from ${s}.billing_problems`)).toEqual([]);
  });

  it("given a merge, then the retired record's coverage covers the survivor's accounts", async () => {
    const s = await freshModel();
    await apply(s, visit('P5', 'E5', 'O5', at(8)), [coverage('P6', 'C6', 'in-p6', at(7))]);
    expect(await q(`select problem from ${s}.billing_problems`)).toEqual([
      { problem: 'charges_without_coverage' },
    ]);
    await apply(s, [merged('P5', 'P6', 'm-56', at(10))]);
    expect(await q(`select encounter_id, coverage_id from ${s}.account_coverage`)).toEqual([
      { encounter_id: 'E5', coverage_id: 'C6' },
    ]);
    expect(await q(`select * from ${s}.billing_problems`)).toEqual([]);
  });

  it('given a billing version serving before coverage existed, when the projector starts with this code, then 0203 applies in place and the stable schema shows coverage and the new problem', async () => {
    const stable = uniqueId('billup').toLowerCase();
    const before: Projection = {
      ...projection,
      migrations: projection.migrations.filter((m) => m.name < '0203'),
    };
    try {
      const first = await resolveActiveVersion(db, stable, before, BILLING_VERSION_HOOKS);
      await apply(first, visit('P7', 'E7', 'O7', at(8)));
      expect(await q(`select problem from ${stable}.billing_problems`)).toEqual([]);
      expect(await resolveActiveVersion(db, stable, projection, BILLING_VERSION_HOOKS)).toBe(first);
      expect(await q(`select problem, encounter_id from ${stable}.billing_problems`)).toEqual([
        { problem: 'charges_without_coverage', encounter_id: 'E7' },
      ]);
      await apply(first, [coverage('P7', 'C7', 'in-p7', at(9))]);
      expect(await q(`select encounter_id, coverage_id from ${stable}.account_coverage`)).toEqual([
        { encounter_id: 'E7', coverage_id: 'C7' },
      ]);
    } finally {
      await dropReadModel(db, stable);
    }
  });
});
