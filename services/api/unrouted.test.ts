import type { OperationOutcome } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { fakeApiPerTest } from '../../test/support/api.js';
import { phiAreaOf } from './security.js';

/** Requests no route matches, under a PHI area: 404, and an AuditEvent naming the area only. */
const startApi = fakeApiPerTest();

describe('unrouted requests on PHI paths', () => {
  it('given unrouted FHIR, patient and billing paths, when asked, then 404 and one denied AuditEvent each, without the path', async () => {
    const api = await startApi();
    const fhir = await api.get('/fhir/Medication/M1', 'staff');
    expect(fhir.statusCode).toBe(404);
    expect(fhir.headers['content-type']).toContain('application/fhir+json');
    expect((JSON.parse(fhir.body) as OperationOutcome).issue[0]).toMatchObject({
      code: 'not-found',
      diagnostics: 'unknown FHIR route',
    });
    expect(fhir.headers['cache-control']).toBe('no-store');
    const others = [
      await api.get('/patients/P1/record'),
      await api.get('/FHIR/Patient/P1'),
      await api.get('/billing/accounts/E1/secret', 'billing'),
      await api.http.inject({ method: 'DELETE', url: '/fhir/Patient/P1' }),
      await api.get('/fhir/Patient/P1%00/x'),
    ];
    expect(others.map((r) => r.statusCode)).toEqual([404, 404, 404, 404, 404]);
    expect(JSON.parse(others[0]!.body)).toMatchObject({ code: 'HUB_NOT_FOUND' });
    expect(api.audits.map((a) => [a.outcome, a.outcomeDesc, a.entity?.map((e) => e.what?.display)])).toEqual([
      ['4', 'unrouted', ['GET /fhir/*']],
      ['4', 'unrouted', ['GET /patients/*']],
      ['4', 'unrouted', ['GET /fhir/*']],
      ['4', 'unrouted', ['GET /billing/*']],
      ['4', 'unrouted', ['DELETE /fhir/*']],
      ['4', 'unrouted', ['GET /fhir/*']],
    ]);
    // Who asked, when the token verifies; never a patient from the path.
    expect(api.audits[0]!.agent[0]!.who?.identifier?.value).toBe('nurse-1');
    expect(api.audits[1]!.agent[0]!.who?.display).toBe('anonymous');
    const text = JSON.stringify(api.audits);
    expect(text).not.toContain('P1');
    expect(text).not.toContain('M1');
    expect(text).not.toContain('\\u0000');
  });

  it('given a URL the router cannot decode, when asked, then 400 without the path, audited under a PHI area', async () => {
    const api = await startApi();
    for (const url of ['/fhir/Patient/P1%FF', '/billing/accounts/E1%ED%A0%80/charges', '/health%FF']) {
      const r = await api.get(url, 'staff');
      expect(r.statusCode, url).toBe(400);
      expect(r.body, url).not.toMatch(/P1|E1|health/);
    }
    expect(JSON.parse((await api.get('/fhir/Patient/P1%FF')).body)).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ code: 'invalid', diagnostics: 'the URL is not valid' }],
    });
    expect(api.audits.map((a) => [a.outcomeDesc, a.entity?.map((e) => e.what?.display)])).toEqual([
      ['invalid-input', ['GET /fhir/*']],
      ['invalid-input', ['GET /billing/*']],
      ['invalid-input', ['GET /fhir/*']],
    ]);
  });

  it('given an unrouted path outside PHI areas, when asked, then 404 and nothing audited', async () => {
    const api = await startApi();
    for (const url of ['/wp-admin', '/', '/fhirx/Patient', '/docs-nope']) {
      expect((await api.get(url)).statusCode, url).toBe(404);
    }
    expect(api.audits).toEqual([]);
  });

  it('given the audit sink failing, when an unrouted PHI path is asked, then 503 (no record, no answer)', async () => {
    const api = await startApi();
    api.failAudit(true);
    const r = await api.get('/fhir/Nope');
    expect(r.statusCode).toBe(503);
    expect(r.headers['content-type']).toContain('application/fhir+json');
  });

  it('given paths, then the area is the first segment, decoded, in any case', () => {
    expect(phiAreaOf('/fhir/x?y=1')).toBe('fhir');
    expect(phiAreaOf('//./Patients/1')).toBe('patients');
    expect(phiAreaOf('/%66hir/Patient')).toBe('fhir');
    expect(phiAreaOf('/%E0%A4%A/x')).toBeNull();
    expect(phiAreaOf('/metrics')).toBeNull();
  });
});
