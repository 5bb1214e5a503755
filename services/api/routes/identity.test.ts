import type { AuditEvent } from '@medplum/fhirtypes';
import type { LightMyRequestResponse } from 'fastify';
import { describe, expect, it } from 'vitest';
import { HubError } from '../../../libs/errors/index.js';
import type {
  CommandOutcome,
  DecisionRequest,
  Explanation,
  RecordDisplay,
  ReviewItem,
} from '../../../libs/identity/store.js';
import { IDENTITY_PRINCIPALS, fakeApiPerTest, type FakeApi } from '../../../test/support/api.js';
import type { IdentityStore } from './identity.js';

const startApi = fakeApiPerTest();

// Made-up people; the family names are canaries for logs.
const CANARY = 'Zzidentitycanary';
const display = (family: string, mrn: string, system: string): RecordDisplay => ({
  names: [{ family, given: ['Ada'], prefix: null, suffix: null, use: 'official' }],
  birthDate: '1970-01-01',
  sex: 'female',
  identifiers: [{ system, value: mrn, type: 'MR' }],
  address: null,
  phone: null,
});
const A = '0a5e0c1e-0000-4000-8000-00000000000a';
const B = '0b5e0c1e-0000-4000-8000-00000000000b';

const item: ReviewItem = {
  pair: {
    pairKey: `${A}|${B}`,
    patientId: A,
    otherPatientId: B,
    state: 'proposed',
    score: 14.2,
    weightsVersion: 'fs-test',
    evidence: [{ field: 'family', level: 'jw-high', weight: 6.1 }],
    rules: [],
    decidedBy: 'identity-matcher',
    reason: null,
    basis: 'auto',
    eventId: 'ev-proposed',
    updatedAt: '2026-12-06T08:00:00.000Z',
  },
  record: display(CANARY, 'MRN-1', 'urn:mercy'),
  otherRecord: display(`${CANARY}x`, 'SJ-9', 'urn:stjude'),
};

interface FakeStore extends IdentityStore {
  requests: DecisionRequest[];
}

/** A store that answers from these values; `outcome` as the matcher would have decided. */
function fakeStore(o: { outcome?: CommandOutcome; known?: string[] } = {}): FakeStore {
  const requests: DecisionRequest[] = [];
  const known = o.known ?? [A, B];
  return {
    requests,
    // A field the store may add later must not reach a client until the route declares it.
    review: () => Promise.resolve([{ ...item, secretColumn: 'x' } as ReviewItem]),
    explain: (id) =>
      Promise.resolve(
        known.includes(id)
          ? ({
              patientId: id,
              display: item.record,
              source: { system: 'EHR', facility: 'MERCY' },
              active: true,
              mergedInto: null,
              person: [A, B],
              pairs: [{ ...item.pair, state: 'linked' }],
              history: [],
            } satisfies Explanation)
          : null,
      ),
    request: (r) => {
      if (!known.includes(r.patientId) || !known.includes(r.otherPatientId))
        return Promise.reject(
          new HubError('HUB_NOT_FOUND', 'the master patient index does not know both records'),
        );
      requests.push(r);
      return Promise.resolve({ commandId: 'c0ffee00-0000-4000-8000-000000000001' });
    },
    outcome: () => Promise.resolve(o.outcome ?? { status: 'done', eventId: 'ev-linked', error: null }),
  };
}

type Who = keyof typeof IDENTITY_PRINCIPALS | 'staff' | 'patient' | 'admin';

async function start(store: IdentityStore): Promise<FakeApi> {
  return startApi({}, { identity: { store, awaitMs: 50 }, principals: IDENTITY_PRINCIPALS });
}

