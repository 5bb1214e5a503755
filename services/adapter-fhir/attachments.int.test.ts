import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestFhirAdapter, type TestFhirAdapter } from '../../test/support/fhir-adapter.js';
import { codeOf, type ClinicalEvent } from '../../libs/events/index.js';
import { enterprisePatientId, type IdentityPolicy } from '../../libs/identity/index.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { startCollector, type Collector } from '../../test/fixtures/fhir/collector.js';
import type { FhirAdapter } from './app.js';

const MRN = 'urn:oid:2.16.840.1.113883.3.999.1';
const policy: IdentityPolicy = { enterpriseSystems: [MRN], authorityAliases: {} };
const keyOf = (mrn: string) => enterprisePatientId([{ system: MRN, value: mrn, type: 'MR' }], policy)!;
const FHIR = { 'content-type': 'application/fhir+json' };
/** The adapter's default body limit (main.ts FHIR_MAX_BODY_BYTES). */
const MAX_BODY = 24 * 1024 * 1024;

const patient = (mrn: string) => ({
  resourceType: 'Patient',
  identifier: [{ system: MRN, value: mrn }],
  name: [{ family: 'Testperson', given: ['Alex'] }],
});

/** Made-up PDF bytes (a header, then varied filler). */
function pdf(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 131 + seed * 17 + (i >> 8)) & 0xff;
  Buffer.from('%PDF-1.7\n').copy(b);
  return b;
}
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const report = (subject: object, forms: object[], reportNo: string) => ({
  resourceType: 'DiagnosticReport',
  identifier: [{ system: 'urn:oid:2.16.840.1.113883.3.999.7', value: reportNo }],
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '11526-1', display: 'Pathology study' }] },
  subject,
  issued: '2026-01-20T10:00:00Z',
  presentedForm: forms,
});

/**
 * DiagnosticReport.presentedForm over HTTP against the real broker, registry and Postgres: the PDF
 * is lifted onto the attachment topic and the result refers to it (docs/large-messages.md).
 */
