import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TEST_CLIENTS,
  fhirAuth,
  startTestFhirAdapter,
  type TestFhirAdapter,
} from '../../test/support/fhir-adapter.js';
import type { AuditEvent } from '@medplum/fhirtypes';
import { scanTopic } from '../../libs/kafka/scan.js';
import { HubError } from '../../libs/errors/index.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import { enterprisePatientId, type IdentityPolicy } from '../../libs/identity/index.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { startCollector, type Collector } from '../../test/fixtures/fhir/collector.js';
import type { FhirAdapter } from './app.js';

const MRN = 'urn:oid:2.16.840.1.113883.3.999.1';
const policy: IdentityPolicy = { enterpriseSystems: [MRN], authorityAliases: { HOSP: MRN } };
const keyOf = (mrn: string) => enterprisePatientId([{ system: MRN, value: mrn, type: 'MR' }], policy)!;
const FHIR = { 'content-type': 'application/fhir+json' };

const patient = (mrn: string, family = 'Testperson', extra: object = {}) => ({
  resourceType: 'Patient',
  identifier: [{ system: MRN, value: mrn }],
  name: [{ family, given: ['Alex'] }],
  gender: 'female',
  birthDate: '1980-02-03',
  ...extra,
});

/**
 * The FHIR adapter over HTTP (fastify inject) against the real broker,
 * registry and Postgres; every assertion on effects reads the topics back.
 */
