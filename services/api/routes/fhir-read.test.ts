import type { AuditEvent, Bundle, CapabilityStatement, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { fakeApiPerTest } from '../../../test/support/api.js';
import type { Owned, SearchFilters } from '../readers/portal.js';
import { SEARCH_TYPES, type SearchType } from '../search.js';

const startApi = fakeApiPerTest();

const issue = (body: string) => (JSON.parse(body) as OperationOutcome).issue[0]!;
/** The patient an AuditEvent names (entity what), if any. */
const auditedPatient = (a: AuditEvent) =>
  /"reference":"Patient\/([^"]+)"/.exec(JSON.stringify(a.entity ?? []))?.[1];

const condition: Resource = {
  resourceType: 'Condition',
  id: 'D1',
  subject: { reference: 'Patient/P1' },
  code: { text: 'Pneumonia' },
  encounter: { reference: 'Encounter/E1' },
};

/** A portal reader holding one Condition of P1 and one Coverage of P2. */
function readsOf(): { read: (t: SearchType, id: string) => Promise<Owned | null>; asked: string[] } {
  const asked: string[] = [];
  const held: Record<string, Owned> = {
    'Condition/D1': { patientId: 'P1', resource: condition },
    'Coverage/C2': {
      patientId: 'P2',
      resource: {
        resourceType: 'Coverage',
        id: 'C2',
        status: 'active',
        beneficiary: { reference: 'Patient/P2' },
        payor: [{ display: 'X' }],
      },
    },
  };
  return {
    asked,
    read: (t, id) => {
      asked.push(`${t}/${id}`);
      return Promise.resolve(held[`${t}/${id}`] ?? null);
    },
  };
}

describe('GET /fhir/[type]/[id]', () => {
  it('given the own patient token or a staff token, when a Condition is read, then it is served and audited naming its patient', async () => {
    const { read, asked } = readsOf();
    const api = await startApi({ portal: { read } });
    for (const who of ['patient', 'staff'] as const) {
      const r = await api.get('/fhir/Condition/D1', who);
      expect(r.statusCode, who).toBe(200);
      expect(r.headers['content-type']).toContain('application/fhir+json');
      expect(r.headers['cache-control']).toBe('no-store');
      expect(JSON.parse(r.body)).toEqual(condition);
    }
    expect(asked).toEqual(['Condition/D1', 'Condition/D1']);
    expect(api.audits.map((a) => [a.outcome, auditedPatient(a)])).toEqual([
      ['0', 'P1'],
      ['0', 'P1'],
    ]);
  });

  it("given a patient token, when another patient's resource is read, then 403 patient-mismatch, audited naming that patient", async () => {
    const { read } = readsOf();
    const api = await startApi({ portal: { read } });
    const r = await api.get('/fhir/Coverage/C2', 'patient');
    expect(r.statusCode).toBe(403);
    expect(issue(r.body).diagnostics).toBe('access denied (patient-mismatch)');
    expect(r.body).not.toContain('beneficiary');
    expect(api.audits.map((a) => [a.outcome, auditedPatient(a)])).toEqual([['4', 'P2']]);
  });

  it('given an id nothing visible has, when read, then 404 for everyone, audited; no token: 401 before any read', async () => {
    const { read, asked } = readsOf();
    const api = await startApi({ portal: { read } });
    for (const type of SEARCH_TYPES) {
      const r = await api.get(`/fhir/${type}/NOPE`, 'staff');
      expect(r.statusCode, type).toBe(404);
      expect(issue(r.body)).toMatchObject({ code: 'not-found', diagnostics: `no such ${type}` });
    }
    expect(api.audits).toHaveLength(SEARCH_TYPES.length);
    expect(api.audits.every((a) => a.outcome === '4' && auditedPatient(a) === undefined)).toBe(true);
    const n = asked.length;
    expect((await api.get('/fhir/Condition/D1')).statusCode).toBe(401);
    expect((await api.get('/fhir/Condition/D1', 'billing')).statusCode).toBe(403);
    expect(asked.length).toBe(n + 1); // billing: found, then refused; no token: never read
    expect((await api.get(`/fhir/Condition/${'x'.repeat(129)}`, 'staff')).statusCode).toBe(400);
  });
});

