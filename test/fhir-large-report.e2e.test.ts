import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProjectorRun, type ProjectorRun } from './support/projectors.js';
import { expectPdfPresented, pseudoPdf } from './support/reports.js';
import { startTestFhirAdapter, type TestFhirAdapter } from './support/fhir-adapter.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import type { FhirAdapter } from '../services/adapter-fhir/app.js';
import { startTestApi, type TestApi } from './support/api.js';
import type { TestContext } from './support/harness.js';

/**
 * The FHIR route of a real-size report: a DiagnosticReport whose presentedForm carries a 5 MB PDF
 * (base64) is POSTed to the FHIR adapter, the PDF is lifted into AttachmentStored, the portal
 * stores it by content and the API serves it back as presentedForm -> Binary, byte-identical.
 */
const PDF = pseudoPdf(5 * 1024 * 1024, 20260304);
const MRN = 'urn:oid:2.16.840.1.113883.3.999.1';

describe('large report over FHIR: presentedForm -> Kafka -> portal -> API Binary', () => {
  let run: ProjectorRun;
  let ctx: TestContext;
  let fhirAdapter: TestFhirAdapter;
  let fhir: FhirAdapter;
  let api: TestApi;
  let stable: string;

  beforeAll(async () => {
    run = await startProjectorRun('fhirlarge', ['portal']);
    ctx = run.ctx;
    stable = run.stable.portal;
    api = await startTestApi(ctx, {
      portalSchema: stable,
      clinicalTopics: clinicalTopics(ctx.topic),
      subject: 'pathologist-1',
    });
    fhirAdapter = await startTestFhirAdapter(ctx, {
      policy: { enterpriseSystems: [MRN], authorityAliases: {} },
      // The production default (FHIR_MAX_BODY_BYTES) is what is under test.
      maxBodyBytes: 24 * 1024 * 1024,
    });
    fhir = fhirAdapter.adapter;
  }, 60_000);

  afterAll(async () => {
    await fhirAdapter?.stop();
    await api?.stop();
    await run?.cleanup();
  });

  it('serves the PDF posted in presentedForm back byte-identical through DiagnosticReport.presentedForm and Binary', async () => {
    // given a transaction with a Patient and a final report presenting a 5 MB PDF
    const res = await fhir.http.inject({
      method: 'POST',
      url: '/',
      headers: { 'content-type': 'application/fhir+json', ...fhirAdapter.auth },
      payload: JSON.stringify({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:p1',
            resource: { resourceType: 'Patient', identifier: [{ system: MRN, value: 'MRN-FLR-1' }] },
            request: { method: 'POST', url: 'Patient' },
          },
          {
            resource: {
              resourceType: 'DiagnosticReport',
              identifier: [{ system: 'urn:oid:2.16.840.1.113883.3.999.7', value: 'RPT-FLR-1' }],
              status: 'final',
              code: { coding: [{ system: 'http://loinc.org', code: '11526-1', display: 'Pathology study' }] },
              subject: { reference: 'urn:uuid:p1' },
              issued: '2026-03-04T10:10:00Z',
              presentedForm: [
                {
                  contentType: 'application/pdf',
                  data: PDF.toString('base64'),
                  size: PDF.length,
                  hash: createHash('sha1').update(PDF).digest('base64'),
                  title: 'Pathology report PDF',
                },
              ],
            },
            request: { method: 'POST', url: 'DiagnosticReport' },
          },
        ],
      }),
    });
    // then it is accepted
    expect(res.statusCode, res.body.slice(0, 500)).toBe(200);

    // when the portal has projected it, the report presents the PDF ...
    await expectPdfPresented(ctx, api, stable, PDF, 'Pathology report PDF');
  });
});
