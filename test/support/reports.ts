import { createHash } from 'node:crypto';
import type { Bundle, DiagnosticReport } from '@medplum/fhirtypes';
import { expect } from 'vitest';
import type { TestApi } from './api.js';
import { eventually, type TestContext } from './harness.js';

/** A deterministic pseudo-PDF: a PDF header, then bytes from a fixed LCG (incompressible, like a real one). */
export function pseudoPdf(size: number, seed = 20260303): Buffer {
  const head = Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1');
  const b = Buffer.alloc(size);
  head.copy(b);
  let x = seed;
  for (let i = head.length; i < size - 6; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  b.write('%%EOF\n', size - 6, 'latin1');
  return b;
}

/**
 * Waits until the portal (schema `stable`) holds one report and its stored
 * PDF, then checks through the API that the report presents it and that the
 * Binary it names is the PDF byte for byte. Returns the report.
 */
export async function expectPdfPresented(
  ctx: TestContext,
  api: TestApi,
  stable: string,
  pdf: Buffer,
  title: string,
): Promise<DiagnosticReport> {
  const sha256 = createHash('sha256').update(pdf).digest('hex');
  const patientId = await eventually(
    async () => {
      const rows: { patient_id: string }[] = await ctx.db
        .withSchema(stable)
        .from('reports')
        .select('patient_id');
      const stored: unknown[] = await ctx.db.withSchema(stable).from('attachments').select('sha256');
      return rows.length === 1 && stored.length === 1 ? rows[0]!.patient_id : undefined;
    },
    { what: 'report and attachment projected', timeoutMs: 60_000 },
  );
  const search = await api.get(`/fhir/DiagnosticReport?patient=${encodeURIComponent(patientId)}`);
  expect(search.statusCode, search.body).toBe(200);
  const report = search.json<Bundle>().entry![0]!.resource as DiagnosticReport;
  expect(report.presentedForm).toEqual([
    {
      contentType: 'application/pdf',
      url: `Binary/${sha256}`,
      size: pdf.length,
      hash: createHash('sha1').update(pdf).digest('base64'),
      title,
    },
  ]);
  const bytes = await api.get(`/fhir/${report.presentedForm![0]!.url!}`, 'application/pdf');
  expect(bytes.statusCode).toBe(200);
  expect(bytes.headers['content-type']).toBe('application/pdf');
  expect(createHash('sha256').update(bytes.rawPayload).digest('hex')).toBe(sha256);
  return report;
}