describe('adapter-fhir over HTTP', () => {
  let ctx: TestContext;
  let fhirAdapter: TestFhirAdapter;
  let adapter: FhirAdapter;
  let topics: Collector;
  let failNextCommit = false;

  beforeAll(async () => {
    ctx = await createTestContext('fhir');
    fhirAdapter = await startTestFhirAdapter(ctx, {
      policy,
      maxBodyBytes: 64 * 1024,
      baseUrl: 'http://fhir.test',
      // A second sending system: the radiology feed, which must not touch the lab's results.
      clients: new Map([...TEST_CLIENTS, ['ris-system', ['ris']]]),
      beforeCommit: () => {
        if (!failNextCommit) return Promise.resolve();
        failNextCommit = false;
        return Promise.reject(new HubError('HUB_KAFKA_UNAVAILABLE', 'injected failure before commit'));
      },
    });
    adapter = fhirAdapter.adapter;
    topics = await startCollector(ctx, [
      ctx.topic('clinical.patient.v1'),
      ctx.topic('clinical.encounter.v1'),
      ctx.topic('clinical.order.v1'),
      ctx.topic('clinical.result.v1'),
    ]);
  });
  afterAll(async () => {
    await topics?.stop();
    await fhirAdapter?.stop();
    await ctx.cleanup();
  });

  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    adapter.http.inject({
      method: 'POST',
      url,
      headers: { ...FHIR, ...fhirAdapter.auth, ...headers },
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const put = (url: string, body: unknown) =>
    adapter.http.inject({
      method: 'PUT',
      url,
      headers: { ...FHIR, ...fhirAdapter.auth },
      payload: JSON.stringify(body),
    });
  const storedValues = async (value: string) =>
    (await ctx.db.withSchema(ctx.schema).from('identifiers').where({ value }).select('value')) as unknown[];
  const eventsFor = (key: string): ClinicalEvent[] => topics.events().filter((e) => e.data.patientId === key);
  /** Waits until `n` events for the key have been read back, then returns them. */
  const waitEvents = (key: string, n: number) =>
    topics.until(() => {
      const got = eventsFor(key);
      return got.length >= n ? got : undefined;
    }, `${n} events for ${key}`);

  it('POST /Patient: 201 with Location and the stored resource, after PatientRegistered is on the topic', async () => {
    const res = await post('/Patient', patient('MRN-A1'));
    expect(res.statusCode).toBe(201);
    expect(res.headers['content-type']).toContain('application/fhir+json');
    const body = res.json<{ id: string; meta: { versionId: string } }>();
    expect(res.headers['location']).toBe(`http://fhir.test/Patient/${body.id}/_history/1`);
    expect(body.meta.versionId).toBe('1');
    const [e] = await waitEvents(keyOf('MRN-A1'), 1);
    expect(e).toMatchObject({ type: 'PatientRegistered', data: { patientId: keyOf('MRN-A1') } });
    expect(topics.records.find((r) => r.event === e)?.key).toBe(keyOf('MRN-A1'));
  });

  it('a retried POST, and a retried request with the same X-Request-Id, create no second event', async () => {
    const h = { 'x-request-id': 'req-retry-1' };
    const first = await post('/Patient', patient('MRN-A2'), h);
    const again = await post('/Patient', patient('MRN-A2'), h);
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(200);
    expect(again.json<{ id: string }>().id).toBe(first.json<{ id: string }>().id);
    // A later change is the marker: once it is read, anything the retry wrote would have been too.
    expect((await post('/Patient', patient('MRN-A2', 'Changed'), h)).statusCode).toBe(200);
    const got = await waitEvents(keyOf('MRN-A2'), 2);
    expect(got.map((e) => e.type)).toEqual(['PatientRegistered', 'PatientUpdated']);
  });

  it('conditional create: If-None-Exist on the identifier returns the existing resource and writes nothing', async () => {
    const cond = { 'if-none-exist': `identifier=${MRN}|MRN-A3` };
    const first = await post('/Patient', patient('MRN-A3'), cond);
    expect(first.statusCode).toBe(201);
    const second = await post('/Patient', patient('MRN-A3', 'Different'), cond);
    expect(second.statusCode).toBe(200);
    expect(second.json<{ id: string; name: { family: string }[] }>()).toMatchObject({
      id: first.json<{ id: string }>().id,
      name: [{ family: 'Testperson' }],
    });
    const bad = await post('/Patient', patient('MRN-A3'), { 'if-none-exist': 'name=x' });
    expect(bad.statusCode).toBe(400);
    expect(
      (
        await put(`/Patient/${first.json<{ id: string }>().id}`, {
          ...patient('MRN-A3', 'Marker'),
          id: first.json<{ id: string }>().id,
        })
      ).statusCode,
    ).toBe(200);
    const got = await waitEvents(keyOf('MRN-A3'), 2);
    expect(got.map((e) => e.type)).toEqual(['PatientRegistered', 'PatientUpdated']);
  });

  it('PUT creates (201) then updates (200); an Encounter referencing Patient/{id} is keyed by that patient', async () => {
    const created = await put('/Patient/pa4', { ...patient('MRN-A4'), id: 'pa4' });
    expect(created.statusCode).toBe(201);
    const updated = await put('/Patient/pa4', { ...patient('MRN-A4', 'Renamed'), id: 'pa4' });
    expect(updated.statusCode).toBe(200);
    expect(updated.headers['location']).toBe('http://fhir.test/Patient/pa4/_history/2');
    expect((await put('/Patient/pa4', { ...patient('MRN-A4'), id: 'other' })).statusCode).toBe(400);
    const enc = {
      resourceType: 'Encounter',
      id: 'e4',
      status: 'in-progress',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
      identifier: [{ system: 'urn:oid:1.2.3.9', value: 'V-A4' }],
      subject: { reference: 'Patient/pa4' },
      period: { start: '2026-01-02T03:04:05Z' },
    };
    expect((await put('/Encounter/e4', enc)).statusCode).toBe(201);
    expect(
      (
        await put('/Encounter/e4', {
          ...enc,
          status: 'finished',
          period: { ...enc.period, end: '2026-01-03T00:00:00Z' },
        })
      ).statusCode,
    ).toBe(200);
    const got = await waitEvents(keyOf('MRN-A4'), 4);
    // Order holds within a topic (one key, one partition), not across topics.
    expect(got.filter((e) => e.type.startsWith('Patient')).map((e) => e.type)).toEqual([
      'PatientRegistered',
      'PatientUpdated',
    ]);
    const [started, ended] = got.filter((e) => e.type.startsWith('Encounter'));
    expect([started?.type, ended?.type]).toEqual(['EncounterStarted', 'EncounterEnded']);
    expect(
      started?.type === 'EncounterStarted' &&
        ended?.type === 'EncounterEnded' &&
        started.data.encounterId === ended.data.encounterId,
    ).toBe(true);
  });

  it('concurrent updates of one resource get distinct versions and distinct events', async () => {
    const res = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => put('/Patient/pc1', { ...patient('MRN-C1', `Family${n}`), id: 'pc1' })),
    );
    expect(res.map((r) => r.statusCode).sort()).toEqual([200, 200, 200, 200, 201]);
    expect(res.map((r) => r.headers['etag']).sort()).toEqual(['W/"1"', 'W/"2"', 'W/"3"', 'W/"4"', 'W/"5"']);
    const got = await waitEvents(keyOf('MRN-C1'), 5);
    expect(got.map((e) => e.type)).toEqual(['PatientRegistered', ...Array<string>(4).fill('PatientUpdated')]);
    expect(new Set(got.map((e) => e.data.meta.eventId)).size).toBe(5);
  });

  it('an Encounter whose subject is unknown is refused with 422 at Encounter.subject', async () => {
    const res = await post('/Encounter', {
      resourceType: 'Encounter',
      status: 'planned',
      class: { code: 'AMB' },
      subject: { reference: 'Patient/nobody' },
    });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ expression: ['Encounter.subject'] }],
    });
  });

  it('batch: answers per entry; the valid entries are written, the invalid one is not', async () => {
    const res = await post('/', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        {
          fullUrl: 'urn:uuid:0b1c',
          resource: patient('MRN-B1'),
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: { ...patient('MRN-B2'), birthDate: 'not-a-date' },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
            subject: { reference: 'urn:uuid:0b1c' },
            valueQuantity: { value: 5.1, unit: 'mmol/L' },
          },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    expect(res.statusCode).toBe(200);
    const b = res.json<{
      type: string;
      entry: { response: { status: string; outcome?: { issue: { expression: string[] }[] } } }[];
    }>();
    expect(b.type).toBe('batch-response');
    expect(b.entry.map((e) => e.response.status)).toEqual([
      '201 Created',
      '422 Unprocessable Entity',
      '201 Created',
    ]);
    expect(b.entry[1]?.response.outcome?.issue[0]?.expression).toEqual([
      'Bundle.entry[1].resource.birthDate',
    ]);
    const got = await waitEvents(keyOf('MRN-B1'), 2);
    expect(got.map((e) => e.type).sort()).toEqual(['PatientRegistered', 'ResultReported']);
    expect(eventsFor(keyOf('MRN-B2'))).toEqual([]);
  });

  it('transaction: all entries in one Kafka transaction; bundle-local references resolve', async () => {
    const res = await post('/', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:t1', resource: patient('MRN-T1'), request: { method: 'POST', url: 'Patient' } },
        {
          resource: {
            resourceType: 'ServiceRequest',
            status: 'active',
            intent: 'order',
            code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
            subject: { reference: 'urn:uuid:t1' },
          },
          request: { method: 'POST', url: 'ServiceRequest' },
        },
      ],
    });
    expect(res.statusCode).toBe(200);
    const b = res.json<{
      type: string;
      entry: { response: { status: string }; resource: { subject?: { reference: string } } }[];
    }>();
    expect(b.type).toBe('transaction-response');
    expect(b.entry.map((e) => e.response.status)).toEqual(['201 Created', '201 Created']);
    expect(b.entry[1]?.resource.subject?.reference).toMatch(/^Patient\//);
    const got = await waitEvents(keyOf('MRN-T1'), 2);
    expect(got.map((e) => e.type).sort()).toEqual(['OrderPlaced', 'PatientRegistered']);
  });

  it('transaction: a report listed before its three Observations and its Specimen stays one ResultReported with three values, UCUM, range, category, basedOn and issued', async () => {
    const LOINC = 'http://loinc.org';
    const value = (n: string, code: string, v: number) => ({
      fullUrl: `urn:uuid:${n}`,
      resource: {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: LOINC, code }] },
        subject: { reference: 'urn:uuid:r1' },
        valueQuantity: { value: v, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
        referenceRange: [{ low: { value: 3.5 }, high: { value: 5.1 } }],
        specimen: { reference: 'urn:uuid:s1' },
      },
      request: { method: 'POST', url: 'Observation' },
    });
    const res = await post('/', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:r1', resource: patient('MRN-R3'), request: { method: 'POST', url: 'Patient' } },
        {
          resource: {
            resourceType: 'DiagnosticReport',
            status: 'final',
            category: [
              { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB' }] },
            ],
            code: { coding: [{ system: LOINC, code: '24323-8' }] },
            subject: { reference: 'urn:uuid:r1' },
            basedOn: [
              {
                identifier: {
                  system: 'urn:oid:1.2.3.4',
                  value: 'P-R3',
                  type: { coding: [{ code: 'PLAC' }] },
                },
              },
            ],
            issued: '2026-01-20T10:00:00Z',
            specimen: [{ reference: 'urn:uuid:s1' }],
            result: [
              { reference: 'urn:uuid:o1' },
              { reference: 'urn:uuid:o2' },
              { reference: 'urn:uuid:o3' },
            ],
          },
          request: { method: 'POST', url: 'DiagnosticReport' },
        },
        value('o1', '2951-2', 140),
        value('o2', '2823-3', 4.1),
        value('o3', '2075-0', 101),
        {
          fullUrl: 'urn:uuid:s1',
          resource: {
            resourceType: 'Specimen',
            subject: { reference: 'urn:uuid:r1' },
            type: { text: 'serum' },
          },
          request: { method: 'POST', url: 'Specimen' },
        },
      ],
    });
    expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
    const b = res.json<{ entry: { response: { status: string }; resource: { resourceType: string } }[] }>();
    // Answers in the client's order, whatever order the entries were planned in.
    expect(b.entry.map((e) => e.resource.resourceType)).toEqual([
      'Patient',
      'DiagnosticReport',
      'Observation',
      'Observation',
      'Observation',
      'Specimen',
    ]);
    // One transaction, one partition (the patient's key), planned Observations first: had they made
    // results of their own, those would be on the partition ahead of the report's.
    const got = await topics.until(() => {
      const e = eventsFor(keyOf('MRN-R3'));
      return e.some((x) => x.type === 'ResultReported') ? e : undefined;
    }, 'the report');
    const results = got.filter((e) => e.type === 'ResultReported');
    expect(results).toHaveLength(1);
    const r = results[0];
    if (r?.type !== 'ResultReported') throw new Error('no ResultReported');
    expect(r.data).toMatchObject({
      category: 'laboratory',
      issuedAt: Date.UTC(2026, 0, 20, 10),
      placerOrderNumber: { value: 'P-R3', type: 'PLAC' },
      specimens: [{ type: { code: 'serum' } }],
    });
    expect(
      r.data.observations.map((o) => [
        o.code.code,
        o.valueNumber,
        o.unitCode?.code,
        o.referenceLow,
        o.referenceHigh,
      ]),
    ).toEqual([
      ['2951-2', 140, 'mmol/L', 3.5, 5.1],
      ['2823-3', 4.1, 'mmol/L', 3.5, 5.1],
      ['2075-0', 101, 'mmol/L', 3.5, 5.1],
    ]);
  });

  it('AllergyIntolerance, Condition and Coverage: 201 each, and their record events on the patient topic', async () => {
    const p = await post('/Patient', patient('MRN-R4'));
    const subject = { reference: `Patient/${p.json<{ id: string }>().id}` };
    const allergy = await post('/AllergyIntolerance', {
      resourceType: 'AllergyIntolerance',
      patient: subject,
      code: { text: 'Penicillin' },
      clinicalStatus: {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' },
        ],
      },
    });
    expect(allergy.statusCode, allergy.body.slice(0, 300)).toBe(201);
    const condition = await post('/Condition', {
      resourceType: 'Condition',
      subject,
      code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'J18.9' }] },
    });
    expect(condition.statusCode, condition.body.slice(0, 300)).toBe(201);
    const coverage = await post('/Coverage', {
      resourceType: 'Coverage',
      status: 'active',
      beneficiary: subject,
      payor: [{ display: 'Acme Health' }],
      subscriberId: 'M-1',
    });
    expect(coverage.statusCode, coverage.body.slice(0, 300)).toBe(201);
    const got = await waitEvents(keyOf('MRN-R4'), 4);
    expect(got.map((e) => e.type).sort()).toEqual([
      'AllergyRecorded',
      'CoverageRecorded',
      'DiagnosisRecorded',
      'PatientRegistered',
    ]);
  });

  it('transaction with one failing entry: 422 pointing at it, and nothing is written anywhere', async () => {
    const res = await post('/', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: patient('MRN-T2'), request: { method: 'POST', url: 'Patient' } },
        {
          resource: {
            resourceType: 'Observation',
            code: { text: 'x' },
            subject: { identifier: { system: MRN, value: 'MRN-T2' } },
          },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ expression: ['Bundle.entry[1].resource.status'] }],
    });
    expect(await storedValues('MRN-T2')).toEqual([]);
    // Marker for the same key (so the same partition): read it, and the failed bundle's events would be before it.
    expect((await post('/Patient', patient('MRN-T2', 'Marker'))).statusCode).toBe(201);
    const got = await waitEvents(keyOf('MRN-T2'), 1);
    expect(got.map((e) => e.type)).toEqual(['PatientRegistered']);
    expect(got[0]?.type === 'PatientRegistered' && got[0].data.demographics.names[0]?.family).toBe('Marker');
  });

  it('transaction aborted by Kafka: 503, committed-only readers never see its events, the store is untouched', async () => {
    failNextCommit = true;
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: patient('MRN-T3', 'Aborted'), request: { method: 'POST', url: 'Patient' } },
        {
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { text: 'x' },
            subject: { identifier: { system: MRN, value: 'MRN-T3' } },
            valueString: 'y',
          },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    };
    const res = await post('/', bundle);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'transient' }] });
    expect(await storedValues('MRN-T3')).toEqual([]);
    // The client retries: now it commits, as version 1 (the aborted attempt left no trace in the store).
    const retry = await post('/', bundle);
    expect(retry.statusCode).toBe(200);
    // Aborted records precede the committed ones in each partition (same key): once both committed
    // ones are read, any aborted one delivered would have been read too.
    await topics.until(() => {
      const types = eventsFor(keyOf('MRN-T3')).map((e) => e.type);
      return types.includes('PatientRegistered') && types.includes('ResultReported') ? true : undefined;
    }, 'the committed transaction');
    expect(
      eventsFor(keyOf('MRN-T3'))
        .map((e) => e.type)
        .sort(),
    ).toEqual(['PatientRegistered', 'ResultReported']);
  });

  it('counts requests by route pattern and status in /metrics, without ids or values', async () => {
    const m = await adapter.http.inject({ method: 'GET', url: '/metrics' });
    expect(m.statusCode).toBe(200);
    expect(m.body).toMatch(/hub_fhir_requests_total\{route="\/:type",method="POST",status="201"\} \d+/);
    expect(m.body).not.toContain('MRN-');
    expect(m.body).not.toContain('pa4');
  });

  describe('hardening: refused with an OperationOutcome, nothing written', () => {
    const cases: [string, string, number, string | undefined][] = [
      [
        'duplicate key',
        '{"resourceType":"Patient","identifier":[{"system":"s","value":"MRN-H1"}],"gender":"male","gender":"female"}',
        400,
        'Patient.gender',
      ],
      [
        'empty string',
        '{"resourceType":"Patient","identifier":[{"system":"s","value":"MRN-H2"}],"name":[{"family":""}]}',
        400,
        'Patient.name[0].family',
      ],
      [
        'null in an array',
        '{"resourceType":"Patient","identifier":[{"system":"s","value":"MRN-H3"}],"name":[null]}',
        400,
        'Patient.name[0]',
      ],
      [
        '__proto__ key',
        '{"resourceType":"Patient","identifier":[{"system":"s","value":"MRN-H4"}],"__proto__":{"admin":true}}',
        400,
        'Patient.__proto__',
      ],
      [
        'constructor key',
        '{"resourceType":"Patient","identifier":[{"system":"s","value":"MRN-H5"}],"constructor":{"prototype":{}}}',
        400,
        'Patient.constructor',
      ],
      [
        'deep nesting',
        `{"resourceType":"Patient","extension":${'['.repeat(200)}${']'.repeat(200)}}`,
        400,
        undefined,
      ],
      [
        'invalid FHIR',
        '{"resourceType":"Patient","identifier":[{"system":"s","value":"MRN-H6"}],"birthDate":"1980-13-45"}',
        422,
        'Patient.birthDate',
      ],
      [
        'unknown element',
        '{"resourceType":"Patient","identifier":[{"system":"s","value":"MRN-H7"}],"favouriteColour":"red"}',
        422,
        'Patient.favouriteColour',
      ],
    ];
    it.each(cases)('%s', async (_name, body, status, expression) => {
      const res = await post('/Patient', body);
      expect(res.statusCode).toBe(status);
      const oo = res.json<{ resourceType: string; issue: { severity: string; expression?: string[] }[] }>();
      expect(oo.resourceType).toBe('OperationOutcome');
      expect(oo.issue[0]?.severity).toBe('error');
      if (expression) expect(oo.issue[0]?.expression).toEqual([expression]);
      expect(({} as Record<string, unknown>)['admin']).toBeUndefined();
    });

    it('413 above the configured body size, 415 for a non-FHIR content type', async () => {
      const big = JSON.stringify(patient('MRN-H8', 'x'.repeat(70 * 1024)));
      const tooBig = await post('/Patient', big);
      expect(tooBig.statusCode).toBe(413);
      expect(tooBig.json()).toMatchObject({
        resourceType: 'OperationOutcome',
        issue: [{ code: 'too-costly' }],
      });
      const xml = await post('/Patient', '<Patient/>', { 'content-type': 'application/fhir+xml' });
      expect(xml.statusCode).toBe(415);
      expect(xml.json()).toMatchObject({
        resourceType: 'OperationOutcome',
        issue: [{ code: 'not-supported' }],
      });
      const plain = await post('/Patient', JSON.stringify(patient('MRN-H9')), {
        'content-type': 'text/plain',
      });
      expect(plain.statusCode).toBe(415);
      const json = await post('/Patient', patient('MRN-H10'), {
        'content-type': 'application/json; charset=utf-8',
      });
      expect(json.statusCode).toBe(201);
    });

    it('none of the refused requests reached a topic or the store', async () => {
      await waitEvents(keyOf('MRN-H10'), 1);
      for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9]) {
        expect(
          eventsFor(enterprisePatientId([{ system: 's', value: `MRN-H${n}`, type: null }], policy)!),
        ).toEqual([]);
        expect(eventsFor(keyOf(`MRN-H${n}`))).toEqual([]);
      }
      const rows: { value: string }[] = await ctx.db
        .withSchema(ctx.schema)
        .from('identifiers')
        .where('value', 'like', 'MRN-H%')
        .select('value');
      expect(rows.map((r) => r.value)).toEqual(['MRN-H10']);
    });
  });

  describe('authenticated ingest (#17)', () => {
    const glucose = (value: number) => ({
      resourceType: 'Observation',
      id: 'glu-1',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '2345-7', display: 'Glucose' }] },
      subject: { reference: 'Patient/pg1' },
      effectiveDateTime: '2026-01-02T03:04:05Z',
      valueQuantity: { value, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
    });
    const putAs = (url: string, body: unknown, headers: Record<string, string>) =>
      adapter.http.inject({
        method: 'PUT',
        url,
        headers: { ...FHIR, ...headers },
        payload: JSON.stringify(body),
      });
    const stored = async (id: string) =>
      (
        (await ctx.db.withSchema(ctx.schema).from('resources').where({ resource_id: id }).select('*')) as {
          version: number;
          source_system: string;
          resource: { valueQuantity?: { value: number } };
        }[]
      )[0];
    const audits = async (): Promise<AuditEvent[]> =>
      (await scanTopic(ctx.kafka, fhirAdapter.auditTopic)).map(
        (r) => JSON.parse(r.value?.toString('utf8') ?? '{}') as AuditEvent,
      );

    it("regression: PUT Observation without a token is 401, with another source's token 403, with the right one 200 and audited", async () => {
      // Given a released glucose of 9.9, sent by the lab system
      expect((await put('/Patient/pg1', { ...patient('MRN-G1'), id: 'pg1' })).statusCode).toBe(201);
      expect((await put('/Observation/glu-1', glucose(9.9))).statusCode).toBe(201);

      // When someone without a token sends 42: 401 with a challenge, nothing stored
      const anonymous = await putAs('/Observation/glu-1', glucose(42), {});
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.headers['www-authenticate']).toBe('Bearer realm="hub-ingest"');
      // ... and when the radiology system (a valid token, another source) sends it: 403
      const ris = await putAs('/Observation/glu-1', glucose(42), await fhirAuth({ client: 'ris-system' }));
      expect(ris.statusCode).toBe(403);
      // ... or a lab token that may only read
      const readOnly = await putAs(
        '/Observation/glu-1',
        glucose(42),
        await fhirAuth({ scopes: ['system/*.rs'] }),
      );
      expect(readOnly.statusCode).toBe(403);
      expect(readOnly.headers['www-authenticate']).toContain('error="insufficient_scope"');
      expect(await stored('glu-1')).toMatchObject({
        version: 1,
        source_system: 'fhir-test',
        resource: { valueQuantity: { value: 9.9 } },
      });

      // Then the lab's own correction is accepted
      const corrected = await put('/Observation/glu-1', glucose(10.1));
      expect(corrected.statusCode).toBe(200);
      // and the topic holds exactly the lab's two results: one key, one partition, so a refused
      // write published before the correction would be among them
      const results = await waitEvents(keyOf('MRN-G1'), 3);
      expect(
        results.filter((e) => e.type.startsWith('Result')).map((e) => e.data.meta.source.system),
      ).toEqual(['fhir-test', 'fhir-test']);

      // and every answer is on the audit topic: the refusals with why, the writes naming client and patient
      const trail = await audits();
      const desc = trail.map((e) => [e.agent[0]?.altId ?? 'anonymous', e.outcome, e.outcomeDesc ?? '']);
      expect(desc).toEqual(
        expect.arrayContaining([
          ['anonymous', '4', 'no-token'],
          ['ris-system', '4', 'not-owned'],
          ['test-client', '4', 'insufficient-scope'],
          ['test-client', '0', ''],
        ]),
      );
      const ok = trail.filter((e) => e.outcome === '0' && e.subtype?.[0]?.code === 'update');
      expect(ok.some((e) => e.entity?.[0]?.what?.reference === `Patient/${keyOf('MRN-G1')}`)).toBe(true);
    });

    it("GET without a token is 401; with another source's token 404; $import without a token 401", async () => {
      expect((await put('/Patient/pg2', { ...patient('MRN-G2'), id: 'pg2' })).statusCode).toBe(201);
      const anonymous = await adapter.http.inject({ method: 'GET', url: '/Patient/pg2' });
      expect(anonymous.statusCode).toBe(401);
      const ris = await adapter.http.inject({
        method: 'GET',
        url: '/Patient/pg2',
        headers: await fhirAuth({ client: 'ris-system' }),
      });
      expect(ris.statusCode).toBe(404);
      expect(ris.body).not.toContain('Testperson');
      const own = await adapter.http.inject({
        method: 'GET',
        url: '/Patient/pg2',
        headers: fhirAdapter.auth,
      });
      expect(own.statusCode).toBe(200);
      const nul = await adapter.http.inject({
        method: 'GET',
        url: '/Patient/pg2%00',
        headers: fhirAdapter.auth,
      });
      expect(nul.statusCode).toBe(400);
      expect(nul.body).not.toMatch(/SQLSTATE|22021|postgres/i);
      const imported = await adapter.http.inject({
        method: 'POST',
        url: '/$import',
        headers: { 'content-type': 'application/fhir+ndjson' },
        payload: JSON.stringify(patient('MRN-G3')),
      });
      expect(imported.statusCode).toBe(401);
      expect(await storedValues('MRN-G3')).toEqual([]);
    });
  });
});
