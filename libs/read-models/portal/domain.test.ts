import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  evolveAll,
  evolveLearningMerges,
  interleave,
  snapshot,
} from '../../../test/support/read-model-testing.js';
import {
  admissionCancelled,
  admitted,
  aggregateOf,
  at,
  discharged,
  demographicsUpdated,
  dischargeCancelled,
  hospitalDay,
  merged,
  obs,
  orderCancelled,
  ordered,
  registered,
  resulted,
  rng,
  transferCancelled,
  transferred,
} from '../../../test/support/hospital-day.js';
import { Draft } from '../../projections/store.js';
import { evolve, needs, presence, type PortalTables } from './domain.js';

const run = (...events: Parameters<typeof evolve>[1][]) => evolveAll<PortalTables>(evolve, events);
const hgb = (v: number, st: string) => obs('718-7', 'Hemoglobin', v, 'g/dL', 'L', st);

describe('portal: results', () => {
  it('given only a preliminary report, then nothing is visible to the patient', () => {
    const d = run(
      resulted('P1', 'R1', 'O1', null, 'cbc', 'preliminary', 'm1', at(9), [hgb(9, 'preliminary')]),
    );
    expect(d.all('reports').size).toBe(0);
    expect(d.all('observations').size).toBe(0);
  });

  it('given a final report, when a late preliminary arrives, then the final stays', () => {
    const d = run(
      resulted('P1', 'R1', 'O1', null, 'cbc', 'final', 'm2', at(10), [hgb(10, 'final')]),
      resulted('P1', 'R1', 'O1', null, 'cbc', 'preliminary', 'm1', at(9), [hgb(9, 'preliminary')]),
    );
    expect(d.get('reports', 'R1')?.resource.status).toBe('final');
    expect(d.get('observations', 'R1-1')?.resource.valueQuantity?.value).toBe(10);
  });

  it('given a correction, whatever order it arrives in, then it supersedes the final', () => {
    const fin = resulted('P1', 'R1', 'O1', null, 'cbc', 'final', 'm2', at(10), [hgb(10, 'final')]);
    const cor = resulted('P1', 'R1', 'O1', null, 'cbc', 'corrected', 'm3', at(11), [hgb(10.4, 'corrected')]);
    for (const d of [run(fin, cor), run(cor, fin)]) {
      expect(d.get('reports', 'R1')).toMatchObject({ visible: true, resource: { status: 'corrected' } });
      expect(d.get('observations', 'R1-1')?.resource.valueQuantity?.value).toBe(10.4);
    }
  });
});

