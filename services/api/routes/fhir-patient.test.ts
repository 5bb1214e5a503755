import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import type { FhirType } from '../../../libs/auth/scopes.js';
import { fakeApiPerTest } from '../../../test/support/api.js';

const startApi = fakeApiPerTest();

const patient = (id: string): Resource => ({ resourceType: 'Patient', id, name: [{ family: 'Alpha' }] });
const issue = (body: string) => (JSON.parse(body) as OperationOutcome).issue[0]!;

describe('GET /fhir/Patient/:id', () => {
  it('given a patient token, when it reads its own record, then it gets it, uncached', async () => {
    const asked: string[] = [];
    const api = await startApi({
      portal: { patient: (id) => (asked.push(id), Promise.resolve(patient(id))) },
    });
    const r = await api.get('/fhir/Patient/P1', 'patient');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('application/fhir+json');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(r.body)).toMatchObject({ resourceType: 'Patient', id: 'P1' });
    expect(asked).toEqual(['P1']);
  });

  it('given a patient token, when it asks for another patient, then 403 forbidden and nothing is read', async () => {
    const api = await startApi();
    const r = await api.get('/fhir/Patient/P2', 'patient');
    expect(r.statusCode).toBe(403);
    expect(issue(r.body)).toMatchObject({
      code: 'forbidden',
      diagnostics: 'access denied (patient-mismatch)',
    });
  });

  it('given no token or one of another kind, when called, then 401 login or 403 forbidden', async () => {
    const api = await startApi();
    const none = await api.get('/fhir/Patient/P1');
    expect(none.statusCode).toBe(401);
    expect(issue(none.body).code).toBe('login');
    for (const kind of ['billing', 'analytics', 'admin'] as const) {
      expect((await api.get('/fhir/Patient/P1', kind)).statusCode, kind).toBe(403);
    }
  });

  it('given an unknown patient, when read, then 404 not-found', async () => {
    const api = await startApi({ portal: { patient: () => Promise.resolve(null) } });
    const r = await api.get('/fhir/Patient/P9', 'staff');
    expect(r.statusCode).toBe(404);
    expect(issue(r.body)).toMatchObject({ code: 'not-found', diagnostics: 'no such patient' });
  });
});

describe('GET /fhir/Patient/:id/$everything', () => {
  it('given a page of the record, when served, then it is a searchset with links on the same patient', async () => {
    const calls: { types: readonly FhirType[]; count: number; offset: number }[] = [];
    const api = await startApi({
      portal: {
        everything: (_id, types, count, offset) => {
          calls.push({ types, count, offset });
          return Promise.resolve({ total: 5, resources: [patient('P1'), patient('P1')] });
        },
      },
    });
    const r = await api.get('/fhir/Patient/P1/$everything?_count=2&_type=Patient,Observation', 'patient');
    expect(r.statusCode).toBe(200);
    const b = JSON.parse(r.body) as Bundle;
    expect(b).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 5 });
    expect(b.entry![0]!.fullUrl).toBe('https://api.test/fhir/Patient/P1');
    expect(b.link).toEqual([
      {
        relation: 'self',
        url: 'https://api.test/fhir/Patient/P1/$everything?_type=Patient%2CObservation&_count=2&_offset=0',
      },
      {
        relation: 'next',
        url: 'https://api.test/fhir/Patient/P1/$everything?_type=Patient%2CObservation&_count=2&_offset=2',
      },
    ]);
    // Only the types asked for, within those the scopes allow.
    expect(calls).toEqual([{ types: ['Patient', 'Observation'], count: 2, offset: 0 }]);
  });

  it('given an unsupported _type or a _count over the maximum, when asked, then 400 invalid', async () => {
    const api = await startApi();
    const t = await api.get('/fhir/Patient/P1/$everything?_type=Medication', 'patient');
    expect(t.statusCode).toBe(400);
    expect(issue(t.body)).toMatchObject({ code: 'invalid', diagnostics: '_type lists an unsupported type' });
    expect((await api.get('/fhir/Patient/P1/$everything?_count=201', 'patient')).statusCode).toBe(400);
    expect((await api.get('/fhir/Patient/P2/$everything', 'patient')).statusCode).toBe(403);
  });
});
