import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropSchema, type Knex } from '../db/index.js';
import { HubError } from '../errors/index.js';
import { demographicsOf, type Person } from '../../test/support/identity.js';
import { endpoints, uniqueId } from '../../test/support/harness.js';
import { applyDecision, retireRecord, upsertRecord, type AppliedDecision } from './matcher/state.js';
import { toMatchRecord } from './matching/normalise.js';
import {
  awaitCommand,
  explainPatient,
  listReview,
  migrateIdentity,
  pairKeyOf,
  requestDecision,
} from './store.js';

const person: Person = {
  given: 'Ada',
  family: 'Quill',
  birthDate: '1990-02-03',
  sex: 'female',
  line: '1 Mill Lane',
  postalCode: '30301',
  phone: null,
};

describe('identity store: what the steward surfaces read and request (issue 21)', () => {
  let db: Knex;
  const schema = uniqueId('identity_store').toLowerCase();
  const now = new Date('2026-01-15T10:00:00Z');

  async function record(id: string): Promise<void> {
    const demographics = demographicsOf(person, 'NORTH', `MRN-${id}`);
    await db.transaction((trx) =>
      upsertRecord(trx, schema, {
        record: toMatchRecord(id, demographics),
        demographics,
        keys: ['k1'],
        source: { system: 'TEST-EHR', facility: 'NORTH' },
        now,
      }),
    );
  }

  async function decision(a: string, b: string, type: AppliedDecision['type'], score: number): Promise<void> {
    const { pairKey, lo, hi } = pairKeyOf(a, b);
    await db.transaction((trx) =>
      applyDecision(trx, schema, {
        eventId: `${pairKey}-${type}`,
        type,
        pairKey,
        patientId: lo,
        otherPatientId: hi,
        score,
        weightsVersion: 'w1',
        evidence: [{ field: 'given', level: 'exact', weight: 6 }],
        rules: [],
        decidedBy: 'identity-matcher',
        reason: null,
        basis: 'auto',
        decidedAt: now,
      }),
    );
  }

  beforeAll(async () => {
    db = createDb(endpoints().databaseUrl);
    await migrateIdentity(db, schema);
    for (const id of ['S-a', 'S-b', 'S-c', 'S-d', 'S-e', 'S-f']) await record(id);
    await decision('S-a', 'S-b', 'PatientsLinked', 30);
    await decision('S-c', 'S-b', 'PatientsLinked', 28);
    await decision('S-a', 'S-d', 'PatientLinkProposed', 15);
    await decision('S-e', 'S-a', 'PatientLinkProposed', 20);
    await decision('S-f', 'S-a', 'PatientLinkProposed', 22);
    const stub = demographicsOf(person, 'NORTH', 'MRN-S-f');
    await db.transaction((trx) =>
      retireRecord(trx, schema, {
        mergedId: 'S-f',
        survivorId: 'S-e',
        stub: { record: toMatchRecord('S-f', stub), demographics: stub },
        now,
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await dropSchema(db, schema);
    await db.destroy();
  });

  it('given proposals, when the worklist is read, then the pairs of active records, highest score first, each with both records side by side', async () => {
    const review = await listReview(db, schema, { limit: 10 });
    expect(review.map((r) => r.pair.pairKey)).toEqual(['S-a|S-e', 'S-a|S-d']);
    expect(review[0]?.record.names[0]?.family).toBe('Quill');
    expect(review[0]?.otherRecord.identifiers[0]?.value).toBe('MRN-S-e');
    expect(review[0]?.pair.evidence).toEqual([{ field: 'given', level: 'exact', weight: 6 }]);
  });

  it('given links a-b and b-c, when a is explained, then its person is a, b and c, with its pairs and history; an unknown id is null', async () => {
    const e = await explainPatient(db, schema, 'S-a');
    expect(e?.person).toEqual(['S-a', 'S-b', 'S-c']);
    expect(e?.pairs.map((p) => [p.pairKey, p.state])).toEqual([
      ['S-a|S-b', 'linked'],
      ['S-a|S-d', 'proposed'],
      ['S-a|S-e', 'proposed'],
      ['S-a|S-f', 'proposed'],
    ]);
    expect(e?.history).toHaveLength(4);
    expect((await explainPatient(db, schema, 'S-f'))?.mergedInto).toBe('S-e');
    expect(await explainPatient(db, schema, 'S-nobody')).toBeNull();
  });

  it('given a request with the higher id first, then the command names the pair lower first and waits pending until the matcher handles it', async () => {
    const { commandId } = await requestDecision(db, schema, {
      kind: 'reject',
      patientId: 'S-d',
      otherPatientId: 'S-a',
      decidedBy: 'steward-ann',
      reason: 'different people',
    });
    const row = await db
      .withSchema(schema)
      .from('commands')
      .where({ id: commandId })
      .first<{ patient_id: string; other_patient_id: string }>();
    expect([row?.patient_id, row?.other_patient_id]).toEqual(['S-a', 'S-d']);
    // No matcher runs here: the wait ends at its timeout, still pending.
    expect(await awaitCommand(db, schema, commandId, { timeoutMs: 150 })).toEqual({
      status: 'pending',
      eventId: null,
      error: null,
    });
    await expect(
      awaitCommand(db, schema, '00000000-0000-4000-8000-000000000000', { timeoutMs: 10 }),
    ).rejects.toSatisfy((e: unknown) => e instanceof HubError && e.code === 'HUB_NOT_FOUND');
  });
});
