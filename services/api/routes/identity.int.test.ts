import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropSchema, type Knex } from '../../../libs/db/index.js';
import { migrateIdentity, pairKeyOf, type RecordDisplay } from '../../../libs/identity/store.js';
import { IDENTITY_PRINCIPALS, startFakeApi, type FakeApi } from '../../../test/support/api.js';
import { endpoints, eventually, uniqueId } from '../../../test/support/harness.js';
import { createIdentityStore } from './identity.js';

/**
 * The steward routes over the real identity store (libs/identity/store.ts) in
 * Postgres, this file's own schema. The identity-matcher is not running: the
 * test plays its part on the commands table (done with an event id, refused
 * with a reason, or not at all), as the matcher's own tests cover the rest.
 */
let db: Knex;
let schema: string;
let api: FakeApi | undefined;

const A = '1a000000-0000-4000-8000-000000000001';
const B = '1b000000-0000-4000-8000-000000000002';
const C = '1c000000-0000-4000-8000-000000000003';

const display = (family: string, mrn: string, system: string): RecordDisplay => ({
  names: [{ family, given: ['Marta'], prefix: null, suffix: null, use: 'official' }],
  birthDate: '1984-03-12',
  sex: 'female',
  identifiers: [{ system, value: mrn, type: 'MR' }],
  address: {
    lines: ['1 Elm St'],
    city: 'Springfield',
    state: null,
    postalCode: '01101',
    country: null,
    use: 'home',
    type: null,
  },
  phone: '555-0100',
});

async function seedRecord(id: string, d: RecordDisplay): Promise<void> {
  await db
    .withSchema(schema)
    .into('records')
    .insert({
      patient_id: id,
      record: JSON.stringify({ patientId: id }),
      demographics: JSON.stringify({}),
      display: JSON.stringify(d),
      block_keys: db.raw('?::text[]', ['{}']),
      active: true,
      source: JSON.stringify({ system: 'EHR', facility: 'MERCY' }),
      updated_at: new Date('2026-12-06T08:00:00Z'),
    });
}

async function seedPair(a: string, b: string, state: string, score: number): Promise<void> {
  const { pairKey, lo, hi } = pairKeyOf(a, b);
  const at = new Date('2026-12-06T08:00:01Z');
  const eventId = `ev-${state}-${pairKey}`;
  // What the pair row and its history row share: the matcher's decision, as it stored it.
  const decided = {
    pair_key: pairKey,
    patient_id: lo,
    other_patient_id: hi,
    score,
    weights_version: 'fs-int',
    evidence: JSON.stringify([{ field: 'family', level: 'jw-high', weight: 5.5 }]),
    rules: '[]',
    decided_by: 'identity-matcher',
    reason: null,
  };
  await db
    .withSchema(schema)
    .into('pairs')
    .insert({ ...decided, state, basis: 'auto', event_id: eventId, updated_at: at });
  await db
    .withSchema(schema)
    .into('decisions')
    .insert({ ...decided, event_id: eventId, type: 'PatientLinkProposed', decided_at: at });
}

beforeAll(async () => {
  db = createDb(endpoints().databaseUrl);
  schema = uniqueId('identity_api');
  await migrateIdentity(db, schema);
  await seedRecord(A, display('Kowalski', 'M-100', 'urn:mercy:mrn'));
  await seedRecord(B, display('Kowalsky', 'SJ-7', 'urn:stjude:mrn'));
  await seedRecord(C, display('Nowak', 'M-200', 'urn:mercy:mrn'));
  await seedPair(A, B, 'proposed', 12.5);
}, 60_000);
afterEach(async () => {
  await api?.close();
  api = undefined;
  await db.withSchema(schema).from('commands').delete();
});
afterAll(async () => {
  await dropSchema(db, schema);
  await db.destroy();
});

async function start(awaitMs = 5_000): Promise<FakeApi> {
  api = await startFakeApi(
    {},
    { identity: { store: createIdentityStore(db, schema, 5_000), awaitMs }, principals: IDENTITY_PRINCIPALS },
  );
  return api;
}

