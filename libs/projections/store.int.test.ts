import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateProjection, type Projection } from './runner.js';
import type { ClinicalEvent } from '../events/index.js';
import type { DecodedRecord } from '../kafka/consumer.js';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
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

  it.each([
    ['careful', { careful: true }],
    ['bulk', { careful: false, bulk: true }],
  ] as const)(
    '%s: a patient an encounter only needs to exist is not rewritten; one not yet stored gets its placeholder',
    async (_path, opts) => {
      const id = `PR${opts.careful ? 'c' : 'b'}`;
      const apply = (events: ClinicalEvent[]) =>
        ctx.db.transaction((trx) => p.apply(trx, portal(), events.map(rec), opts));
      await apply([registered(id, 'Echo', 'Eve', `${id}r`, at(7))]);
      const before: unknown = await ctx.db
        .withSchema(portal())
        .from('patients')
        .where({ patient_id: id })
        .first();
      await apply([
        admitted(id, `${id}E`, 'inpatient', '4W', `${id}a`, at(8)),
        admitted(`${id}N`, `${id}NE`, 'inpatient', '4W', `${id}na`, at(8)),
      ]);
      const after: unknown = await ctx.db
        .withSchema(portal())
        .from('patients')
        .where({ patient_id: id })
        .first();
      expect(after).toEqual(before);
      expect(after).toMatchObject({ placeholder: false });
      const added: unknown = await ctx.db
        .withSchema(portal())
        .from('patients')
        .where({ patient_id: `${id}N` })
        .first();
      expect(added).toMatchObject({ placeholder: true });
    },
  );

  it('regression: a merge after 32,768 earlier ones still moves the retired patient (every link was sent as two bind parameters, past the 65,535 Postgres takes)', async () => {
    // Given a read model whose history holds 40,000 merges of other patients
    await ctx.db.raw(
      `insert into ${portal()}.patient_links (merged_id, survivor_id)
         select 'HX' || g, 'HS' || g from generate_series(1, 40000) g`,
    );
    await ctx.db.transaction((trx) =>
      p.apply(
        trx,
        portal(),
        [
          registered('HA', 'A', 'A', 'ha', at(7)),
          admitted('HA', 'HE1', 'inpatient', '4W', 'ha1', at(8)),
          ordered('HA', 'HO1', 'HE1', 'cbc', 'stat', 'ho1', at(9)),
        ].map(rec),
      ),
    );
    // When one more merge is applied
    await ctx.db.transaction((trx) => p.apply(trx, portal(), [rec(merged('HB', 'HA', 'hm1', at(10)))]));

    // Then the retired patient's rows are the survivor's
    const sr = await ctx.db.raw<{ rows: { patient_id: string; subject: string }[] }>(
      `select patient_id, resource->'subject'->>'reference' as subject from ${portal()}.service_requests where order_id = 'HO1'`,
    );
    expect(sr.rows).toEqual([{ patient_id: 'HB', subject: 'Patient/HB' }]);
  });

  it('regression: a merge committed while another instance writes the retired id does not strand that row (rebalance storm)', async () => {
    // The store's lock of this schema's merges (one bigint key: its low 32 bits are objid).
    const mergeLock = `select count(*)::int as n from pg_locks where locktype = 'advisory' and objsubid = 1
       and objid::bigint = (hashtext(?)::bigint & 4294967295)`;
    // Given another instance's batch that has written an order of the retired
    // patient RA (no link yet) and not committed.
    let commitOther!: () => void;
    const otherMayCommit = new Promise<void>((r) => (commitOther = r));
    const other = ctx.db.transaction(async (trx) => {
      await b.apply(trx, billing(), [rec(ordered('RA', 'RO1', 'RE1', 'cbc', 'stat', 'ro1', at(9)))]);
      await otherMayCommit;
    });
    await eventually(async () => {
      const r = await ctx.db.raw<{ rows: { n: number }[] }>(
        `${mergeLock} and granted and mode = 'ShareLock'`,
        [`hub_merges:${billing()}`],
      );
      return (r.rows[0]?.n ?? 0) > 0 ? true : undefined;
    });

    // When a merge of RA into RS is applied meanwhile, it waits for that batch
    const merging = ctx.db.transaction((trx) =>
      b.apply(trx, billing(), [rec(merged('RS', 'RA', 'rm1', at(10)))]),
    );
    await eventually(async () => {
      const r = await ctx.db.raw<{ rows: { n: number }[] }>(`${mergeLock} and not granted`, [
        `hub_merges:${billing()}`,
      ]);
      return (r.rows[0]?.n ?? 0) > 0 ? true : undefined;
    });
    commitOther();
    await other;
    await merging;

    // Then the order is the survivor's, as in a build by one instance.
    const lines = await ctx.db.raw<{ rows: { patient_id: string }[] }>(
      `select patient_id from ${billing()}.charge_lines where line_id like 'RO1%'`,
    );
    expect(lines.rows).toEqual([{ patient_id: 'RS' }]);
  });
});
