import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HubError } from '../../../libs/errors/index.js';
import { loadFhirDefinitions } from '../../../libs/fhir/validate.js';
import {
  inlineValidator,
  type ResourceValidator,
  type ToValidate,
} from '../../../libs/fhir/validate-pool.js';
import {
  inMemoryWrites,
  testCaller,
  testPatient as patient,
  type InMemoryWrites,
} from '../../../test/support/fhir-adapter.js';
import { bundleRoutes } from './bundles.js';

const order = (subject: string) => ({
  resourceType: 'ServiceRequest',
  status: 'active',
  intent: 'order',
  code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
  subject: { reference: subject },
});

interface ResponseBundle {
  type: string;
  entry: {
    fullUrl?: string;
    resource?: { subject?: { reference: string } };
    response: {
      status: string;
      location?: string;
      outcome?: { issue: { code: string; expression?: string[] }[] };
    };
  }[];
}

/** POST / (transaction and batch Bundles) alone, over an in-memory store and recording producers. */
describe('bundle routes', () => {
  let app: FastifyInstance;
  let rec: InMemoryWrites['rec'];
  let store: InMemoryWrites['store'];
  let caller: ReturnType<typeof testCaller>;
  let validated: ToValidate[][];

  // Loading the R4 definitions takes seconds of CPU: more than the default hook timeout on a busy machine.
  beforeAll(() => loadFhirDefinitions(), 120_000);
  beforeEach(async () => {
    caller = testCaller();
    const w = inMemoryWrites();
    ({ rec, store } = w);
    validated = [];
    const inline = inlineValidator();
    // Validation as configured (in line, or worker threads: validate-pool.test.ts), seen by the test.
    const validator: ResourceValidator = {
      validate: (items) => {
        validated.push([...items]);
        return inline.validate(items);
      },
      close: () => inline.close(),
    };
    app = Fastify();
    await app.register(bundleRoutes, {
      writer: w.writer,
      maxBodyBytes: 64 * 1024,
      baseUrl: 'http://fhir.test',
      callerOf: () => caller,
      validator,
    });
  });
  afterEach(async () => app.close());

  const post = (body: unknown) =>
    app.inject({
      method: 'POST',
      url: '/',
      headers: { 'content-type': 'application/fhir+json' },
      payload: JSON.stringify(body),
    });
  const bundle = (type: string, entry: object[]) => ({ resourceType: 'Bundle', type, entry });
  /** A new Patient and an order for it (by its urn:uuid), as two POST entries. */
  const patientAndOrder = (n: string) => [
    { fullUrl: `urn:uuid:${n}`, resource: patient(`MRN-${n}`), request: { method: 'POST', url: 'Patient' } },
    { resource: order(`urn:uuid:${n}`), request: { method: 'POST', url: 'ServiceRequest' } },
  ];

  it('transaction: one atomic publish; urn:uuid references resolve in the stored copy', async () => {
    const res = await post(
      bundle('transaction', [
        { fullUrl: 'urn:uuid:t1', resource: patient('MRN-T1'), request: { method: 'POST', url: 'Patient' } },
        { resource: order('urn:uuid:t1'), request: { method: 'POST', url: 'ServiceRequest' } },
      ]),
    );
    expect(res.statusCode).toBe(200);
    const b = res.json<ResponseBundle>();
    expect(b.type).toBe('transaction-response');
    expect(b.entry.map((e) => e.response.status)).toEqual(['201 Created', '201 Created']);
    expect(b.entry[0]?.response.location).toMatch(/^http:\/\/fhir\.test\/Patient\/.+\/_history\/1$/);
    expect(b.entry[1]?.resource?.subject?.reference).toMatch(/^Patient\//);
    expect(rec.transactions.map((t) => t.map((e) => e.type).sort())).toEqual([
      ['OrderPlaced', 'PatientRegistered'],
    ]);
    expect(rec.published).toEqual([]);
    expect(store.rows.size).toBe(2);
  });

  it('transaction with an invalid entry: refused as a whole, pointing at the entry; nothing written', async () => {
    const res = await post(
      bundle('transaction', [
        { resource: patient('MRN-T2'), request: { method: 'POST', url: 'Patient' } },
        { resource: patient('MRN-T3', { birthDate: 'x' }), request: { method: 'POST', url: 'Patient' } },
      ]),
    );
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ expression: ['Bundle.entry[1].resource.birthDate'] }],
    });
    expect(rec.transactions).toEqual([]);
    expect(store.rows.size).toBe(0);
  });

  it('batch: answers per entry; the valid entries are written, the refused ones are not', async () => {
    const res = await post(
      bundle('batch', [
        { resource: patient('MRN-B1'), request: { method: 'POST', url: 'Patient' } },
        { resource: patient('MRN-B2', { birthDate: 'x' }), request: { method: 'POST', url: 'Patient' } },
        { resource: patient('MRN-B3'), request: { method: 'DELETE', url: 'Patient/x' } },
        { resource: patient('MRN-B5'), request: { method: 'PUT', url: 'Patient/a%00' } },
      ]),
    );
    expect(res.statusCode).toBe(200);
    const b = res.json<ResponseBundle>();
    expect(b.type).toBe('batch-response');
    expect(b.entry.map((e) => e.response.status)).toEqual([
      '201 Created',
      '422 Unprocessable Entity',
      '400 Bad Request',
      '400 Bad Request',
    ]);
    expect(b.entry[2]?.response.outcome?.issue[0]?.expression).toEqual(['Bundle.entry[2].request.method']);
    expect(rec.published.map((e) => e.type)).toEqual(['PatientRegistered']);
    expect(store.rows.size).toBe(1);
    // Every entry's resource went through the configured validator at once, with its URL's type.
    expect(validated.map((call) => call.map((i) => i.expectedType))).toEqual([
      ['Patient', 'Patient', 'Patient', 'Patient'],
    ]);
  });

  it('batch whose publish fails: every written entry answers 503 with the code, the request still 200', async () => {
    rec.failWith = new HubError('HUB_KAFKA_UNAVAILABLE', 'kafka write not acknowledged within 5000 ms');
    const res = await post(
      bundle('batch', [{ resource: patient('MRN-B4'), request: { method: 'POST', url: 'Patient' } }]),
    );
    expect(res.statusCode).toBe(200);
    const [entry] = res.json<ResponseBundle>().entry;
    expect(entry?.response.status).toBe('503 Service Unavailable');
    expect(entry?.response.outcome?.issue[0]?.code).toBe('transient');
    expect(store.rows.size).toBe(0);
  });

  it('transaction whose commit fails: 503 transient, nothing stored', async () => {
    rec.failWith = new HubError('HUB_KAFKA_UNAVAILABLE', 'transaction not committed within 5000 ms');
    const res = await post(
      bundle('transaction', [{ resource: patient('MRN-T4'), request: { method: 'POST', url: 'Patient' } }]),
    );
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'transient' }] });
    expect(store.rows.size).toBe(0);
  });

  it.each([
    ['not a Bundle', patient('X'), 'Bundle.type'],
    ['a collection Bundle', bundle('collection', []), 'Bundle.type'],
    ['entry not an array', { resourceType: 'Bundle', type: 'batch', entry: {} }, 'Bundle.entry'],
  ])('%s: 400 at %s', async (_what, body, expression) => {
    const res = await post(body);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ issue: [{ expression: [expression] }] });
  });

  it('given a token that may write only Patient: a batch answers 403 on the other entries, writes the rest', async () => {
    caller = testCaller({ scopes: ['system/Patient.cu'] });
    const res = await post(bundle('batch', [...patientAndOrder('s1')]));
    expect(res.statusCode).toBe(200);
    const b = res.json<ResponseBundle>();
    expect(b.entry.map((e) => e.response.status)).toEqual(['201 Created', '403 Forbidden']);
    expect(b.entry[1]?.response.outcome?.issue[0]?.code).toBe('forbidden');
    expect(rec.published.map((e) => e.type)).toEqual(['PatientRegistered']);
    expect(caller.patients).toHaveLength(1);
    expect(caller.reasons).toEqual([]);
  });

  it('given a transaction with one entry out of scope: 403 as a whole, nothing written', async () => {
    caller = testCaller({ scopes: ['system/ServiceRequest.c'] });
    const res = await post(bundle('transaction', [...patientAndOrder('s2')]));
    expect(res.statusCode).toBe(403);
    expect(res.json<{ issue: unknown[] }>().issue[0]).toMatchObject({
      code: 'forbidden',
      expression: ['Bundle.entry[0].request'],
    });
    expect(rec.transactions).toEqual([]);
    expect(store.rows.size).toBe(0);
  });

  it('given a resource another source system wrote: an update of it answers 403, nothing published', async () => {
    caller = testCaller({ sourceSystem: 'ris' });
    const first = await post(
      bundle('batch', [
        { resource: { ...patient('MRN-S3'), id: 's3' }, request: { method: 'PUT', url: 'Patient/s3' } },
      ]),
    );
    expect(first.json<ResponseBundle>().entry[0]?.response.status).toBe('201 Created');
    caller = testCaller({ sourceSystem: 'lab' });
    const res = await post(
      bundle('transaction', [
        {
          resource: patient('MRN-S3', { id: 's3', gender: 'male' }),
          request: { method: 'PUT', url: 'Patient/s3' },
        },
      ]),
    );
    expect(res.statusCode).toBe(403);
    expect(rec.published).toHaveLength(1);
    expect(store.rows.get('Patient/s3')?.sourceSystem).toBe('ris');
    expect(caller.reasons).toEqual(['not-owned']);
  });
});