const call = (a: FakeApi, method: 'GET' | 'POST', url: string, body?: unknown) =>
  a.http.inject({
    method,
    url,
    headers: {
      authorization: 'Bearer tok-steward',
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
const json = (r: LightMyRequestResponse) => JSON.parse(r.body) as Record<string, unknown>;

/** The matcher's part: the pending command, once the route has stored it. */
const pendingCommand = () =>
  eventually(
    async () =>
      (await db.withSchema(schema).from('commands').where({ status: 'pending' }).first<
        | {
            id: string;
            kind: string;
            patient_id: string;
            other_patient_id: string;
            decided_by: string;
            reason: string;
          }
        | undefined
      >()) ?? undefined,
    { what: 'the steward command', timeoutMs: 10_000, intervalMs: 20 },
  );

describe('identity routes over the identity schema', () => {
  it('given a proposed pair in the index, when the worklist is read, then both records are side by side with the evidence', async () => {
    const a = await start();
    const r = await call(a, 'GET', '/identity/review');
    expect(r.statusCode, r.body).toBe(200);
    const items = JSON.parse(r.body) as {
      pair: { patientId: string; otherPatientId: string; score: number; evidence: unknown[] };
      record: RecordDisplay;
      otherRecord: RecordDisplay;
    }[];
    expect(items).toHaveLength(1);
    expect(items[0]?.pair).toMatchObject({ patientId: A, otherPatientId: B, score: 12.5 });
    expect(items[0]?.record.names[0]?.family).toBe('Kowalski');
    expect(items[0]?.otherRecord.identifiers).toEqual([
      { system: 'urn:stjude:mrn', value: 'SJ-7', type: 'MR' },
    ]);
    expect(items[0]?.pair.evidence).toEqual([{ field: 'family', level: 'jw-high', weight: 5.5 }]);
  });

  it('given a link the matcher publishes, when posted, then the command holds the steward and reason and the answer is 201 with the event id', async () => {
    const a = await start();
    const answer = call(a, 'POST', '/identity/links', {
      patientId: B,
      otherPatientId: A,
      reason: 'same person',
    });
    const cmd = await pendingCommand();
    // Stored as the pair's ids, lower first, like the events' key.
    expect(cmd).toMatchObject({
      kind: 'link',
      patient_id: A,
      other_patient_id: B,
      decided_by: 'steward-ann (mpi-console)',
      reason: 'same person',
    });
    await db
      .withSchema(schema)
      .from('commands')
      .where({ id: cmd.id })
      .update({ status: 'done', event_id: 'ev-link-1' });
    const r = await answer;
    expect(r.statusCode, r.body).toBe(201);
    expect(json(r)).toMatchObject({ status: 'done', kind: 'link', commandId: cmd.id, eventId: 'ev-link-1' });
  });

  it("given a refusal, when an unlink is posted, then 409 with the matcher's reason; no answer in time is 202 pending", async () => {
    const a = await start(400);
    const refused = call(a, 'POST', '/identity/unlinks', {
      patientId: A,
      otherPatientId: C,
      reason: 'not the same',
    });
    const cmd = await pendingCommand();
    await db
      .withSchema(schema)
      .from('commands')
      .where({ id: cmd.id })
      .update({ status: 'refused', error: 'the records are not linked' });
    const r = await refused;
    expect(r.statusCode).toBe(409);
    expect(json(r)).toEqual({
      code: 'HUB_CONFLICT',
      message: 'the records are not linked',
      retriable: false,
    });

    const pending = await call(a, 'POST', '/identity/rejections', {
      patientId: A,
      otherPatientId: B,
      reason: 'twins',
    });
    expect(pending.statusCode).toBe(202);
    const body = json(pending);
    expect(body).toMatchObject({ status: 'pending', kind: 'reject', eventId: null });
    const row = await db
      .withSchema(schema)
      .from('commands')
      .where({ id: body['commandId'] })
      .first<{ status: string }>();
    expect(row?.status).toBe('pending');
  });

  it('given records the index does not know, when a decision or an explanation is asked, then 404 and no command', async () => {
    const a = await start();
    const r = await call(a, 'POST', '/identity/links', {
      patientId: A,
      otherPatientId: 'ffffffff-0000-4000-8000-000000000000',
      reason: 'x',
    });
    expect(r.statusCode).toBe(404);
    expect(json(r)['code']).toBe('HUB_NOT_FOUND');
    expect(
      (await call(a, 'GET', '/identity/patients/ffffffff-0000-4000-8000-000000000000/explain')).statusCode,
    ).toBe(404);
    expect(await db.withSchema(schema).from('commands').count<{ n: string }[]>({ n: '*' })).toEqual([
      { n: '0' },
    ]);
  });

  it('given a record with a proposal, when explained, then its display, person, pairs and history come from the index', async () => {
    const a = await start();
    const r = await call(a, 'GET', `/identity/patients/${B}/explain`);
    expect(r.statusCode, r.body).toBe(200);
    const e = json(r) as {
      person: string[];
      pairs: { state: string }[];
      history: { type: string }[];
      display: RecordDisplay;
    };
    expect(e).toMatchObject({ patientId: B, active: true, mergedInto: null, person: [B] });
    expect(e.display.names[0]?.family).toBe('Kowalsky');
    expect(e.pairs.map((p) => p.state)).toEqual(['proposed']);
    expect(e.history.map((h) => h.type)).toEqual(['PatientLinkProposed']);
  });
});
