import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropSchema, type Knex } from '../../../libs/db/index.js';
import type { ClinicalEvent } from '../../../libs/events/index.js';
import { migrateProjection } from '../../../libs/projections/runner.js';
import { billingProjection } from '../../../libs/read-models/billing/model.js';
import { coverage } from '../../../test/support/coverage-diagnosis.js';
import { endpoints, uniqueId } from '../../../test/support/harness.js';
import { asRecords } from '../../../test/support/read-model-testing.js';
import { admitted, at, obs, ordered, resulted } from '../../../test/support/hospital-day.js';
import { createBillingReader } from './billing.js';

/** The billing reader's SQL against real Postgres: accounts with their primary coverage, the worklist. */
describe('billing reader (Postgres)', () => {
  let db: Knex;
  let schema: string;

  beforeAll(async () => {
    db = createDb(endpoints().databaseUrl);
    schema = uniqueId('billread').toLowerCase();
    const projection = billingProjection(['t']);
    await migrateProjection(db, schema, projection);
    const events: ClinicalEvent[] = [
      admitted('P1', 'E1', 'inpatient', '4W', 'a1', at(8), 'Commercial'),
      ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'o1', at(9)),
      resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'final', 'r1', at(10), [
        obs('718-7', 'Hgb', 12, 'g/dL', null, 'final'),
      ]),
      coverage('P1', 'C1', 'in1', at(8), { periodEnd: null }),
      admitted('P2', 'E2', 'outpatient', 'CLINIC', 'a2', at(11)),
      ordered('P2', 'O2', 'E2', 'tsh', 'routine', 'o2', at(11)),
    ];
    await db.transaction((trx) => projection.apply(trx, schema, asRecords(events)));
  });
  afterAll(async () => {
    await dropSchema(db, schema);
    await db.destroy();
  });

  it('given a covered and an uncovered account, when listed and read, then each carries its primary coverage or null, and the worklist flags the uncovered', async () => {
    const reader = createBillingReader(db, schema, 5_000);
    const list = await reader.accounts(undefined, 10, 0);
    expect(list.total).toBe(2);
    expect(list.items.map((a) => [a.encounterId, a.payer, a.coverage?.memberId ?? null])).toEqual([
      ['E2', null, null],
      ['E1', 'Commercial', 'M-P1'],
    ]);
    const one = await reader.charges('E1');
    expect(one?.account.coverage).toEqual({
      coverageId: 'C1',
      order: 1,
      payerId: 'ACME01',
      payerName: 'ACME Health',
      planId: 'GOLD',
      planName: 'ACME Gold PPO',
      planType: 'PPO',
      groupNumber: 'G-100',
      groupName: 'Testville Employers',
      memberId: 'M-P1',
      periodStart: '2026-01-01',
      periodEnd: null,
    });
    expect(one?.charges.map((c) => c['lineId'])).toEqual(['O1']);
    expect((await reader.accounts('open', 10, 0)).total).toBe(2);
    expect(await reader.worklist('charges_without_coverage', 10, 0)).toEqual({
      total: 1,
      items: [
        { problem: 'charges_without_coverage', lineId: null, patientId: 'P2', encounterId: 'E2', code: null },
      ],
    });
  });
});
