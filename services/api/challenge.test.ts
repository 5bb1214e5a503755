import { describe, expect, it } from 'vitest';
import { JWKS_DOWN_TOKEN, fakeApiPerTest } from '../../test/support/api.js';
import { challengeOf, requiredScopes } from './challenge.js';

/** RFC 6750 §3: every 401 and 403 of a protected route says how to authenticate, and why not. */
const startApi = fakeApiPerTest();

describe('WWW-Authenticate on refusals', () => {
  it('given no token, when a protected route is asked, then 401 with a bare Bearer challenge (no error attribute)', async () => {
    const api = await startApi();
    for (const url of ['/fhir/Patient/P1', '/billing/accounts', '/admin/audit/events']) {
      const r = await api.get(url);
      expect(r.statusCode, url).toBe(401);
      expect(r.headers['www-authenticate'], url).toBe('Bearer realm="hub"');
    }
    // Another scheme is no bearer token either (§3.1: the client may not know it needs one).
    const basic = await api.get('/fhir/Patient/P1', undefined, { authorization: 'Basic abc' });
    expect(basic.headers['www-authenticate']).toBe('Bearer realm="hub"');
  });

  it('given a refused or malformed bearer token, when asked, then 401 invalid_token with a fixed description', async () => {
    const api = await startApi();
    const bad = await api.get('/fhir/Patient/P1', undefined, { authorization: 'Bearer not-a-known-token' });
    expect(bad.statusCode).toBe(401);
    expect(bad.headers['www-authenticate']).toBe(
      'Bearer realm="hub", error="invalid_token", error_description="the token is expired, not yet valid, or not issued for this API"',
    );
    const malformed = await api.get('/fhir/Patient/P1', undefined, { authorization: 'Bearer a"b' });
    expect(malformed.statusCode).toBe(401);
    expect(malformed.headers['www-authenticate']).toBe(
      'Bearer realm="hub", error="invalid_token", error_description="malformed bearer token"',
    );
  });

  it('given a token without the scope, when asked, then 403 insufficient_scope naming the scopes that would do', async () => {
    const api = await startApi();
    const cases: [string, 'patient' | 'billing' | 'staff', string][] = [
      ['/billing/accounts', 'patient', 'system/billing.read'],
      ['/admin/audit/verify', 'staff', 'system/hub.admin'],
      ['/analytics/views', 'billing', 'system/analytics.read'],
      ['/fhir/Patient/P2', 'patient', 'patient/Patient.r user/Patient.r'],
      ['/fhir/Observation?patient=P1', 'billing', 'patient/Observation.s user/Observation.s'],
      ['/fhir/Patient/P1/$everything', 'billing', 'patient/*.rs user/*.rs'],
    ];
    for (const [url, as, scope] of cases) {
      const r = await api.get(url, as);
      expect(r.statusCode, url).toBe(403);
      expect(r.headers['www-authenticate'], url).toBe(
        `Bearer realm="hub", error="insufficient_scope", scope="${scope}"`,
      );
    }
  });

  it('given answers that are not 401/403, when sent, then no challenge', async () => {
    const api = await startApi({
      portal: { patient: () => Promise.resolve({ resourceType: 'Patient', id: 'P1' }) },
    });
    expect((await api.get('/fhir/Patient/P1', 'patient')).headers['www-authenticate']).toBeUndefined();
    expect((await api.get('/fhir/Observation', 'staff')).headers['www-authenticate']).toBeUndefined(); // 400
    const down = await api.get('/fhir/Patient/P1', undefined, { authorization: `Bearer ${JWKS_DOWN_TOKEN}` });
    expect(down.statusCode).toBe(503);
    expect(down.headers['www-authenticate']).toBeUndefined();
  });

  it('given the audit failing on a 401, when answered 503 instead, then the challenge is dropped too', async () => {
    const api = await startApi();
    api.failAudit(true);
    const r = await api.get('/fhir/Patient/P1');
    expect(r.statusCode).toBe(503);
    expect(r.headers['www-authenticate']).toBeUndefined();
  });
});

describe('challengeOf', () => {
  it('given statuses, then only 401 and 403 challenge', () => {
    expect(challengeOf({ status: 400, bearerSent: true, access: null })).toBeNull();
    expect(challengeOf({ status: 403, bearerSent: true, access: null })).toBe(
      'Bearer realm="hub", error="insufficient_scope"',
    );
    expect(
      requiredScopes({ kind: 'fhir', interaction: 'read', resourceType: 'Encounter', patientId: null }),
    ).toEqual(['patient/Encounter.r', 'user/Encounter.r']);
  });
});
