import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClinicalEvent } from '../events/index.js';
import { admitted, at, merged, registered } from '../../test/support/hospital-day.js';
import { linked, proposed, rejected, unlinked } from '../../test/support/identity-events.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { asRecords } from '../../test/support/read-model-testing.js';
import { billingProjection } from '../read-models/billing/model.js';
import { portalProjection } from '../read-models/portal/model.js';
import { migrateProjection, type Projection } from './runner.js';
import { personSql } from './store.js';

/**
 * Links between records of one person in the store (person_links and the
 * `persons` view), against real Postgres: the pair's latest decision wins,
 * components are transitive, merges map endpoints to their survivor, and
 * no row of the read model is rewritten.
 */
describe('read model store: person links (Postgres)', () => {
  let ctx: TestContext;
  let p: Projection;
  let n = 0;
  /** A fresh portal schema per test: links of one test must not join another's. */
  const fresh = async (): Promise<string> => {
    const schema = `${ctx.schema}_pl${n++}`;
    await migrateProjection(ctx.db, schema, p);
    return schema;
  };
  const apply = (schema: string, events: ClinicalEvent[], proj: Projection = p) =>
    ctx.db.transaction((trx) => proj.apply(trx, schema, asRecords(events)));
  const persons = async (schema: string) =>
    (
      await ctx.db
        .withSchema(schema)
        .from('persons')
        .orderBy('patient_id')
        .select<{ patient_id: string; person_id: string }[]>('patient_id', 'person_id')
    ).map((r) => `${r.patient_id}->${r.person_id}`);

  /** personSql, walked from each id, gives the view's component of that id (itself when in none). */
  const agreesWithView = async (schema: string, ids: readonly string[]) => {
    const view = await ctx.db
      .withSchema(schema)
      .from('persons')
      .select<{ patient_id: string; person_id: string }[]>('patient_id', 'person_id');
    const personOf = new Map(view.map((r) => [r.patient_id, r.person_id]));
    for (const id of ids) {
      const walked = await ctx.db.raw<{ rows: { patient_id: string }[] }>(personSql(`"${schema}"`), [id]);
      const p = personOf.get(id);
      const expected =
        p === undefined
          ? [id]
          : view
              .filter((r) => r.person_id === p)
              .map((r) => r.patient_id)
              .sort();
      expect(
        walked.rows.map((r) => r.patient_id),
        id,
      ).toEqual(expected);
    }
  };

  beforeAll(async () => {
    ctx = await createTestContext('person_links');
    p = portalProjection(['t']);
  });
  afterAll(async () => {
    for (let i = 0; i < n; i++) await ctx.db.raw(`drop schema if exists ${ctx.schema}_pl${i} cascade`);
    await ctx.cleanup();
  });

  it('given two registered records, when linked, then one person named by the smaller id, and no row rewritten', async () => {
    const s = await fresh();
    await apply(s, [
      registered('LB', 'Doe', 'Jane', 'lb', at(7)),
      registered('LA', 'Doe', 'Jane', 'la', at(7)),
    ]);
    const before = await ctx.db.withSchema(s).from('patients').orderBy('patient_id').select('*');
    await apply(s, [linked('LB', 'LA', 'l1', at(8))]);
    expect(await persons(s)).toEqual(['LA->LA', 'LB->LA']);
    const [e] = asRecords([linked('LB', 'LA', 'l1', at(8))]);
    expect(await ctx.db.withSchema(s).from('person_links').select('*')).toEqual([
      {
        pair_key: 'LA|LB',
        patient_id: 'LA',
        other_patient_id: 'LB',
        linked: true,
        event_id: e?.event.data.meta.eventId,
      },
    ]);
    expect(await ctx.db.withSchema(s).from('patients').orderBy('patient_id').select('*')).toEqual(before);
  });

  it('given a linked pair, when unlinked (in a later batch or the same one), then each is alone again', async () => {
    const s = await fresh();
    await apply(s, [linked('UA', 'UB', 'u1', at(8))]);
    await apply(s, [unlinked('UA', 'UB', 'u2', at(9))]);
    expect(await persons(s)).toEqual([]);
    await apply(s, [linked('UC', 'UD', 'u3', at(8)), unlinked('UC', 'UD', 'u4', at(9))]);
    expect(await persons(s)).toEqual([]);
    await apply(s, [unlinked('UE', 'UF', 'u5', at(8)), linked('UE', 'UF', 'u6', at(9))]);
    expect(await persons(s)).toEqual(['UE->UE', 'UF->UE']);
  });

  it('given links A-B and B-C, then all three are one person; unlinking B-C splits C off', async () => {
    const s = await fresh();
    await apply(s, [linked('TB', 'TC', 't1', at(8)), linked('TA', 'TB', 't2', at(8))]);
    expect(await persons(s)).toEqual(['TA->TA', 'TB->TA', 'TC->TA']);
    await agreesWithView(s, ['TA', 'TB', 'TC', 'TX']);
    await apply(s, [unlinked('TB', 'TC', 't3', at(9))]);
    expect(await persons(s)).toEqual(['TA->TA', 'TB->TA']);
    await agreesWithView(s, ['TA', 'TB', 'TC']);
  });

  it('given a link to a record merged away since, then the link holds for its final survivor', async () => {
    const s = await fresh();
    await apply(s, [linked('MA', 'MB', 'm1', at(8))]);
    await apply(s, [merged('MC', 'MB', 'm2', at(9))]);
    await apply(s, [merged('MD', 'MC', 'm3', at(10))]);
    expect(await persons(s)).toEqual(['MA->MA', 'MD->MA']);
    await agreesWithView(s, ['MA', 'MD']);
    // A record merged away is no person's record: walked from it, nothing but the survivors' side.
    const fromRetired = await ctx.db.raw<{ rows: { patient_id: string }[] }>(personSql(`"${s}"`), ['MB']);
    expect(fromRetired.rows.map((r) => r.patient_id)).toEqual(['MA', 'MD']);
  });

  it('given proposals and rejections, then nothing is recorded', async () => {
    const s = await fresh();
    await apply(s, [proposed('RA', 'RB', 'r1', at(8)), rejected('RA', 'RB', 'r2', at(9))]);
    expect(await ctx.db.withSchema(s).from('person_links').select('*')).toEqual([]);
    expect(await persons(s)).toEqual([]);
  });

  it('given billing, when records are linked, then person_accounts names one person for both accounts', async () => {
    const s = `${ctx.schema}_pl${n++}`;
    const b = billingProjection(['t']);
    await migrateProjection(ctx.db, s, b);
    await apply(
      s,
      [
        admitted('BA', 'BE1', 'inpatient', '4W', 'ba1', at(8)),
        admitted('BB', 'BE2', 'outpatient', 'CL', 'bb1', at(9)),
        linked('BA', 'BB', 'bl', at(10)),
      ],
      b,
    );
    const rows = await ctx.db
      .withSchema(s)
      .from('person_accounts')
      .orderBy('encounter_id')
      .select<{ person_id: string; patient_id: string }[]>('person_id', 'patient_id');
    expect(rows).toEqual([
      { person_id: 'BA', patient_id: 'BA' },
      { person_id: 'BA', patient_id: 'BB' },
    ]);
  });
});
