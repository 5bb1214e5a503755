import { describe, expect, it } from 'vitest';
import { fakeApiPerTest } from '../../test/support/api.js';
import { createPatientContexts, isStorablePatientId, type PatientContextState } from './patient-context.js';

const startApi = fakeApiPerTest();

describe('a token whose patient context names no patient of the hub', () => {
  it.each<[PatientContextState, string]>([
    ['unknown', 'patient-context-unknown'],
    ['merged', 'patient-context-merged'],
  ])(
    'given the patient is %s, when the token reads anything, then 401 invalid_token, nothing read, audited as denied',
    async (state, reason) => {
      const reads: string[] = [];
      const api = await startApi({
        portal: {
          patientContext: () => Promise.resolve(state),
          search: () => (reads.push('search'), Promise.resolve({ total: 0, resources: [] })),
        },
      });
      for (const url of ['/fhir/Observation', '/fhir/Patient/P1', '/fhir/Patient/P1/$everything']) {
        const r = await api.get(url, 'patient');
        expect(r.statusCode, url).toBe(401);
        expect(r.headers['www-authenticate'], url).toMatch(/^Bearer realm="hub", error="invalid_token"/);
        expect(JSON.parse(r.body), url).toMatchObject({ issue: [{ code: 'login' }] });
      }
      expect(reads).toEqual([]);
      expect(api.audits.map((a) => [a.outcome, a.outcomeDesc])).toEqual([
        ['4', reason],
        ['4', reason],
        ['4', reason],
      ]);
      // Who tried is recorded (the token was genuine); the patient asked for, from the path, too.
      expect(api.audits[1]!.agent[0]!.who?.identifier?.value).toBe('patient-p1');
      expect(api.audits[1]!.entity?.[0]?.what?.reference).toBe('Patient/P1');
    },
  );

  it('given a known patient, when its token reads many times, then the read model is asked once', async () => {
    let lookups = 0;
    const api = await startApi({
      portal: {
        patientContext: () => (lookups++, Promise.resolve('active' as const)),
        search: () => Promise.resolve({ total: 0, resources: [] }),
      },
    });
    for (let i = 0; i < 5; i++) expect((await api.get('/fhir/Observation', 'patient')).statusCode).toBe(200);
    expect(lookups).toBe(1);
    // Staff tokens carry no patient context: nothing to check.
    expect((await api.get('/fhir/Observation?patient=P2', 'staff')).statusCode).toBe(200);
    expect(lookups).toBe(1);
  });

  it('given the read model failing, when asked, then a server error without its text, not an answer either way', async () => {
    const api = await startApi({ portal: { patientContext: () => Promise.reject(new Error('db down')) } });
    const r = await api.get('/fhir/Observation', 'patient');
    expect(r.statusCode).toBe(500);
    expect(r.body).not.toContain('db down');
  });
});

describe('createPatientContexts', () => {
  it('given answers, then found ones are kept for ttl, unknown ones briefly, at most max, lookups shared', async () => {
    let t = 0;
    const asked: string[] = [];
    const states: Record<string, PatientContextState> = { A: 'active', B: 'unknown', C: 'active' };
    const c = createPatientContexts({
      lookup: (id) => (asked.push(id), Promise.resolve(states[id] ?? 'unknown')),
      ttlMs: 1000,
      negativeTtlMs: 100,
      max: 2,
      clock: () => t,
    });
    expect(await Promise.all([c.state('A'), c.state('A')])).toEqual(['active', 'active']);
    expect(await c.state('B')).toBe('unknown');
    expect(asked).toEqual(['A', 'B']);
    t = 150; // B forgotten, A still known
    states['B'] = 'active';
    expect(await c.state('B')).toBe('active');
    expect(await c.state('A')).toBe('active');
    expect(asked).toEqual(['A', 'B', 'B']);
    await c.state('C'); // max 2: the oldest answer (A) goes
    await c.state('A');
    expect(asked).toEqual(['A', 'B', 'B', 'C', 'A']);
    t = 2000; // everything expired
    await c.state('C');
    expect(asked.at(-1)).toBe('C');
  });

  it('given a failed lookup, then it is not remembered', async () => {
    let fail = true;
    const c = createPatientContexts({
      lookup: () => (fail ? Promise.reject(new Error('down')) : Promise.resolve('active')),
    });
    await expect(c.state('A')).rejects.toThrow('down');
    fail = false;
    expect(await c.state('A')).toBe('active');
  });

  it('given claims, then only storable ids are looked up', () => {
    expect(isStorablePatientId('P1')).toBe(true);
    for (const bad of ['', 'P\u0000', 'P\n1', 'x'.repeat(129), 'P\ud800']) {
      expect(isStorablePatientId(bad), JSON.stringify(bad)).toBe(false);
    }
  });
});
