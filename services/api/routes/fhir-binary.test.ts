import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fakeApiPerTest } from '../../../test/support/api.js';
import type { StoredBinary } from '../readers/binary.js';

const startApi = fakeApiPerTest();

const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(300, 7)]);
const SHA = createHash('sha256').update(PDF).digest('hex');
const SHA1 = createHash('sha1').update(PDF).digest('base64');
const stored: StoredBinary = { contentType: 'application/pdf', size: PDF.length, sha1: SHA1, data: PDF };

/** P1's released report presents the PDF; nothing else is stored. */
async function binaryApi(owners: string[] = ['P1']) {
  const looked: string[] = [];
  const api = await startApi({
    binaries: {
      owners: (sha) => (looked.push(sha), Promise.resolve(sha === SHA ? owners : [])),
      read: (sha) => Promise.resolve(sha === SHA ? stored : null),
      hashes: (shas) => Promise.resolve(new Map(shas.filter((s) => s === SHA).map((s) => [s, SHA1]))),
    },
    portal: {
      search: () =>
        Promise.resolve({
          total: 1,
          resources: [
            {
              resourceType: 'DiagnosticReport',
              id: 'R1',
              status: 'final',
              code: { text: 'CBC' },
              presentedForm: [{ contentType: 'application/pdf', url: `Binary/${SHA}` }],
            },
          ],
        }),
    },
  });
  return { api, looked };
}

const issue = (body: string) => (JSON.parse(body) as OperationOutcome).issue[0]!;

describe('GET /fhir/Binary/:sha256', () => {
  it('given its patient, when read, then the bytes as sent, or a FHIR Binary when asked for FHIR JSON', async () => {
    const { api } = await binaryApi();
    const raw = await api.get(`/fhir/Binary/${SHA}`, 'patient', { accept: 'application/pdf' });
    expect(raw.statusCode).toBe(200);
    expect(raw.headers['content-type']).toBe('application/pdf');
    expect(raw.rawPayload.equals(PDF)).toBe(true);
    const fhir = await api.get(`/fhir/Binary/${SHA}`, 'staff', { accept: 'application/fhir+json' });
    expect(fhir.headers['content-type']).toMatch(/application\/fhir\+json/);
    const bin = JSON.parse(fhir.body) as { resourceType: string; id: string; data: string };
    expect(bin).toMatchObject({ resourceType: 'Binary', id: SHA, contentType: 'application/pdf' });
    expect(Buffer.from(bin.data, 'base64').equals(PDF)).toBe(true);
    // Audited as a read of the owner's DiagnosticReport.
    expect(api.audits.map((a) => a.entity?.[0]?.what?.reference)).toEqual(['Patient/P1', 'Patient/P1']);
  });

  it('given a report presenting it, when searched, then presentedForm carries its hash', async () => {
    const { api } = await binaryApi();
    const b = JSON.parse((await api.get('/fhir/DiagnosticReport?patient=P1', 'staff')).body) as Bundle;
    expect(b.entry![0]!.resource).toMatchObject({ presentedForm: [{ url: `Binary/${SHA}`, hash: SHA1 }] });
  });

  it("given another patient's content, unknown content, a malformed id or no token, then 403, 404, 400, 401", async () => {
    const { api, looked } = await binaryApi(['P2']);
    expect((await api.get(`/fhir/Binary/${SHA}`, 'patient')).statusCode).toBe(403);
    const unknown = await api.get(`/fhir/Binary/${'0'.repeat(64)}`, 'staff');
    expect(unknown.statusCode).toBe(404);
    expect(issue(unknown.body)).toMatchObject({ code: 'not-found', diagnostics: 'no such Binary' });
    expect((await api.get('/fhir/Binary/not-a-hash', 'staff')).statusCode).toBe(400);
    const none = await api.get(`/fhir/Binary/${SHA}`);
    expect(none.statusCode).toBe(401);
    expect(issue(none.body).code).toBe('login');
    // Owners are looked up for authenticated, well-formed requests only.
    expect(looked).toEqual([SHA, '0'.repeat(64)]);
    expect(api.audits.map((a) => a.outcome)).toEqual(['4', '4', '4', '4']);
  });
});
