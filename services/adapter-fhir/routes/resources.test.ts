import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HubError } from '../../../libs/errors/index.js';
import { loadFhirDefinitions } from '../../../libs/fhir/validate.js';
import { MRN_SYSTEM as MRN } from '../../../test/fixtures/fhir/generate.js';
import {
  inMemoryWrites,
  testCaller,
  testPatient,
  type InMemoryWrites,
} from '../../../test/support/fhir-adapter.js';
import { resourceRoutes } from './resources.js';

const FHIR = { 'content-type': 'application/fhir+json' };
const patient = (mrn: string, family = 'Testperson') => testPatient(mrn, { name: [{ family }] });

/** The resource routes alone, over an in-memory store and recording producers: no broker, no Postgres. */
describe('resource routes', () => {
  let app: FastifyInstance;
  let rec: InMemoryWrites['rec'];
  let store: InMemoryWrites['store'];
  let caller: ReturnType<typeof testCaller>;

  // Loading the R4 definitions takes seconds of CPU: more than the default hook timeout on a busy machine.
  beforeAll(() => loadFhirDefinitions(), 120_000);
  beforeEach(() => {
    caller = testCaller();
  });
  afterEach(async () => app.close());

  async function start(maxBodyBytes = 64 * 1024): Promise<void> {
    const clock = () => Date.parse('2026-03-04T05:06:07Z');
    const w = inMemoryWrites(clock);
    ({ rec, store } = w);
    app = Fastify();
    await app.register(resourceRoutes, {
      store,
      writer: w.writer,
      maxBodyBytes,
      baseUrl: 'http://fhir.test',
      clock,
      callerOf: () => caller,
    });
  }
  const put = (url: string, body: unknown, headers: Record<string, string> = FHIR) =>
    app.inject({
      method: 'PUT',
      url,
      headers,
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url, headers: { ...FHIR, ...headers }, payload: JSON.stringify(body) });

  it('PUT creates (201, Location, ETag, Last-Modified) after publishing; the same content again is a 200 no-op', async () => {
    await start();
    const created = await put('/Patient/p1', { ...patient('MRN-1'), id: 'p1' });
    expect(created.statusCode).toBe(201);
    expect(created.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
    expect(created.headers['location']).toBe('http://fhir.test/Patient/p1/_history/1');
    expect(created.headers['etag']).toBe('W/"1"');
    expect(created.headers['last-modified']).toBe('Wed, 04 Mar 2026 05:06:07 GMT');
    expect(created.json()).toMatchObject({ id: 'p1', meta: { versionId: '1' } });
    expect(rec.published.map((e) => e.type)).toEqual(['PatientRegistered']);
    expect(store.rows.get('Patient/p1')?.version).toBe(1);

    const again = await put('/Patient/p1', { ...patient('MRN-1'), id: 'p1' });
    expect(again.statusCode).toBe(200);
    expect(again.headers['etag']).toBe('W/"1"');
    expect(rec.published).toHaveLength(1);

    const changed = await put('/Patient/p1', { ...patient('MRN-1', 'Renamed'), id: 'p1' });
    expect(changed.statusCode).toBe(200);
    expect(changed.headers['location']).toBe('http://fhir.test/Patient/p1/_history/2');
    expect(rec.published.map((e) => e.type)).toEqual(['PatientRegistered', 'PatientUpdated']);

    const read = await app.inject({ method: 'GET', url: '/Patient/p1' });
    expect(read.statusCode).toBe(200);
    expect(read.headers['etag']).toBe('W/"2"');
    expect(read.json()).toMatchObject({ name: [{ family: 'Renamed' }] });
  });

  it('POST with If-None-Exist returns the match and writes nothing; other searches are refused', async () => {
    await start();
    const cond = { 'if-none-exist': `identifier=${MRN}|MRN-2` };
    const first = await post('/Patient', patient('MRN-2'), cond);
    expect(first.statusCode).toBe(201);
    const second = await post('/Patient', patient('MRN-2', 'Other'), cond);
    expect(second.statusCode).toBe(200);
    expect(second.json()).toMatchObject({
      id: first.json<{ id: string }>().id,
      name: [{ family: 'Testperson' }],
    });
    expect(rec.published).toHaveLength(1);
    const bad = await post('/Patient', patient('MRN-2'), { 'if-none-exist': 'name=x' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ issue: [{ code: 'not-supported', expression: ['If-None-Exist'] }] });
  });

  it.each([
    ['an unserved type', () => post('/Basic', { resourceType: 'Basic' }), 404, 'not-supported'],
    ['a malformed id', () => put('/Patient/a_b', patient('X')), 400, 'value'],
    [
      'a PUT whose body id differs',
      () => put('/Patient/p9', { ...patient('X'), id: 'other' }),
      400,
      'invalid',
    ],
    [
      'a malformed X-Request-Id',
      () => post('/Patient', patient('X'), { 'x-request-id': 'a b' }),
      400,
      'invalid',
    ],
    ['malformed JSON', () => put('/Patient/p9', '{"resourceType":'), 400, 'structure'],
    ['an invalid resource', () => put('/Patient/p9', { ...patient('X'), birthDate: 'x' }), 422, 'structure'],
    [
      'a non-FHIR content type',
      () => put('/Patient/p9', 'x', { 'content-type': 'text/plain' }),
      415,
      'not-supported',
    ],
  ])('%s: refused with an OperationOutcome, nothing written', async (_what, send, status, code) => {
    await start();
    const res = await send();
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
    expect(res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code }] });
    expect(rec.published).toEqual([]);
    expect(store.rows.size).toBe(0);
  });

  it('a body above the limit: 413 too-costly', async () => {
    await start(1024);
    const res = await put('/Patient/p1', { ...patient('MRN-3'), id: 'p1', text: 'x'.repeat(2000) });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ issue: [{ code: 'too-costly' }] });
  });

  it('GET of an unknown resource or type: 404 not-found', async () => {
    await start();
    for (const url of ['/Patient/nobody', '/Basic/x']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ issue: [{ code: 'not-found' }] });
    }
  });

  it('a broker that does not acknowledge: 503 transient with the code, and the store is untouched', async () => {
    await start();
    rec.failWith = new HubError('HUB_KAFKA_UNAVAILABLE', 'kafka write not acknowledged within 5000 ms');
    const res = await put('/Patient/p1', { ...patient('MRN-4'), id: 'p1' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [
        { code: 'transient', diagnostics: expect.stringContaining('HUB_KAFKA_UNAVAILABLE') as unknown },
      ],
    });
    expect(store.rows.size).toBe(0);
  });

  it('given a token with update but not create: an update is written, a create is 403 and writes nothing', async () => {
    await start();
    expect((await put('/Patient/p5', { ...patient('MRN-5'), id: 'p5' })).statusCode).toBe(201);
    caller = testCaller({ scopes: ['system/Patient.u'] });
    expect((await put('/Patient/p5', { ...patient('MRN-5', 'Renamed'), id: 'p5' })).statusCode).toBe(200);
    const create = await put('/Patient/p6', { ...patient('MRN-6'), id: 'p6' });
    expect(create.statusCode).toBe(403);
    expect(create.json()).toMatchObject({ issue: [{ code: 'forbidden' }] });
    expect(caller.reasons).toEqual(['insufficient-scope']);
    expect(store.rows.has('Patient/p6')).toBe(false);
    expect(rec.published.map((e) => e.type)).toEqual(['PatientRegistered', 'PatientUpdated']);
  });

  it('given a resource another source system wrote: its update is 403, its read 404, and both name its patient', async () => {
    await start();
    caller = testCaller({ sourceSystem: 'adt' });
    expect((await put('/Patient/p7', { ...patient('MRN-7'), id: 'p7' })).statusCode).toBe(201);
    const key = store.rows.get('Patient/p7')?.patientKey;
    caller = testCaller({ sourceSystem: 'lab' });
    const update = await put('/Patient/p7', { ...patient('MRN-7', 'Hijacked'), id: 'p7' });
    expect(update.statusCode).toBe(403);
    const same = await put('/Patient/p7', { ...patient('MRN-7'), id: 'p7' });
    expect(same.statusCode).toBe(403);
    expect(same.body).not.toContain('Testperson');
    const conditional = await post('/Patient', patient('MRN-7'), {
      'if-none-exist': `identifier=${MRN}|MRN-7`,
    });
    expect(conditional.statusCode).toBe(403);
    expect(conditional.body).not.toContain('Testperson');
    const read = await app.inject({ method: 'GET', url: '/Patient/p7' });
    expect(read.statusCode).toBe(404);
    expect(caller.reasons).toEqual(['not-owned', 'not-owned', 'not-owned', 'not-owned']);
    expect(caller.patients).toEqual([key]);
    expect(store.rows.get('Patient/p7')).toMatchObject({ version: 1, sourceSystem: 'adt' });
    expect(rec.published).toHaveLength(1);

    caller = testCaller({ sourceSystem: 'lab', systems: ['lab', 'adt'] });
    expect((await app.inject({ method: 'GET', url: '/Patient/p7' })).statusCode).toBe(200);
  });
});