describe('portal: encounters, orders, patients', () => {
  it('given an encounter before its patient, then a placeholder patient is filled by the registration', () => {
    const d1 = run(admitted('P5', 'E5', 'inpatient', '3N', 'a1', at(8)));
    expect(d1.get('patients', 'P5')).toMatchObject({ placeholder: true });
    const d2 = run(
      admitted('P5', 'E5', 'inpatient', '3N', 'a1', at(8)),
      registered('P5', 'Echo', 'Eve', 'r1', at(9)),
    );
    expect(d2.get('patients', 'P5')).toMatchObject({
      placeholder: false,
      resource: { name: [{ family: 'Echo' }] },
    });
  });

  it('given an encounter event, then its patient (resolved) is only needed to exist, not loaded', () => {
    const e = admitted('P5', 'E5', 'inpatient', '3N', 'a1', at(8));
    const resolve = (id: string) => (id === 'P5' ? 'P9' : id);
    expect(needs(e)).toEqual({ encounters: ['E5'] });
    expect(presence(e, resolve)).toEqual({ patients: ['P9'] });
    const r = registered('P5', 'Echo', 'Eve', 'r1', at(9));
    expect(needs(r)).toEqual({ patients: ['P5'] });
    expect(presence(r, resolve)).toEqual({});
  });

  it('given a patient only known to exist, when an encounter of theirs is applied, then no placeholder is written over it', () => {
    const d = new Draft<PortalTables>(undefined, { patients: new Set(['P5']) });
    evolve(d, admitted('P5', 'E5', 'inpatient', '3N', 'a1', at(8)), (id) => id);
    expect(d.changes('patients')).toEqual({ upserts: [], deletes: [] });
    expect(d.get('encounters', 'E5')).toMatchObject({ patient_id: 'P5' });
  });

  it('given an admission, transfer and discharge, then the Encounter is finished with its location history', () => {
    const d = run(
      admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
      transferred('P1', 'E1', '4WEST', 'ICU', 'a2', at(14)),
      discharged('P1', 'E1', 'a3', at(10, 0, 1)),
    );
    const enc = d.get('encounters', 'E1')!.resource;
    expect(enc.status).toBe('finished');
    expect(enc.location?.map((l) => l.status)).toEqual(['completed', 'completed']);
    expect(enc.period?.end).toBe(new Date(at(10, 0, 1)).toISOString());
  });

  it('given a cancelled transfer and a cancelled discharge, then the Encounter is back in progress at its earlier location', () => {
    const d = run(
      admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
      transferred('P1', 'E1', '4WEST', 'ICU', 'a2', at(14)),
      transferCancelled('P1', 'E1', '4WEST', 'a3', at(15)),
      discharged('P1', 'E1', 'a4', at(18)),
      dischargeCancelled('P1', 'E1', 'a5', at(19)),
    );
    const enc = d.get('encounters', 'E1')!.resource;
    expect(enc.status).toBe('in-progress');
    expect(enc.period?.end).toBeUndefined();
    expect(enc.location).toMatchObject([{ status: 'active', location: { display: '4WEST / 101 / A' } }]);
  });

  it('given a cancelled admission, then the encounter is withdrawn (entered in error, not visible)', () => {
    const d = run(
      admitted('P3', 'E3', 'inpatient', '5E', 'a1', at(8)),
      admissionCancelled('P3', 'E3', 'a2', at(9)),
    );
    expect(d.get('encounters', 'E3')).toMatchObject({
      visible: false,
      resource: { status: 'entered-in-error' },
    });
  });

  it('given a cancelled order, then it is revoked and later status changes cannot revive it', () => {
    const d = run(
      ordered('P1', 'O1', null, 'cbc', 'stat', 'o1', at(8)),
      orderCancelled('P1', 'O1', 'o2', at(9)),
    );
    expect(d.get('service_requests', 'O1')?.resource.status).toBe('revoked');
    const d2 = run(
      orderCancelled('P1', 'O1', 'o2', at(9)),
      ordered('P1', 'O1', null, 'cbc', 'stat', 'o1', at(8)),
    );
    expect(d2.get('service_requests', 'O1')?.resource.status).toBe('revoked');
  });

  it('given a merge, then the retired patient is inactive and linked to the survivor both ways', () => {
    const d = run(
      registered('P3', 'C', 'C', 'r3', at(7)),
      registered('P4', 'C', 'C', 'r4', at(7)),
      merged('P3', 'P4', 'm', at(8)),
    );
    expect(d.get('patients', 'P4')?.resource).toMatchObject({
      active: false,
      link: [{ type: 'replaced-by', other: { reference: 'Patient/P3' } }],
    });
    expect(d.get('patients', 'P3')?.resource).toMatchObject({
      active: true,
      link: [{ type: 'replaces', other: { reference: 'Patient/P4' } }],
    });
  });
});

describe('portal: disorder', () => {
  it('given chained merges (A into B, B into C), in either order, then the same patient rows result', () => {
    const regs = [
      registered('PA', 'A', 'A', 'ra', at(7)),
      registered('PB', 'B', 'B', 'rb', at(7)),
      registered('PC', 'C', 'C', 'rc', at(7)),
    ];
    const m1 = merged('PB', 'PA', 'm1', at(8));
    const m2 = merged('PC', 'PB', 'm2', at(9));
    const a = snapshot(evolveLearningMerges<PortalTables>(evolve, [...regs, m1, m2]), ['patients']);
    const b = snapshot(evolveLearningMerges<PortalTables>(evolve, [...regs, m2, m1]), ['patients']);
    expect(b).toBe(a);
  });

  it('any cross-topic interleaving of the hospital day (merges aside) ends in the same rows', () => {
    const events = hospitalDay().filter((e) => e.type !== 'PatientsMerged');
    const streams = ['patient', 'encounter', 'order', 'result'].map((a) =>
      events.filter((e) => aggregateOf(e) === a),
    );
    const tables = ['patients', 'encounters', 'service_requests', 'reports', 'observations'] as const;
    const expected = snapshot(evolveAll<PortalTables>(evolve, events), tables);
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const shuffled = interleave(streams, rng(seed));
        expect(snapshot(evolveAll<PortalTables>(evolve, shuffled), tables)).toBe(expected);
      }),
      { numRuns: 200 },
    );
  });
});

