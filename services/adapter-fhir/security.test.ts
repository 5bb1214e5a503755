import type { AuditEvent } from '@medplum/fhirtypes';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadFhirDefinitions } from '../../libs/fhir/validate.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { HubError } from '../../libs/errors/index.js';
import { generateResources, MRN_SYSTEM } from '../../test/fixtures/fhir/generate.js';
import {
  fhirAuth,
  fhirTestVerifier,
  inMemoryWrites,
  testPatient,
  type InMemoryWrites,
} from '../../test/support/fhir-adapter.js';
import { bundleRoutes } from './routes/bundles.js';
import { importRoutes } from './routes/import.js';
import { resourceRoutes } from './routes/resources.js';
import { callerOf, installIngestSecurity } from './security.js';

const FHIR = { 'content-type': 'application/fhir+json' };
const logger = createLogger({ name: 'test', level: 'silent' });
// `lab` may write as two systems (its default first); `adt` as one.
const CLIENTS = new Map([
  ['lab', ['lab', 'lab-micro']],
  ['adt', ['adt']],
]);

/**
 * The security hooks over the real route plugins (in-memory store, recording
 * producers): the 401/403 matrix, the client binding, reads confined to the
 * client's own source systems, edge input checks and the audit of each answer.
 */
describe('adapter-fhir security', () => {
  let app: FastifyInstance;
  let w: InMemoryWrites;
  let audited: AuditEvent[];
  let auditDown: boolean;

  // Loading the R4 definitions takes seconds of CPU: more than the default hook timeout on a busy machine.
  beforeAll(() => loadFhirDefinitions(), 120_000);
  beforeEach(async () => {
    w = inMemoryWrites();
    audited = [];
    auditDown = false;
    const verifier = await fhirTestVerifier();
    app = Fastify();
    await app.register(async (scope) => {
      installIngestSecurity(scope, {
        verifier,
        clients: CLIENTS,
        observer: 'adapter-fhir',
        logger,
        audit: {
          recordAll(events) {
            if (auditDown) return Promise.reject(new HubError('HUB_KAFKA_UNAVAILABLE', 'paused'));
            audited.push(...events);
            return Promise.resolve();
          },
        },
      });
      const common = { writer: w.writer, maxBodyBytes: 64 * 1024, callerOf };
      await scope.register(resourceRoutes, { ...common, store: w.store, clock: Date.now });
      await scope.register(bundleRoutes, common);
      await scope.register(importRoutes, {
        deps: {
          store: w.store,
          producer: w.rec.producer,
          policy: { enterpriseSystems: [MRN_SYSTEM], authorityAliases: {} },
          sourceSystem: 'unused',
          dlqTopic: 'dlq',
          logger,
        },
        maxBodyBytes: 1024,
        onDeadLetters: () => undefined,
        sourceSystemOf: (req) => callerOf(req).sourceSystem,
      });
    });
  });
  afterEach(async () => app.close());

  const lab = (scopes = ['system/*.cud', 'system/*.rs']) => fhirAuth({ client: 'lab', scopes });
  const put = async (url: string, body: object, headers: Record<string, string> = {}) =>
    app.inject({ method: 'PUT', url, headers: { ...FHIR, ...headers }, payload: JSON.stringify(body) });
  /** PUT /Patient/{id} of a patient whose MRN is the id. */
  const putPatient = (id: string, headers: Record<string, string>, extra: object = {}) =>
    put(`/Patient/${id}`, { ...testPatient(`MRN-${id}`, extra), id }, headers);
  const get = (url: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url, headers });
  const sources = () => w.rec.published.map((e) => e.data.meta.source.system);

  it('given no token: every route answers 401 with a challenge, writes nothing, and is audited as anonymous', async () => {
    const answers = [
      await put('/Observation/o1', testPatient('X')),
      await app.inject({ method: 'POST', url: '/Patient', headers: FHIR, payload: '{}' }),
      await app.inject({ method: 'POST', url: '/', headers: FHIR, payload: '{}' }),
      await app.inject({
        method: 'POST',
        url: '/$import',
        headers: { 'content-type': 'application/fhir+ndjson' },
        payload: '{}',
      }),
      await get('/Patient/p1'),
    ];
    for (const res of answers) {
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="hub-ingest"');
      expect(res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'login' }] });
    }
    expect(w.rec.published).toEqual([]);
    expect(w.store.rows.size).toBe(0);
    expect(audited).toHaveLength(5);
    expect(audited.every((e) => e.outcome === '4' && e.agent[0]?.who?.display === 'anonymous')).toBe(true);
    expect(audited.map((e) => e.outcomeDesc)).toEqual(Array(5).fill('no-token'));
  });

  it.each([
    ['a malformed header', () => Promise.resolve({ authorization: 'Bearer not a token' })],
    ['garbage', () => Promise.resolve({ authorization: 'Bearer abc.def.ghi' })],
    ['a token for the API (another audience)', () => fhirAuth({ client: 'lab', audience: 'hub-api' })],
  ])('given %s: 401 invalid_token', async (_what, headers) => {
    const res = await putPatient('p1', await headers());
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="hub-ingest", error="invalid_token"');
    expect(w.rec.published).toEqual([]);
  });

  it('given a client not in the clients file, or a source system not bound to it: 403, nothing written', async () => {
    const stranger = await putPatient('p1', await fhirAuth({ client: 'intruder' }));
    expect(stranger.statusCode).toBe(403);
    expect(stranger.headers['www-authenticate']).toBe(
      'Bearer realm="hub-ingest", error="insufficient_scope"',
    );
    const posing = await putPatient('p1', {
      ...(await lab()),
      'x-source-system': 'adt',
    });
    expect(posing.statusCode).toBe(403);
    expect(posing.json()).toMatchObject({ issue: [{ code: 'forbidden' }] });
    expect(w.rec.published).toEqual([]);
    expect(audited.map((e) => e.outcomeDesc)).toEqual(['unknown-client', 'source-not-bound']);
    expect(audited[0]?.agent[0]?.altId).toBe('intruder');
  });

  it("given the right token: written as the client's default system, or the bound one it names, and audited with client and patient", async () => {
    const created = await putPatient('p1', await lab());
    expect(created.statusCode).toBe(201);
    expect(created.headers['location']).toBe('/Patient/p1/_history/1');
    expect(created.headers['cache-control']).toBe('no-store');
    const micro = await putPatient('p2', {
      ...(await lab()),
      'x-source-system': 'lab-micro',
    });
    expect(micro.statusCode).toBe(201);
    expect(sources()).toEqual(['lab', 'lab-micro']);
    const [first] = audited;
    expect(first).toMatchObject({
      action: 'U',
      outcome: '0',
      subtype: [{ code: 'update' }],
      agent: [{ altId: 'lab', who: { identifier: { value: 'lab' } } }],
      source: { observer: { display: 'adapter-fhir' } },
    });
    expect(first?.entity?.[0]?.what?.reference).toBe(`Patient/${w.store.rows.get('Patient/p1')?.patientKey}`);
  });

  it('given scopes that do not allow the route: 403 insufficient_scope before the body is read', async () => {
    const readOnly = await putPatient('p1', await lab(['system/*.rs']));
    const otherType = await putPatient('p1', await lab(['system/Observation.cud']));
    const personal = await putPatient('p1', await lab(['user/*.cruds']));
    const writeOnlyRead = await get('/Patient/p1', await lab(['system/*.cud']));
    const importPatientsOnly = await app.inject({
      method: 'POST',
      url: '/$import',
      headers: { 'content-type': 'application/fhir+ndjson', ...(await lab(['system/Patient.cud'])) },
      payload: '{}',
    });
    for (const res of [readOnly, otherType, personal, writeOnlyRead, importPatientsOnly]) {
      expect(res.statusCode).toBe(403);
      expect(res.headers['www-authenticate']).toContain('error="insufficient_scope"');
    }
    expect(w.rec.published).toEqual([]);
  });

  it('given v1 scopes (system/*.write, system/*.read): the same as their v2 letters', async () => {
    const v1 = await lab(['system/*.write', 'system/*.read']);
    expect((await putPatient('p1', v1)).statusCode).toBe(201);
    expect((await get('/Patient/p1', v1)).statusCode).toBe(200);
  });

  it("given another client's resource: its read is 404 (audited as not-owned, naming the patient); its write 403", async () => {
    await putPatient('p1', await fhirAuth({ client: 'adt' }));
    audited = [];
    const read = await get('/Patient/p1', await lab());
    expect(read.statusCode).toBe(404);
    expect(read.body).not.toContain('Testperson');
    const write = await putPatient('p1', await lab(), { gender: 'male' });
    expect(write.statusCode).toBe(403);
    expect(audited.map((e) => [e.outcomeDesc, e.entity?.[0]?.what?.reference])).toEqual([
      ['not-owned', `Patient/${w.store.rows.get('Patient/p1')?.patientKey}`],
      ['not-owned', undefined],
    ]);
    expect((await get('/Patient/p1', await fhirAuth({ client: 'adt' }))).statusCode).toBe(200);
  });

  it("given $import with a write token: imported as the client's system; without a token: 401", async () => {
    const ndjson = [...generateResources(2, { prefix: 'sec' })].map((r) => JSON.stringify(r)).join('\n');
    const headers = { 'content-type': 'application/fhir+ndjson' };
    const anonymous = await app.inject({ method: 'POST', url: '/$import', headers, payload: ndjson });
    expect(anonymous.statusCode).toBe(401);
    expect(w.rec.published).toEqual([]);
    const res = await app.inject({
      method: 'POST',
      url: '/$import',
      headers: { ...headers, ...(await lab()) },
      payload: ndjson,
    });
    expect(res.statusCode).toBe(200);
    expect(new Set(sources())).toEqual(new Set(['lab']));
    expect(audited.at(-1)).toMatchObject({ outcome: '0', action: 'E', agent: [{ altId: 'lab' }] });
  });

  it('given a NUL or another control character in an id or query: 400 before the token check, audited without a patient', async () => {
    for (const url of ['/Patient/abc%00', '/Patient/a%0Ab', '/$import?label=a%00']) {
      const res = await app.inject({ method: url.includes('import') ? 'POST' : 'GET', url });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'invalid' }] });
      expect(res.body).not.toContain('\u0000');
    }
    expect(audited.map((e) => e.outcomeDesc)).toEqual(Array(3).fill('invalid-input'));
    expect(audited.every((e) => !JSON.stringify(e).includes('\\u0000'))).toBe(true);
  });

  it('given the audit topic unavailable: a read answers 503 (fail closed) and shows nothing', async () => {
    await putPatient('p1', await lab());
    auditDown = true;
    const res = await get('/Patient/p1', await lab());
    expect(res.statusCode).toBe(503);
    expect(res.headers['etag']).toBeUndefined();
    expect(res.body).not.toContain('Testperson');
    expect(res.json()).toMatchObject({ issue: [{ code: 'transient' }] });
  });
});