describe('adapter-fhir: presentedForm content is lifted into AttachmentStored', () => {
  let ctx: TestContext;
  let fhirAdapter: TestFhirAdapter;
  let adapter: FhirAdapter;
  let topics: Collector;

  beforeAll(async () => {
    ctx = await createTestContext('fhiratt');
    fhirAdapter = await startTestFhirAdapter(ctx, {
      policy,
      maxBodyBytes: MAX_BODY,
      baseUrl: 'http://fhir.test',
    });
    adapter = fhirAdapter.adapter;
    topics = await startCollector(ctx, [
      ctx.topic('clinical.patient.v1'),
      ctx.topic('clinical.result.v1'),
      ctx.topic('clinical.attachment.v1'),
    ]);
  }, 60_000);
  afterAll(async () => {
    await topics?.stop();
    await fhirAdapter?.stop();
    await ctx?.cleanup();
  });

  const post = (url: string, body: unknown) =>
    adapter.http.inject({
      method: 'POST',
      url,
      headers: { ...FHIR, ...fhirAdapter.auth },
      payload: JSON.stringify(body),
    });
  const eventsFor = (key: string, type: ClinicalEvent['type']): ClinicalEvent[] =>
    topics.events().filter((e) => e.type === type && e.data.patientId === key);
  const waitFor = (key: string, type: ClinicalEvent['type'], n: number) =>
    topics.until(() => {
      const got = eventsFor(key, type);
      return got.length >= n ? got : undefined;
    }, `${n} ${type} for ${key}`);

  it('POST a DiagnosticReport with a 3 MB PDF: 201, AttachmentStored with its sha256/size/bytes, ResultReported refers to it', async () => {
    const bytes = pdf(3 * 1024 * 1024, 1);
    const p = await post('/Patient', patient('MRN-ATT1'));
    expect(p.statusCode).toBe(201);
    const patientRef = { reference: `Patient/${p.json<{ id: string }>().id}` };
    const body = report(
      patientRef,
      [
        {
          contentType: 'application/pdf',
          data: bytes.toString('base64'),
          size: bytes.length,
          title: 'Pathology report',
        },
      ],
      'RPT-ATT1',
    );
    expect(JSON.stringify(body).length).toBeGreaterThan(4 * 1024 * 1024); // well over the old 1 MiB limit
    const res = await post('/DiagnosticReport', body);
    expect(res.statusCode, res.body.slice(0, 500)).toBe(201);
    const key = keyOf('MRN-ATT1');
    const [att] = await waitFor(key, 'AttachmentStored', 1);
    if (att?.type !== 'AttachmentStored') throw new Error('no AttachmentStored');
    expect(att.data).toMatchObject({
      sha256: sha256(bytes),
      size: bytes.length,
      contentType: 'application/pdf',
    });
    expect(sha256(att.data.data)).toBe(sha256(bytes));
    expect(topics.records.find((r) => r.event === att)).toMatchObject({
      topic: ctx.topic('clinical.attachment.v1'),
      key,
    });
    const [result] = await waitFor(key, 'ResultReported', 1);
    if (result?.type !== 'ResultReported') throw new Error('no ResultReported');
    expect(result.data.observations).toEqual([
      expect.objectContaining({
        valueType: 'ED',
        attachment: {
          sha256: sha256(bytes),
          size: bytes.length,
          contentType: 'application/pdf',
          title: 'Pathology report',
        },
      }),
    ]);
    // The result record is small: the bytes travel once, on the attachment topic.
    const resultRecord = topics.records.find((r) => r.event === result);
    expect(resultRecord?.value?.length ?? Infinity).toBeLessThan(16 * 1024);
  });

  it('bad base64 in presentedForm: 400 naming the element, and nothing is written', async () => {
    const p = await post('/Patient', patient('MRN-ATT2'));
    const patientRef = { reference: `Patient/${p.json<{ id: string }>().id}` };
    const good = pdf(200_000, 2).toString('base64');
    const damaged = `${good.slice(0, 1000)}*${good.slice(1001)}`;
    const res = await post(
      '/DiagnosticReport',
      report(patientRef, [{ contentType: 'application/pdf', data: damaged }], 'RPT-ATT2'),
    );
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', expression: ['DiagnosticReport.presentedForm[0].data'] }],
    });
    const size = await post(
      '/DiagnosticReport',
      report(patientRef, [{ contentType: 'application/pdf', data: good, size: 12 }], 'RPT-ATT2'),
    );
    expect(size.statusCode).toBe(400);
    expect(size.json()).toMatchObject({
      issue: [{ expression: ['DiagnosticReport.presentedForm[0].size'] }],
    });
    const stored = (await ctx.db
      .withSchema(ctx.schema)
      .from('identifiers')
      .where({ value: 'RPT-ATT2' })
      .select('value')) as unknown[];
    expect(stored).toEqual([]);
    // Marker: a good report for the same patient (same key, same partitions); the refused ones
    // would have been read before it.
    const marker = pdf(1000, 3);
    expect(
      (
        await post(
          '/DiagnosticReport',
          report(
            patientRef,
            [{ contentType: 'application/pdf', data: marker.toString('base64') }],
            'RPT-ATT2M',
          ),
        )
      ).statusCode,
    ).toBe(201);
    const key = keyOf('MRN-ATT2');
    await waitFor(key, 'ResultReported', 1);
    const atts = await waitFor(key, 'AttachmentStored', 1);
    expect(atts.map((e) => e.type === 'AttachmentStored' && e.data.sha256)).toEqual([sha256(marker)]);
    expect(eventsFor(key, 'ResultReported')).toHaveLength(1);
  });

  it('POST a DiagnosticReport whose presentedForm is a url only (valid R4): 201, ResultReported carries an RP value, no AttachmentStored', async () => {
    const p = await post('/Patient', patient('MRN-ATT6'));
    expect(p.statusCode).toBe(201);
    const patientRef = { reference: `Patient/${p.json<{ id: string }>().id}` };
    const url = 'https://pacs.example/wado?requestType=WADO&studyUID=1.2.3&contentType=application%2Fpdf';
    const res = await post(
      '/DiagnosticReport',
      report(patientRef, [{ contentType: 'application/pdf', url, title: 'CT report (PACS)' }], 'RPT-ATT6'),
    );
    expect(res.statusCode, res.body.slice(0, 500)).toBe(201);
    const key = keyOf('MRN-ATT6');
    const [result] = await waitFor(key, 'ResultReported', 1);
    if (result?.type !== 'ResultReported') throw new Error('no ResultReported');
    expect(result.data.observations).toEqual([
      expect.objectContaining({
        sequence: 1,
        code: codeOf('http://loinc.org', '11526-1', 'CT report (PACS)'),
        valueType: 'RP',
        valueString: url,
        valueCode: codeOf('urn:ietf:bcp:13', 'application/pdf'),
        status: 'final',
        attachment: null,
      }),
    ]);
    // A link is not content: the mapper lifts nothing, so no AttachmentStored for this patient
    // (the unit tests in libs/fhir check the event list exactly).
    expect(eventsFor(key, 'AttachmentStored')).toEqual([]);
  });

  it('a transaction Bundle with a Patient and a report with a 5 MB PDF: the same events, in one transaction', async () => {
    const bytes = pdf(5 * 1024 * 1024, 4);
    const res = await post('/', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:p-att3',
          resource: patient('MRN-ATT3'),
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: report(
            { reference: 'urn:uuid:p-att3' },
            [{ contentType: 'application/pdf', data: bytes.toString('base64') }],
            'RPT-ATT3',
          ),
          request: { method: 'POST', url: 'DiagnosticReport' },
        },
      ],
    });
    expect(res.statusCode, res.body.slice(0, 500)).toBe(200);
    const key = keyOf('MRN-ATT3');
    const [att] = await waitFor(key, 'AttachmentStored', 1);
    expect(att?.type === 'AttachmentStored' && sha256(att.data.data)).toBe(sha256(bytes));
    const [result] = await waitFor(key, 'ResultReported', 1);
    expect(result?.type === 'ResultReported' && result.data.observations[0]?.attachment?.sha256).toBe(
      sha256(bytes),
    );
  });

  it('a transaction Bundle whose report has bad base64: 400 naming the entry element, nothing written', async () => {
    const res = await post('/', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:p-att4',
          resource: patient('MRN-ATT4'),
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: report(
            { reference: 'urn:uuid:p-att4' },
            [{ contentType: 'application/pdf', data: 'JVBERi0x!LjQK' }],
            'RPT-ATT4',
          ),
          request: { method: 'POST', url: 'DiagnosticReport' },
        },
      ],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      issue: [{ expression: ['Bundle.entry[1].resource.presentedForm[0].data'] }],
    });
    expect(
      (await post('/Patient', { ...patient('MRN-ATT4'), name: [{ family: 'Marker' }] })).statusCode,
    ).toBe(201);
    const got = await waitFor(keyOf('MRN-ATT4'), 'PatientRegistered', 1);
    expect(got).toHaveLength(1);
    expect(got[0]?.type === 'PatientRegistered' && got[0].data.demographics.names[0]?.family).toBe('Marker');
  });
});
