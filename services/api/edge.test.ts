import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { fakeApiPerTest, type FakeTokenKind } from '../../test/support/api.js';

const startApi = fakeApiPerTest();

const outcome = (body: string) => JSON.parse(body) as OperationOutcome;
const patient = (id: string): Resource => ({ resourceType: 'Patient', id });

/** Readers that count every call: none of them may be reached by a refused request. */
function countingReaders() {
  const reads: string[] = [];
  const note = (what: string) => () => (reads.push(what), Promise.reject(new Error(`read: ${what}`)));
  return {
    reads,
    readers: {
      portal: { patient: note('patient'), search: note('search'), everything: note('everything') },
      billing: { accounts: note('accounts'), charges: note('charges'), worklist: note('worklist') },
      analytics: { rows: note('analytics rows') },
      admin: { auditEvents: note('audit events') },
    },
  };
}

/** Each refused request is one denied AuditEvent that names no patient and carries none of the input. */
function expectDeniedWithoutInput(audits: readonly unknown[], n: number): void {
  expect(audits).toHaveLength(n);
  for (const a of audits) {
    const text = JSON.stringify(a);
    expect(text).toContain('invalid-input');
    expect(text).not.toContain('\\u0000');
    expect(text).not.toMatch(/Patient\/(x|P1|a)/);
  }
}

describe('regression: a NUL in a FHIR id silenced the audit trail', () => {
  it.each<[string, FakeTokenKind | undefined]>([
    ['with a token', 'staff'],
    ['without a token', undefined],
  ])(
    'given a NUL in a Patient id, when read %s, then 400 invalid, nothing read, audited as denied without the input',
    async (_, as) => {
      const { reads, readers } = countingReaders();
      const api = await startApi(readers);
      const r = await api.get('/fhir/Patient/x%00', as);
      expect(r.statusCode).toBe(400);
      expect(r.headers['content-type']).toContain('application/fhir+json');
      const o = outcome(r.body);
      expect(o.resourceType).toBe('OperationOutcome');
      expect(o.issue[0]).toMatchObject({ severity: 'error', code: 'invalid' });
      expect(o.issue[0]!.diagnostics).toContain("'id'");
      expect(r.body).not.toContain('\\u0000');
      expect(r.body).not.toContain('x\0');
      expectDeniedWithoutInput(api.audits, 1);
      expect(reads).toEqual([]);
    },
  );

  it('given any control character in an id or a search value, when asked, then 400 before any read', async () => {
    const { reads, readers } = countingReaders();
    const api = await startApi(readers);
    for (const url of [
      '/fhir/Observation?patient=a%01b',
      '/fhir/Observation?patient=P1&code=x%1f',
      '/fhir/Observation?patient=P1&date=ge2024%7f',
      '/fhir/Patient/P1%0a/$everything',
      '/fhir/Binary/b%0d',
      '/fhir/Observation?pa%00tient=P1',
    ]) {
      const r = await api.get(url, 'staff');
      expect(r.statusCode, url).toBe(400);
      expect(outcome(r.body).issue[0]!.code, url).toBe('invalid');
    }
    const form = await api.postForm('/fhir/Observation/_search', 'patient=P1%00', 'staff');
    expect(form.statusCode).toBe(400);
    expect(outcome(form.body).issue[0]!.diagnostics).toBe("control character in form parameter 'patient'");
    expectDeniedWithoutInput(api.audits, 7);
    expect(reads).toEqual([]);
  });

  it('given a NUL in a billing, analytics or admin request, when asked, then 400 HUB_INPUT_INVALID JSON', async () => {
    const { reads, readers } = countingReaders();
    const api = await startApi(readers);
    for (const [url, as] of [
      ['/billing/accounts/E1%00/charges', 'billing'],
      ['/billing/accounts?status=open%00', 'billing'],
      ['/analytics/views/v_daily_admissions%00', 'analytics'],
      ['/analytics/views/v_daily_admissions?from=2024-01-01%00', undefined],
      ['/admin/audit/events?patient=P1%00', 'admin'],
    ] as const) {
      const r = await api.get(url, as);
      expect(r.statusCode, url).toBe(400);
      expect(r.headers['content-type'], url).toContain('application/json');
      const body = JSON.parse(r.body) as { code: string; message: string };
      expect(body.code, url).toBe('HUB_INPUT_INVALID');
      expect(body.message, url).toMatch(/^control character in (path|query) parameter '\w+'$/);
    }
    expectDeniedWithoutInput(api.audits, 5);
    expect(reads).toEqual([]);
  });

  it('given a normal request, when read, then 200 and audited with its patient', async () => {
    const api = await startApi({ portal: { patient: (id) => Promise.resolve(patient(id)) } });
    const r = await api.get('/fhir/Patient/P1', 'staff');
    expect(r.statusCode).toBe(200);
    expect(api.audits).toHaveLength(1);
    expect(JSON.stringify(api.audits[0])).toContain('Patient/P1');
  });
});
