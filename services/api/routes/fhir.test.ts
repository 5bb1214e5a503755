import { validateResource } from '@medplum/core';
import type { CapabilityStatement, OperationOutcome } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { HubError } from '../../../libs/errors/index.js';
import { loadFhirDefinitions } from '../../../libs/fhir/validate.js';
import { fakeApiPerTest } from '../../../test/support/api.js';

/** The FHIR context as a whole: what it writes itself, and how every error is answered. */
const startApi = fakeApiPerTest();

const outcomeOf = (body: string) => JSON.parse(body) as OperationOutcome;

describe('FHIR resources the API writes itself', () => {
  it('given the R4 definitions, when validated, then CapabilityStatement, OperationOutcome and AuditEvent conform', async () => {
    const api = await startApi();
    loadFhirDefinitions();
    const meta = await api.get('/fhir/metadata');
    expect(meta.statusCode).toBe(200);
    expect(meta.headers['content-type']).toContain('application/fhir+json');
    const cap = JSON.parse(meta.body) as CapabilityStatement;
    expect(cap).toMatchObject({ resourceType: 'CapabilityStatement', fhirVersion: '4.0.1' });
    expect(() => validateResource(cap)).not.toThrow();
    // Public: no token asked, nothing audited.
    expect(api.audits).toEqual([]);

    const denied = await api.get('/fhir/Patient/P2', 'patient');
    expect(denied.statusCode).toBe(403);
    expect(() => validateResource(outcomeOf(denied.body))).not.toThrow();
    expect(api.audits).toHaveLength(1);
    expect(() => validateResource(api.audits[0]!)).not.toThrow();
  });
});

describe('FHIR error answers', () => {
  it('given an unknown FHIR route, when called, then the answer is a not-found OperationOutcome', async () => {
    const api = await startApi();
    const r = await api.get('/fhir/Medication', 'staff');
    expect(r.statusCode).toBe(404);
    expect(r.headers['content-type']).toContain('application/fhir+json');
    expect(outcomeOf(r.body)).toEqual({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'not-found', diagnostics: 'unknown FHIR route' }],
    });
  });

  it('given a reader failing with driver text, when answered, then its text reaches neither the caller nor the log', async () => {
    const api = await startApi({
      portal: {
        patient: () => Promise.reject(new Error('duplicate key value (patient_id)=(Zzcanary) violates ...')),
      },
    });
    const r = await api.get('/fhir/Patient/P1', 'patient');
    expect(r.statusCode).toBe(500);
    expect(outcomeOf(r.body).issue[0]).toMatchObject({ severity: 'fatal', code: 'exception' });
    expect(r.body).not.toContain('Zzcanary');
    expect(api.logLines.join('\n')).toContain('HUB_INTERNAL');
    expect(api.logLines.join('\n')).not.toContain('Zzcanary');
    // The failed read is audited as such (outcome 8: serious failure).
    expect(api.audits.map((a) => a.outcome)).toEqual(['8']);
  });

  it('given hub errors, when answered, then the status and issue type follow the code', async () => {
    let fail: HubError = new HubError('HUB_DB_UNAVAILABLE', 'query exceeded 300 ms');
    const api = await startApi({ portal: { patient: () => Promise.reject(fail) } });
    const slow = await api.get('/fhir/Patient/P1', 'patient');
    expect(slow.statusCode).toBe(503);
    expect(outcomeOf(slow.body).issue[0]).toMatchObject({ severity: 'fatal', code: 'transient' });
    fail = new HubError('HUB_FORBIDDEN', 'access denied (patient-mismatch)');
    const forbidden = await api.get('/fhir/Patient/P1', 'patient');
    expect(forbidden.statusCode).toBe(403);
    expect(outcomeOf(forbidden.body).issue[0]).toEqual({
      severity: 'error',
      code: 'forbidden',
      diagnostics: 'access denied (patient-mismatch)',
    });
  });

  it('given a body over the limit, when posted, then the answer is 413 too-costly', async () => {
    const api = await startApi({}, { bodyLimit: 1024 });
    const r = await api.postForm(
      '/fhir/Observation/_search',
      `patient=P1&status=${'x'.repeat(2000)}`,
      'patient',
    );
    expect(r.statusCode).toBe(413);
    expect(outcomeOf(r.body).issue[0]!.code).toBe('too-costly');
    expect(api.audits).toHaveLength(1);
  });

  it('given a client over its rate, when it calls again, then the answer is 429 throttled, per client', async () => {
    const api = await startApi(
      { portal: { patient: () => Promise.resolve({ resourceType: 'Patient', id: 'P1' }) } },
      {
        rateLimitMax: 2,
      },
    );
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await api.get('/fhir/Patient/P1', 'patient')).statusCode);
    expect(statuses).toEqual([200, 200, 429]);
    const last = await api.get('/fhir/Patient/P1', 'patient');
    expect(outcomeOf(last.body).issue[0]!.code).toBe('throttled');
    expect((await api.get('/fhir/Patient/P1', 'staff')).statusCode).toBe(200);
    // Throttled requests are audited too.
    expect(api.audits).toHaveLength(5);
  });
});
