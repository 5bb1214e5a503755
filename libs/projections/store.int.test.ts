import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateProjection, type Projection } from './runner.js';
import type { ClinicalEvent } from '../events/index.js';
import type { DecodedRecord } from '../kafka/consumer.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import {
  admitted,
  at,
  merged,
  ordered,
  registered,
  syntheticEvents,
} from '../../test/support/hospital-day.js';
import { billingProjection } from '../read-models/billing/model.js';
import { portalProjection } from '../read-models/portal/model.js';

let offset = 0n;
const rec = (event: ClinicalEvent): DecodedRecord => ({
  topic: 't',
  partition: 0,
  offset: offset++,
  key: event.data.patientId,
  timestamp: 0,
  event,
});

/** The store's SQL against real Postgres: statements per batch, and merges across batches. */
describe('read model store (Postgres)', () => {
  let ctx: TestContext;
  const portal = () => `${ctx.schema}_p`;
  const billing = () => `${ctx.schema}_b`;
  let p: Projection;
  let b: Projection;

  beforeAll(async () => {
    ctx = await createTestContext('store');
    p = portalProjection(['t']);
    b = billingProjection(['t']);
    await migrateProjection(ctx.db, portal(), p);
    await migrateProjection(ctx.db, billing(), b);
  });
  afterAll(async () => {
    await ctx.db.raw(`drop schema if exists ${portal()} cascade`);
    await ctx.db.raw(`drop schema if exists ${billing()} cascade`);
    await ctx.cleanup();
  });

  async function applyCounting(proj: Projection, schema: string, events: ClinicalEvent[]): Promise<number> {
    let statements = 0;
    const count = () => {
      statements++;
    };
    ctx.db.on('query', count);
    try {
      await ctx.db.transaction((trx) => proj.apply(trx, schema, events.map(rec)));
    } finally {
      ctx.db.off('query', count);
    }
    return statements;
  }

  it('applies a batch with a fixed number of statements, whatever its size (multi-row, not per event)', async () => {
    const small = syntheticEvents(20, 101).filter((e) => e.type !== 'PatientsMerged');
    const large = syntheticEvents(3000, 202).filter((e) => e.type !== 'PatientsMerged');
    const nSmall = await applyCounting(b, billing(), small);
    const nLarge = await applyCounting(b, billing(), large);
    expect(nLarge).toBe(nSmall);
    expect(nLarge).toBeLessThanOrEqual(8);
    const lines = await ctx.db.withSchema(billing()).from('charge_lines').count<{ n: string }[]>({ n: '*' });
    expect(Number(lines[0]?.n)).toBeGreaterThan(500);
  });

  it('moves a retired patient through chained merges across batches, and later facts of the retired id land on the final survivor', async () => {
    const batches: ClinicalEvent[][] = [
      [
        registered('MA', 'A', 'A', 'ma', at(7)),
        admitted('MA', 'ME1', 'inpatient', '4W', 'ma1', at(8)),
        ordered('MA', 'MO1', 'ME1', 'cbc', 'stat', 'mo1', at(9)),
      ],
      [merged('MB', 'MA', 'mm1', at(10))],
      [merged('MC', 'MB', 'mm2', at(11))],
      [ordered('MA', 'MO2', 'ME1', 'tsh', 'routine', 'mo2', at(12))],
    ];
    for (const batch of batches) {
      await ctx.db.transaction((trx) => p.apply(trx, portal(), batch.map(rec)));
      await ctx.db.transaction((trx) => b.apply(trx, billing(), batch.map(rec)));
    }
    const sr = await ctx.db.raw<{ rows: { order_id: string; patient_id: string; subject: string }[] }>(
      `select order_id, patient_id, resource->'subject'->>'reference' as subject from ${portal()}.service_requests where order_id like 'MO%' order by 1`,
    );
    expect(sr.rows).toEqual([
      { order_id: 'MO1', patient_id: 'MC', subject: 'Patient/MC' },
      { order_id: 'MO2', patient_id: 'MC', subject: 'Patient/MC' },
    ]);
    const enc = await ctx.db.raw<{ rows: { patient_id: string }[] }>(
      `select patient_id from ${portal()}.encounters where encounter_id = 'ME1'`,
    );
    expect(enc.rows).toEqual([{ patient_id: 'MC' }]);
    const lines = await ctx.db.raw<{ rows: { patient_id: string }[] }>(
      `select distinct patient_id from ${billing()}.charge_lines where line_id like 'MO%'`,
    );
    expect(lines.rows).toEqual([{ patient_id: 'MC' }]);
    const acct = await ctx.db.raw<{ rows: { patient_id: string }[] }>(
      `select patient_id from ${billing()}.accounts where encounter_id = 'ME1'`,
    );
    expect(acct.rows).toEqual([{ patient_id: 'MC' }]);
  });
});
