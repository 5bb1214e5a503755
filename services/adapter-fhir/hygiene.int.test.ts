import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFhirAdapter, type TestFhirAdapter } from '../../test/support/fhir-adapter.js';
import { enterprisePatientId, type IdentityPolicy } from '../../libs/identity/index.js';
import { startCollector, type Collector } from '../../test/fixtures/fhir/collector.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import type { FhirAdapter } from './app.js';

const MRN = 'urn:oid:2.16.840.1.113883.3.999.1';
const policy: IdentityPolicy = { enterpriseSystems: [MRN], authorityAliases: {} };
const keyOf = (mrn: string) => enterprisePatientId([{ system: MRN, value: mrn, type: 'MR' }], policy)!;
const FHIR = { 'content-type': 'application/fhir+json' };

const patient = (mrn: string, family = 'Testperson') => ({
  resourceType: 'Patient',
  identifier: [{ system: MRN, value: mrn }],
  name: [{ family, given: ['Alex'] }],
  gender: 'female',
  birthDate: '1980-02-03',
});

/**
 * Identifier hygiene and text validity through the real FHIR adapter
 * (fastify inject, real broker, registry and Postgres): a bidi control in an
 * identifier, a "\udc00" escape or invalid UTF-8 bytes get 400 with an
 * OperationOutcome, and nothing reaches the topics or the store. A control
 * request after each shows the collector would have seen an event.
 */
describe('adapter-fhir: identifiers are what they look like', () => {
  let ctx: TestContext;
  let fhirAdapter: TestFhirAdapter;
  let adapter: FhirAdapter;
  let topics: Collector;

  beforeAll(async () => {
    ctx = await createTestContext('fhirhyg');
    fhirAdapter = await startTestFhirAdapter(ctx, { policy, maxBodyBytes: 64 * 1024 });
    adapter = fhirAdapter.adapter;
    topics = await startCollector(ctx, [ctx.topic('clinical.patient.v1')]);
  });
  afterAll(async () => {
    await topics?.stop();
    await fhirAdapter?.stop();
    await ctx?.cleanup();
  });

  const post = (url: string, payload: string | Buffer, requestId: string) =>
    adapter.http.inject({
      method: 'POST',
      url,
      headers: { ...FHIR, ...fhirAdapter.auth, 'x-request-id': requestId },
      payload,
    });
  const storedResources = async () =>
    Number((await ctx.db.withSchema(ctx.schema).from('resources').count<{ n: string }[]>({ n: '*' }))[0]!.n);
  const eventsOfRequest = (requestId: string) =>
    topics.events().filter((e) => e.data.meta.source.messageId === requestId);

  /** Posts a good Patient and waits for its event: anything the bad request had written would be seen by now. */
  async function control(mrn: string): Promise<void> {
    const res = await post('/Patient', JSON.stringify(patient(mrn)), `ok-${mrn}`);
    expect(res.statusCode).toBe(201);
    await topics.until(
      () => topics.events().find((e) => e.data.patientId === keyOf(mrn)),
      `event for the control patient ${mrn}`,
    );
  }

  it('given POST /Patient with an RLO bidi control in the identifier, then 400 naming Patient.identifier[0].value, nothing written', async () => {
    const before = await storedResources();
    const res = await post('/Patient', JSON.stringify(patient('MRN\u202e-9001')), 'bad-bidi');
    expect(res.statusCode).toBe(400);
    const oo = res.json<{ resourceType: string; issue: { expression?: string[]; diagnostics: string }[] }>();
    expect(oo.resourceType).toBe('OperationOutcome');
    expect(oo.issue[0]!.expression).toEqual(['Patient.identifier[0].value']);
    expect(oo.issue[0]!.diagnostics).not.toContain('9001');
    await control('MRN-CTRL-1');
    expect(eventsOfRequest('bad-bidi')).toEqual([]);
    expect(await storedResources()).toBe(before + 1);
  });

  it('given a body with a "\\udc00" escape in a name, then 400 and nothing written', async () => {
    const before = await storedResources();
    const body = JSON.stringify(patient('MRN-9002')).replace('"Testperson"', '"Test\\udc00person"');
    const res = await post('/Patient', body, 'bad-surrogate');
    expect(res.statusCode).toBe(400);
    expect(res.json<{ issue: { expression?: string[] }[] }>().issue[0]!.expression).toEqual([
      'Patient.name[0].family',
    ]);
    await control('MRN-CTRL-2');
    expect(eventsOfRequest('bad-surrogate')).toEqual([]);
    expect(await storedResources()).toBe(before + 1);
  });

  it('given a body whose bytes are not UTF-8, then 400 and nothing written', async () => {
    const before = await storedResources();
    const good = Buffer.from(JSON.stringify(patient('MRN-9003', 'Mxller')), 'utf8');
    const at = good.indexOf('Mxller') + 1;
    const bytes = Buffer.concat([good.subarray(0, at), Buffer.from([0xfc]), good.subarray(at + 1)]);
    const res = await post('/Patient', bytes, 'bad-utf8');
    expect(res.statusCode).toBe(400);
    expect(res.json<{ issue: { diagnostics: string }[] }>().issue[0]!.diagnostics).toContain('UTF-8');
    await control('MRN-CTRL-3');
    expect(eventsOfRequest('bad-utf8')).toEqual([]);
    expect(await storedResources()).toBe(before + 1);
  });

  it('given the same name in NFD and then in NFC, then the second is a no-op (one stored value)', async () => {
    const nfc = 'Müller'.normalize('NFC');
    const first = await post('/Patient', JSON.stringify(patient('MRN-9004', nfc.normalize('NFD'))), 'nfd-1');
    expect(first.statusCode).toBe(201);
    expect(first.json<{ name: { family: string }[] }>().name[0]!.family).toBe(nfc);
    const again = await post('/Patient', JSON.stringify(patient('MRN-9004', nfc)), 'nfc-1');
    expect(again.statusCode).toBe(200);
    expect(again.json<{ meta: { versionId: string } }>().meta.versionId).toBe('1');
  });

  it('given a $import NDJSON file with one line that is not UTF-8, then only that line is dead-lettered', async () => {
    const line = (mrn: string) => Buffer.from(JSON.stringify(patient(mrn)), 'utf8');
    const body = Buffer.concat([
      line('MRN-IMP-1'),
      Buffer.from('\n'),
      Buffer.from('{"resourceType":"Patient","name":[{"family":"M'),
      Buffer.from([0xfc]),
      Buffer.from('ller"}]}\n'),
      line('MRN-IMP-2'),
      Buffer.from('\n'),
    ]);
    const res = await adapter.http.inject({
      method: 'POST',
      url: '/$import',
      headers: { 'content-type': 'application/fhir+ndjson', ...fhirAdapter.auth },
      payload: body,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ counts: { created: number; invalid: number } }>().counts).toMatchObject({
      created: 2,
      invalid: 1,
    });
  });
});
