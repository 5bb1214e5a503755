import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { fakeApiPerTest } from '../../../test/support/api.js';
import type { SearchFilters } from '../readers/portal.js';

const startApi = fakeApiPerTest();

const obs = (id: string): Resource => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { text: 'Hemoglobin' },
  subject: { reference: 'Patient/P1' },
});
const issue = (body: string) => (JSON.parse(body) as OperationOutcome).issue[0]!;

/** A portal reader that serves 3 observations, 2 a page, and remembers the filters it was given. */
async function searchApi() {
  const asked: SearchFilters[] = [];
  const api = await startApi({
    portal: {
      search: (_type, f, count, offset) => {
        asked.push(f);
        return Promise.resolve({
          total: 3,
          resources: [obs('O1'), obs('O2'), obs('O3')].slice(offset, offset + count),
        });
      },
    },
  });
  return { api, asked };
}

describe('FHIR search', () => {
  it('given a patient token without patient=, when it searches, then it is confined to its patient, links too', async () => {
    const { api, asked } = await searchApi();
    const r = await api.get(
      '/fhir/Observation?_count=2&code=http://loinc.org|718-7&date=ge2026-03-02',
      'patient',
    );
    expect(r.statusCode).toBe(200);
    const b = JSON.parse(r.body) as Bundle;
    expect(b.total).toBe(3);
    expect(b.entry).toHaveLength(2);
    const next = new URL(b.link!.find((l) => l.relation === 'next')!.url);
    expect(next.searchParams.get('patient')).toBe('P1');
    expect(next.searchParams.get('_offset')).toBe('2');
    expect(next.searchParams.get('code')).toBe('http://loinc.org|718-7');
    expect(asked[0]).toEqual({
      patientId: 'P1',
      date: { from: '2026-03-02T00:00:00.000Z', to: null },
      codes: [{ system: 'http://loinc.org', code: '718-7' }],
      statuses: [],
    });
    const last = JSON.parse((await api.get(next.pathname + next.search, 'patient')).body) as Bundle;
    expect(last.link!.find((l) => l.relation === 'next')).toBeUndefined();
  });

  it('given another patient named, in any form, when searched with a patient token, then 403', async () => {
    const api = await startApi();
    for (const q of ['patient=P2', 'patient=Patient/P2']) {
      const r = await api.get(`/fhir/Encounter?${q}`, 'patient');
      expect(r.statusCode, q).toBe(403);
      expect(issue(r.body).code).toBe('forbidden');
    }
    expect((await api.postForm('/fhir/Encounter/_search', 'patient=P2', 'patient')).statusCode).toBe(403);
  });

  it('given bad parameters, when searched, then 400 invalid, naming the parameter but never its value', async () => {
    const api = await startApi();
    const unknown = await api.get('/fhir/Observation?patient=P1&foo=Zzsecret', 'patient');
    expect(unknown.statusCode).toBe(400);
    expect(issue(unknown.body).diagnostics).toContain('foo');
    expect(unknown.body).not.toContain('Zzsecret');
    for (const q of ['_count=1000', 'date=yesterday', 'date=ne2026-01-01', 'patient=P1%27%20or%201=1']) {
      const r = await api.get(`/fhir/Observation?${q}`, 'staff');
      expect(r.statusCode, q).toBe(400);
      expect(issue(r.body).code, q).toBe('invalid');
    }
    // Encounter takes no code.
    expect((await api.get('/fhir/Encounter?patient=P1&code=x', 'staff')).statusCode).toBe(400);
    // Staff must name the patient.
    const unnamed = await api.get('/fhir/Observation', 'staff');
    expect(unnamed.statusCode).toBe(400);
    expect(issue(unnamed.body).diagnostics).toBe('a patient parameter is required');
  });

  it('given a form body, when posted to _search, then it searches like GET; prototype keys are refused', async () => {
    const { api } = await searchApi();
    const own = await api.postForm('/fhir/Observation/_search', 'patient=P1&_count=2', 'patient');
    expect(own.statusCode).toBe(200);
    expect((JSON.parse(own.body) as Bundle).total).toBe(3);
    for (const form of [
      'patient=P1&__proto__=a&__proto__=b',
      'patient=P1&constructor=x',
      'patient=P1&name=x',
    ]) {
      const r = await api.postForm('/fhir/Observation/_search', form, 'patient');
      expect(r.statusCode, form).toBe(400);
      expect(issue(r.body).code, form).toBe('invalid');
    }
  });
});