describe('search of allergies, conditions and coverage', () => {
  function searchApi(total = 0) {
    const asked: { type: SearchType; f: SearchFilters }[] = [];
    return {
      asked,
      start: () =>
        startApi({
          portal: {
            search: (type, f) => {
              asked.push({ type, f });
              return Promise.resolve({ total, resources: total > 0 ? [condition] : [] });
            },
          },
        }),
    };
  }

  it('given Condition parameters, when searched, then encounter, category, clinical-status and recorded-date reach the reader and the links', async () => {
    const s = searchApi(1);
    const api = await s.start();
    const r = await api.get(
      '/fhir/Condition?encounter=Encounter/E1&category=http://terminology.hl7.org/CodeSystem/condition-category|encounter-diagnosis&clinical-status=active&recorded-date=ge2026-03-01&_count=1',
      'patient',
    );
    expect(r.statusCode).toBe(200);
    expect(s.asked[0]).toEqual({
      type: 'Condition',
      f: {
        patientId: 'P1',
        date: { from: '2026-03-01T00:00:00.000Z', to: null },
        codes: [],
        statuses: ['active'],
        encounterId: 'E1',
        categories: [
          { system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis' },
        ],
      },
    });
    const self = new URL((JSON.parse(r.body) as Bundle).link![0]!.url);
    expect(self.searchParams.get('encounter')).toBe('Encounter/E1');
    expect(self.searchParams.get('clinical-status')).toBe('active');
    expect(self.searchParams.get('recorded-date')).toBe('ge2026-03-01');
  });

  it('given Coverage by beneficiary, when searched, then it is the patient parameter: confined and checked the same', async () => {
    const s = searchApi();
    const api = await s.start();
    expect((await api.get('/fhir/Coverage?beneficiary=Patient/P1', 'patient')).statusCode).toBe(200);
    expect(s.asked[0]?.f.patientId).toBe('P1');
    expect((await api.get('/fhir/Coverage?beneficiary=P2', 'patient')).statusCode).toBe(403);
    expect((await api.get('/fhir/Coverage?patient=P1&beneficiary=P2', 'staff')).statusCode).toBe(400);
    expect((await api.get('/fhir/Condition?subject=Patient/P2', 'patient')).statusCode).toBe(403);
    expect((await api.get('/fhir/Condition?subject=Patient/P1', 'patient')).statusCode).toBe(200);
    // AllergyIntolerance has no subject parameter in R4.
    expect((await api.get('/fhir/AllergyIntolerance?subject=P1', 'staff')).statusCode).toBe(400);
    expect((await api.get('/fhir/Coverage?beneficiary=P2', 'staff')).statusCode).toBe(200);
    // Parameters another type takes are refused, not ignored.
    expect((await api.get('/fhir/Coverage?patient=P1&code=x', 'staff')).statusCode).toBe(400);
    expect((await api.get('/fhir/Condition?patient=P1&date=2026', 'staff')).statusCode).toBe(400);
    expect((await api.get('/fhir/AllergyIntolerance?patient=P1&status=active', 'staff')).statusCode).toBe(
      400,
    );
  });

  it('given no match, when searched, then the searchset has total 0 and no entry element (FHIR JSON has no empty arrays)', async () => {
    const s = searchApi();
    const api = await s.start();
    const r = await api.get('/fhir/AllergyIntolerance?patient=P1&category=food', 'staff');
    expect(r.statusCode).toBe(200);
    const b = JSON.parse(r.body) as Bundle;
    expect(b).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 0 });
    expect('entry' in b).toBe(false);
    expect(r.body).not.toContain('[]');
  });
});

describe('CapabilityStatement', () => {
  it('given the served types, when asked, then each is listed with read, search-type and its own parameters', async () => {
    const api = await startApi();
    const cap = JSON.parse((await api.get('/fhir/metadata')).body) as CapabilityStatement;
    const byType = new Map<
      string,
      NonNullable<NonNullable<CapabilityStatement['rest']>[number]['resource']>[number]
    >(cap.rest![0]!.resource!.map((r) => [r.type, r]));
    for (const t of ['AllergyIntolerance', 'Condition', 'Coverage', 'Encounter', 'Observation']) {
      expect(
        byType.get(t)?.interaction?.map((i) => i.code),
        t,
      ).toEqual(['read', 'search-type']);
    }
    const names = (t: string) => byType.get(t)?.searchParam?.map((p) => p.name);
    expect(names('Condition')).toEqual([
      'patient',
      'subject',
      'code',
      'recorded-date',
      'clinical-status',
      'encounter',
      'category',
      '_count',
      '_offset',
    ]);
    expect(names('Coverage')).toEqual(['patient', 'beneficiary', 'status', '_count', '_offset']);
    expect(names('AllergyIntolerance')).toEqual([
      'patient',
      'code',
      'date',
      'clinical-status',
      'category',
      '_count',
      '_offset',
    ]);
  });
});
