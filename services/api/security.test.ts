import type { OperationOutcome } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { JWKS_DOWN_TOKEN, fakeApiPerTest } from '../../test/support/api.js';

/**
 * The audit trail of the security hooks, with a sink that keeps what it is
 * given: every answer of a protected route is recorded before it leaves,
 * whatever the caller sent and however the request ended, and no answer
 * leaves when its record cannot be written.
 */
const startApi = fakeApiPerTest();

const patientP1 = { resourceType: 'Patient' as const, id: 'P1', name: [{ family: 'Zzalpha' }] };

describe('audit of every protected answer', () => {
  it('given requests that succeed, are refused or fail anywhere, when answered, then each leaves one AuditEvent', async () => {
    const api = await startApi(
      { portal: { patient: () => Promise.resolve(patientP1) } },
      { bodyLimit: 1024 },
    );
    const answers = [
      await api.get('/fhir/Patient/P1', 'patient'), // 200
      await api.get('/fhir/Patient/P1'), // 401 no token
      await api.get('/fhir/Patient/P1', undefined, { authorization: 'Bearer not-a-known-token' }), // 401
      await api.get('/fhir/Patient/P1', undefined, { authorization: 'Basic abc' }), // 401 malformed
      await api.get('/fhir/Patient/P2', 'patient'), // 403
      await api.get('/fhir/Observation?patient=P1&foo=1', 'patient'), // 400 unknown parameter
      await api.get('/fhir/Binary/not-a-hash', 'staff'), // 400 params schema
      await api.postForm('/fhir/Observation/_search', `status=${'x'.repeat(2000)}`, 'patient'), // 413
      await api.get('/fhir/Patient/P1', undefined, { authorization: `Bearer ${JWKS_DOWN_TOKEN}` }), // 503
      await api.get('/billing/accounts', 'patient'), // 403
    ];
    expect(answers.map((a) => a.statusCode)).toEqual([200, 401, 401, 401, 403, 400, 400, 413, 503, 403]);
    expect(api.audits).toHaveLength(answers.length);
    expect(api.audits.map((a) => a.outcome)).toEqual(['0', '4', '4', '4', '4', '4', '4', '4', '8', '4']);
    // Who and which patient, even when refused.
    expect(api.audits[4]!.agent[0]!.who?.identifier?.value).toBe('patient-p1');
    expect(api.audits[4]!.entity?.[0]?.what?.reference).toBe('Patient/P2');
    expect(api.audits[4]!.outcomeDesc).toBe('patient-mismatch');
    expect(api.audits[1]!.outcomeDesc).toBe('unauthenticated');
    // PHI answers are never cached, refusals included.
    for (const a of answers) expect(a.headers['cache-control']).toBe('no-store');
  });

  it('given public routes, when called, then nothing is audited', async () => {
    const api = await startApi();
    for (const url of ['/fhir/metadata', '/health', '/docs/json', '/metrics']) {
      expect((await api.get(url)).statusCode, url).toBe(200);
    }
    expect(api.audits).toEqual([]);
  });

  it('given the audit sink failing, when a patient reads its record, then 503 and none of the record leaves', async () => {
    const api = await startApi({ portal: { patient: () => Promise.resolve(patientP1) } });
    api.failAudit(true);
    const fhir = await api.get('/fhir/Patient/P1', 'patient');
    expect(fhir.statusCode).toBe(503);
    expect(fhir.body).not.toContain('Zzalpha');
    expect(fhir.headers['content-type']).toContain('application/fhir+json');
    expect((JSON.parse(fhir.body) as OperationOutcome).issue[0]).toMatchObject({
      severity: 'fatal',
      code: 'transient',
    });
    const json = await api.get('/billing/accounts', 'patient');
    expect(json.statusCode).toBe(503);
    expect(JSON.parse(json.body)).toMatchObject({ code: 'HUB_KAFKA_UNAVAILABLE', retriable: true });
    const metrics = await api.get('/metrics');
    expect(metrics.body).toMatch(/hub_api_audit_failures_total 2/);
    api.failAudit(false);
    expect((await api.get('/fhir/Patient/P1', 'patient')).statusCode).toBe(200);
    expect((await api.get('/metrics')).body).toMatch(/hub_api_audit_events_total\{outcome="0"\} 1/);
  });
});