describe('portal: HL7 null semantics on Patient', () => {
  const ALL_LEFT_OUT = [
    'names',
    'birthDate',
    'administrativeGender',
    'deceased',
    'deceasedAt',
    'addresses',
    'telecom.home',
    'telecom.work',
    'maritalStatus',
    'language',
  ];
  const leftOutBut = (...sent: string[]) => ALL_LEFT_OUT.filter((f) => !sent.includes(f));
  const empty = {
    names: [],
    birthDate: null,
    administrativeGender: null,
    addresses: [],
    telecom: [],
    maritalStatus: null,
    language: null,
  };
  const reg = () => registered('P1', 'Kept', 'Kim', 'r1', at(7));
  const phone = (value: string, part: string) => ({ system: 'phone', value, use: 'home', part });

  it('given a registered patient, when an update leaves the phone out (not sent), then the phone stays', () => {
    const d = run(
      reg(),
      demographicsUpdated('P1', 'u1', at(8), {
        ...empty,
        birthDate: '1970-05-18',
        notSent: leftOutBut('birthDate'),
      }),
    );
    const p = d.get('patients', 'P1')!.resource;
    expect(p.telecom).toEqual([{ system: 'phone', value: '555-0100', use: 'home' }]);
    expect(p.name).toMatchObject([{ family: 'Kept' }]);
    expect(p.address).toMatchObject([{ line: ['1 Test Street'] }]);
    expect(p.gender).toBe('female');
    expect(p.birthDate).toBe('1970-05-18');
  });

  it('given a registered patient, when an update clears the address (""), then the address is gone and the rest stays', () => {
    const d = run(
      reg(),
      demographicsUpdated('P1', 'u1', at(8), {
        ...empty,
        cleared: ['addresses'],
        notSent: leftOutBut('addresses'),
      }),
    );
    const p = d.get('patients', 'P1')!.resource;
    expect(p.address).toBeUndefined();
    expect(p.telecom).toEqual([{ system: 'phone', value: '555-0100', use: 'home' }]);
    expect(p.name).toMatchObject([{ family: 'Kept' }]);
    expect(JSON.stringify(p)).not.toContain('""');
  });

  it('given a registered patient, when an update sends two phone repetitions, then the list is replaced by those two', () => {
    const d = run(
      reg(),
      demographicsUpdated('P1', 'u1', at(8), {
        ...empty,
        telecom: [phone('555-0201', 'home'), phone('555-0202', 'home')],
        notSent: leftOutBut('telecom.home', 'telecom.work'),
      }),
    );
    expect(d.get('patients', 'P1')!.resource.telecom).toEqual([
      { system: 'phone', value: '555-0201', use: 'home' },
      { system: 'phone', value: '555-0202', use: 'home' },
    ]);
  });

  it('given two partial updates, then each applies to the result of the one before', () => {
    const d = run(
      reg(),
      demographicsUpdated('P1', 'u1', at(8), {
        ...empty,
        cleared: ['addresses'],
        notSent: leftOutBut('addresses'),
      }),
      demographicsUpdated('P1', 'u2', at(9), {
        ...empty,
        maritalStatus: {
          system: 'http://terminology.hl7.org/CodeSystem/v2-0002',
          code: 'M',
          display: null,
          version: null,
          alternates: [],
          text: null,
        },
        notSent: leftOutBut('maritalStatus'),
      }),
    );
    const row = d.get('patients', 'P1')!;
    expect(row.resource.address).toBeUndefined();
    // v3 MaritalStatus first (the FHIR value set), the v2-0002 code kept second.
    expect(row.resource.maritalStatus).toMatchObject({
      coding: [
        { system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' },
        { system: 'http://terminology.hl7.org/CodeSystem/v2-0002', code: 'M' },
      ],
    });
    expect(row.resource.telecom).toHaveLength(1);
    expect(row.demographics).toMatchObject({ notSent: [], cleared: [] });
  });

  it('given an old event (no notSent, no cleared), then it is a full snapshot: absent values are removed', () => {
    const d = run(
      reg(),
      demographicsUpdated('P1', 'u1', at(8), {
        ...empty,
        names: [{ family: 'Kept', given: [], prefix: null, suffix: null, use: null }],
      }),
    );
    const p = d.get('patients', 'P1')!.resource;
    expect(p.telecom).toBeUndefined();
    expect(p.address).toBeUndefined();
    expect(p.gender).toBeUndefined();
  });

  it('given an update before the registration (nothing stored), then fields not sent are simply absent', () => {
    const d = run(demographicsUpdated('P1', 'u1', at(8), { ...empty, notSent: leftOutBut() }));
    const row = d.get('patients', 'P1');
    expect(row).toMatchObject({ placeholder: false });
    // FHIR JSON has no empty arrays: lists with nothing in them are absent.
    expect(row?.resource.telecom).toBeUndefined();
    expect(row?.resource.name).toBeUndefined();
  });
});