const call = (api: FakeApi, method: 'GET' | 'POST', url: string, as?: Who, body?: unknown) =>
  api.http.inject({
    method,
    url,
    headers: {
      ...(as ? { authorization: `Bearer tok-${as}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });

const named = (audits: AuditEvent[]) =>
  audits.map(
    (e) => e.entity?.find((x) => x.what?.reference?.startsWith('Patient/'))?.what?.reference ?? null,
  );
const json = (r: LightMyRequestResponse) => JSON.parse(r.body) as Record<string, unknown>;

describe('identity routes: the review worklist and explain', () => {
  it('given a proposed pair, when a reviewer reads the worklist, then both records are shown and each patient is audited', async () => {
    const api = await start(fakeStore());
    const r = await call(api, 'GET', '/identity/review?_count=10', 'reviewer');
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    const [shown] = JSON.parse(r.body) as (ReviewItem & Record<string, unknown>)[];
    expect(shown?.pair).toMatchObject({ patientId: A, otherPatientId: B, score: 14.2 });
    expect(shown?.record.identifiers[0]?.value).toBe('MRN-1');
    expect(shown?.otherRecord.identifiers[0]?.value).toBe('SJ-9');
    expect(shown?.['secretColumn']).toBeUndefined();
    // One AuditEvent for the request, and one naming each patient whose record it showed.
    expect(named(api.audits)).toEqual([null, `Patient/${A}`, `Patient/${B}`]);
    expect(api.audits.every((e) => e.outcome === '0' && e.subtype?.[0]?.code === 'search-type')).toBe(true);
    expect(api.audits[1]?.agent?.[0]?.who?.identifier?.value).toBe('reviewer-bo');
    expect(api.logLines.join('\n')).not.toContain(CANARY);
  });

  it('given a record, when explained, then its person, pairs and history are shown and its patient audited; unknown is 404', async () => {
    const api = await start(fakeStore());
    const r = await call(api, 'GET', `/identity/patients/${A}/explain`, 'reviewer');
    expect(r.statusCode).toBe(200);
    expect(json(r)).toMatchObject({ patientId: A, person: [A, B], active: true, mergedInto: null });
    expect(named(api.audits)).toEqual([`Patient/${A}`]);
    const missing = await call(api, 'GET', '/identity/patients/nobody/explain', 'reviewer');
    expect(missing.statusCode).toBe(404);
    expect(json(missing)).toMatchObject({ code: 'HUB_NOT_FOUND' });
    expect(named(api.audits.slice(1))).toEqual(['Patient/nobody']);
  });

  it('given tokens without Identity scopes by name, when identity routes are called, then 401/403, audited, with the scope to ask for', async () => {
    const store = fakeStore();
    const api = await start(store);
    for (const who of ['staff', 'patient', 'admin'] as const) {
      const r = await call(api, 'GET', '/identity/review', who);
      expect(r.statusCode, who).toBe(403);
      expect(r.headers['www-authenticate']).toContain('scope="user/Identity.s system/Identity.s"');
    }
    expect((await call(api, 'GET', '/identity/review')).statusCode).toBe(401);
    // A reader may not decide; a writer without read may decide but not read.
    const body = { patientId: A, otherPatientId: B, reason: 'same person' };
    expect((await call(api, 'POST', '/identity/links', 'reviewer', body)).statusCode).toBe(403);
    expect((await call(api, 'GET', '/identity/review', 'mpiBot')).statusCode).toBe(403);
    expect(store.requests).toEqual([]);
    expect(api.audits.filter((e) => e.outcome === '4')).toHaveLength(6);
    // A denied decision still names the record it was about.
    expect(named(api.audits)).toContain(`Patient/${A}`);
  });

  it('given a path under /identity that no route serves, when called, then 404 audited under the identity area, the path not kept', async () => {
    const api = await start(fakeStore());
    const r = await call(api, 'GET', `/identity/patients/${A}/merge`, 'steward');
    expect(r.statusCode).toBe(404);
    expect(api.audits).toHaveLength(1);
    expect(JSON.stringify(api.audits[0])).toContain('GET /identity/*');
    expect(JSON.stringify(api.audits[0])).not.toContain(A);
  });
});

describe('identity routes: decisions', () => {
  const body = { patientId: B, otherPatientId: A, reason: 'same person, typo at St Jude registration' };

  it('given a steward, when a link is decided and the matcher publishes it, then 201 with the event id, decidedBy and both patients audited', async () => {
    const store = fakeStore();
    const api = await start(store);
    const r = await call(api, 'POST', '/identity/links', 'steward', body);
    expect(r.statusCode, r.body).toBe(201);
    expect(json(r)).toEqual({
      status: 'done',
      kind: 'link',
      commandId: 'c0ffee00-0000-4000-8000-000000000001',
      eventId: 'ev-linked',
      patientId: B,
      otherPatientId: A,
    });
    expect(r.headers.location).toBe(`/identity/patients/${B}/explain`);
    expect(store.requests).toEqual([
      {
        kind: 'link',
        patientId: B,
        otherPatientId: A,
        decidedBy: 'steward-ann (mpi-console)',
        reason: 'same person, typo at St Jude registration',
      },
    ]);
    expect(named(api.audits)).toEqual([`Patient/${B}`, `Patient/${A}`]);
    expect(api.audits.every((e) => e.subtype?.[0]?.code === 'create' && e.action === 'C')).toBe(true);
  });

  it('given each decision route, when called by a system client, then its kind is requested and decidedBy is the client', async () => {
    const store = fakeStore();
    const api = await start(store);
    for (const path of ['links', 'unlinks', 'rejections']) {
      expect((await call(api, 'POST', `/identity/${path}`, 'mpiBot', body)).statusCode).toBe(201);
    }
    expect(store.requests.map((x) => [x.kind, x.decidedBy])).toEqual([
      ['link', 'mpi-bot'],
      ['unlink', 'mpi-bot'],
      ['reject', 'mpi-bot'],
    ]);
  });

  it('given a matcher that has not answered, when a link is decided, then 202 with the command id and no event id', async () => {
    const api = await start(fakeStore({ outcome: { status: 'pending', eventId: null, error: null } }));
    const r = await call(api, 'POST', '/identity/links', 'steward', body);
    expect(r.statusCode).toBe(202);
    expect(json(r)).toMatchObject({
      status: 'pending',
      eventId: null,
      commandId: expect.any(String) as string,
    });
  });

  it("given a matcher that refused, when an unlink is decided, then 409 HUB_CONFLICT with the matcher's reason", async () => {
    const api = await start(
      fakeStore({ outcome: { status: 'refused', eventId: null, error: 'the records are not linked' } }),
    );
    const r = await call(api, 'POST', '/identity/unlinks', 'steward', body);
    expect(r.statusCode).toBe(409);
    expect(json(r)).toEqual({
      code: 'HUB_CONFLICT',
      message: 'the records are not linked',
      retriable: false,
    });
    expect(api.audits.every((e) => e.outcome === '4')).toBe(true);
  });

  it('given bad input, when a decision is posted, then 400 HUB_INPUT_INVALID naming the field; unknown records 404; nothing requested', async () => {
    const store = fakeStore();
    const api = await start(store);
    const cases: [unknown, string][] = [
      [{ patientId: A, otherPatientId: B }, 'reason'],
      [{ ...body, reason: '   ' }, 'reason'],
      [{ ...body, otherPatientId: B }, 'otherPatientId'],
      [{ ...body, patientId: { id: A } }, 'patientId'],
      [{ ...body, patientId: '' }, 'patientId'],
    ];
    for (const [b, field] of cases) {
      const r = await call(api, 'POST', '/identity/links', 'steward', b);
      expect(r.statusCode, JSON.stringify(b)).toBe(400);
      expect(json(r)['code']).toBe('HUB_INPUT_INVALID');
      expect(String(json(r)['message'])).toContain(field);
    }
    const extra = await call(api, 'POST', '/identity/links', 'steward', { ...body, score: 99 });
    expect(extra.statusCode).toBe(400);
    const unknown = await call(api, 'POST', '/identity/links', 'steward', {
      ...body,
      otherPatientId: 'ghost',
    });
    expect(unknown.statusCode).toBe(404);
    expect(json(unknown)['code']).toBe('HUB_NOT_FOUND');
    expect(store.requests).toEqual([]);
    // The reason is the steward's text: it is not logged.
    expect(api.logLines.join('\n')).not.toContain('typo at St Jude');
  });

  it('given an audit sink that does not acknowledge, when a decision is posted, then 503 and no answer leaves unaudited', async () => {
    const api = await start(fakeStore());
    api.failAudit(true);
    const r = await call(api, 'POST', '/identity/links', 'steward', body);
    expect(r.statusCode).toBe(503);
    expect(r.body).not.toContain('ev-linked');
  });
});
