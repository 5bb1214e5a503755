import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evolveAll, interleave, snapshot } from '../../../test/support/read-model-testing.js';
import {
  admissionCancelled,
  admitted,
  aggregateOf,
  at,
  discharged,
  demographicsUpdated,
  dischargeCancelled,
  hospitalDay,
  obs,
  ordered,
  registered,
  resulted,
  rng,
  transferCancelled,
  transferred,
} from '../../../test/support/hospital-day.js';
import { codeOf, type ObservationValue } from '../../events/index.js';
import { diagnosed } from '../../../test/support/coverage-diagnosis.js';
import { CRITICAL_FLAGS } from '../../projections/clinical.js';
import { evolve, interpretationCodes, observationRow, type AnalyticsTables } from './domain.js';

const run = (...events: Parameters<typeof evolve>[1][]) => evolveAll<AnalyticsTables>(evolve, events);

describe('analytics: facts', () => {
  it('given an admission and a transfer, then the encounter keeps its movements in time order', () => {
    const d = run(
      admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
      transferred('P1', 'E1', '4WEST', 'ICU', 'a2', at(14)),
    );
    expect(d.get('encounters', 'E1')?.movements).toEqual([
      { unit: '4WEST', at: at(8) },
      { unit: 'ICU', at: at(14) },
    ]);
  });

  it('given a transfer before the admission, then the same movements result', () => {
    const d = run(
      transferred('P1', 'E1', '4WEST', 'ICU', 'a2', at(14)),
      admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
    );
    expect(d.get('encounters', 'E1')?.movements.map((m) => m.unit)).toEqual(['4WEST', 'ICU']);
  });

  it('given a cancelled transfer and a cancelled discharge, then the unit reverts and the visit is open again', () => {
    const d = run(
      admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
      transferred('P1', 'E1', '4WEST', 'ICU', 'a2', at(14)),
      transferCancelled('P1', 'E1', '4WEST', 'a3', at(15)),
      discharged('P1', 'E1', 'a4', at(18)),
      dischargeCancelled('P1', 'E1', 'a5', at(19)),
    );
    expect(d.get('encounters', 'E1')).toMatchObject({ movements: [{ unit: '4WEST' }], discharged_at: null });
  });

  it('given a cancelled admission, then it is flagged and kept out of counts by the views', () => {
    const d = run(
      admitted('P3', 'E3', 'inpatient', '5E', 'a1', at(8)),
      admissionCancelled('P3', 'E3', 'a2', at(9)),
    );
    expect(d.get('encounters', 'E3')?.cancelled).toBe(true);
  });

  it('given preliminary, final and corrected versions, then first_final_at is the first release and the correction wins', () => {
    const d = run(
      resulted('P1', 'R1', 'O1', null, 'cbc', 'preliminary', 'r1', at(9), [
        obs('718-7', 'Hgb', 9, 'g/dL', 'L', 'preliminary'),
      ]),
      resulted('P1', 'R1', 'O1', null, 'cbc', 'final', 'r2', at(10), [
        obs('718-7', 'Hgb', 9, 'g/dL', 'L', 'final'),
      ]),
      resulted('P1', 'R1', 'O1', null, 'cbc', 'corrected', 'r3', at(11), [
        obs('718-7', 'Hgb', 12, 'g/dL', 'N', 'corrected'),
      ]),
    );
    expect(d.get('results', 'R1')).toMatchObject({
      first_final_at: at(10),
      status: 'corrected',
      corrected: true,
      observations: [{ code: '718-7', abnormal: false }],
    });
  });

  it('given an event with an earlier clinical time than one already seen on its stream, then it counts as out of order', () => {
    const d = run(discharged('P1', 'E1', 'a2', at(12)), admitted('P1', 'E1', 'inpatient', '4W', 'a1', at(8)));
    expect([...d.all('event_log').values()].map((r) => [r.event_type, r.out_of_order])).toEqual([
      ['EncounterEnded', false],
      ['EncounterStarted', true],
    ]);
  });

  it('given an order, then its category, code and priority are kept for turnaround', () => {
    expect(run(ordered('P1', 'O1', null, 'xrchest', 'stat', 'o', at(8))).get('orders', 'O1')).toMatchObject({
      category: 'imaging',
      code: '36643-5',
      priority: 'stat',
      ordered_at: at(8),
    });
  });

  it('any cross-topic interleaving of the hospital day (merges aside) ends in the same rows', () => {
    const events = hospitalDay().filter((e) => e.type !== 'PatientsMerged');
    const streams = ['patient', 'encounter', 'order', 'result'].map((a) =>
      events.filter((e) => aggregateOf(e) === a),
    );
    const tables = ['encounters', 'orders', 'results', 'event_log', 'stream_clocks'] as const;
    const expected = snapshot(evolveAll<AnalyticsTables>(evolve, events), tables);
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        expect(snapshot(evolveAll<AnalyticsTables>(evolve, interleave(streams, rng(seed))), tables)).toBe(
          expected,
        );
      }),
      { numRuns: 200 },
    );
  });
});

describe('analytics: HL7 null semantics', () => {
  it('given visits and orders, when a patient update leaves fields out or clears them, then no fact changes (this read model keeps no demographics)', () => {
    const facts = [
      registered('P1', 'Kept', 'Kim', 'r1', at(7)),
      admitted('P1', 'E1', 'inpatient', '4WEST', 'a1', at(8)),
      ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'o1', at(9)),
    ];
    const update = demographicsUpdated('P1', 'u1', at(10), {
      addresses: [],
      telecom: [],
      cleared: ['addresses'],
      notSent: ['telecom.home', 'telecom.work'],
    });
    const tables = ['encounters', 'orders', 'results'] as const;
    expect(snapshot(evolveAll<AnalyticsTables>(evolve, [...facts, update]), tables)).toBe(
      snapshot(evolveAll<AnalyticsTables>(evolve, facts), tables),
    );
  });
});

const V2_0078 = 'http://terminology.hl7.org/CodeSystem/v2-0078';
const V3_INTERP = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';

/** An observation as the #18 mappers send it: LOINC with the lab's local code, UCUM unit, every flag. */
function coded(
  loinc: string | null,
  local: string,
  flags: string[],
  status: string,
  over: Partial<ObservationValue> = {},
): ObservationValue {
  const localCode = codeOf('urn:hl7:codesystem:99LAB', local, `local ${local}`);
  return {
    ...obs(loinc ?? local, 'Potassium', 6.9, 'mmol/L', null, status),
    code: loinc ? { ...codeOf('http://loinc.org', loinc, 'Potassium'), alternates: [localCode] } : localCode,
    unitCode: codeOf('http://unitsofmeasure.org', 'mmol/L', null),
    interpretations: flags.map((f) => codeOf(V2_0078, f, null)),
    interpretation: flags[0] ? codeOf(V2_0078, flags[0], null) : null,
    ...over,
  };
}

describe('analytics: observation-level facts', () => {
  it('given a final result with LOINC and a local code, a UCUM unit and flags H then HH, then one row that is abnormal and critical (HH)', () => {
    const d = run(
      resulted('P1', 'R1', 'O1', null, 'bmp', 'final', 'r1', at(10), [
        coded('2823-3', 'K', ['H', 'HH'], 'final'),
      ]),
    );
    expect(d.get('observations', 'R1|0')).toMatchObject({
      result_id: 'R1',
      patient_id: 'P1',
      source_system: 'LAB-LIS',
      released: true,
      code: '2823-3',
      code_system: 'http://loinc.org',
      loinc_code: '2823-3',
      unit_system: 'ucum',
      unit_code: 'mmol/L',
      interpretations: ['H', 'HH'],
      abnormal: true,
      critical: true,
      critical_flag: 'HH',
    });
  });

  it('given an event written before #18 (system LN, one flag LL, unit text only), then LOINC is recognised, the flag is critical and the unit counts as text', () => {
    const old: ObservationValue = { ...obs('2823-3', 'Potassium', 2.1, 'mmol/L', 'LL', 'final') };
    old.code = codeOf('LN', '2823-3', 'Potassium');
    const d = run(resulted('P1', 'R1', 'O1', null, 'bmp', 'final', 'r1', at(10), [old]));
    expect(d.get('observations', 'R1|0')).toMatchObject({
      code_system: 'http://loinc.org',
      loinc_code: '2823-3',
      interpretations: ['LL'],
      abnormal: true,
      critical: true,
      critical_flag: 'LL',
      unit_system: 'text',
    });
  });

  it('given a local code with LOINC as the alternate, or a local code alone, then LOINC is taken from the alternate, or is missing', () => {
    const localFirst = coded(null, 'K', [], 'final', {
      code: {
        ...codeOf('urn:hl7:codesystem:99LAB', 'K', 'Potassium'),
        alternates: [
          { system: 'http://loinc.org', code: '2823-3', display: 'Potassium SerPl-sCnc', version: '2.77' },
        ],
      },
    });
    const d = run(
      resulted('P1', 'R1', 'O1', null, 'bmp', 'final', 'r1', at(10), [
        localFirst,
        coded(null, 'NA', ['N'], 'final', { sequence: 2 }),
      ]),
    );
    expect(d.get('observations', 'R1|0')).toMatchObject({ loinc_code: '2823-3', code: 'K', abnormal: false });
    expect(d.get('observations', 'R1|1')).toMatchObject({ loinc_code: null, code: 'NA', critical: false });
  });

  it('given FHIR interpretations in v3-ObservationInterpretation (AA), or a coded unit that is not UCUM, then critical and "other" units', () => {
    const o = coded('2823-3', 'K', [], 'final', {
      interpretations: [codeOf(V3_INTERP, 'AA', 'Critical abnormal')],
      interpretation: codeOf(V3_INTERP, 'AA', 'Critical abnormal'),
      unitCode: codeOf('urn:hl7:codesystem:99UNIT', 'MEQL', null),
    });
    const d = run(resulted('P1', 'R1', 'O1', null, 'bmp', 'final', 'r1', at(10), [o]));
    expect(d.get('observations', 'R1|0')).toMatchObject({ critical_flag: 'AA', unit_system: 'other' });
    expect(interpretationCodes({ ...o, interpretations: [], interpretation: null })).toEqual([]);
  });

  it('given a correction with fewer observations, then the rows mirror the correction; a late preliminary changes nothing', () => {
    const two = [coded('2823-3', 'K', ['HH'], 'final'), coded('2951-2', 'NA', [], 'final', { sequence: 2 })];
    const final = resulted('P1', 'R1', 'O1', null, 'bmp', 'final', 'r2', at(10), two);
    const corrected = resulted('P1', 'R1', 'O1', null, 'bmp', 'corrected', 'r3', at(11), [
      coded('2823-3', 'K', ['N'], 'corrected'),
    ]);
    const prelim = resulted('P1', 'R1', 'O1', null, 'bmp', 'preliminary', 'r1', at(9), two);
    const tables = ['results', 'observations'] as const;
    const expected = snapshot(run(final, corrected), tables);
    expect([...run(final, corrected).all('observations').keys()]).toEqual(['R1|0']);
    expect(run(final, corrected).get('observations', 'R1|0')).toMatchObject({
      critical: false,
      released: true,
    });
    expect(snapshot(run(final, corrected, prelim), tables)).toBe(expected);
    expect(snapshot(run(prelim, corrected, final), tables)).toBe(expected);
  });
});

describe('analytics: observation facts (property)', () => {
  const FLAGS = [
    'H',
    'HH',
    'L',
    'LL',
    'A',
    'AA',
    'N',
    'hh',
    'll',
    'aa',
    'HU',
    'LU',
    '<',
    '>',
    'S',
    'R',
    'I',
    'X',
  ];
  it('given any flags in any order and case, then every code is kept once, critical implies abnormal, and the critical flag is HH, LL or AA', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...FLAGS), { maxLength: 6 }), fc.boolean(), (flags, v3) => {
        const system = v3 ? V3_INTERP : V2_0078;
        const o = coded('2823-3', 'K', [], 'final', {
          interpretations: flags.map((f) => codeOf(system, f, null)),
          interpretation: flags[0] ? codeOf(system, flags[0], null) : null,
        });
        const e = resulted('P1', 'R1', 'O1', null, 'bmp', 'final', 'r1', at(10), [o]);
        if (e.type !== 'ResultReported') throw new Error('a final result is reported');
        const row = observationRow(e.data, o, 0, 'P1');
        expect(row.interpretations).toEqual([...new Set(flags)]);
        if (row.critical) expect(row.abnormal).toBe(true);
        expect(row.critical).toBe(flags.some((f) => ['HH', 'LL', 'AA'].includes(f.toUpperCase())));
        if (row.critical_flag !== null) expect(CRITICAL_FLAGS).toContain(row.critical_flag);
      }),
    );
  });
});

describe('analytics: diagnoses', () => {
  it('given a diagnosis restated, when the statements arrive in either order, then the later statement wins', () => {
    const a = diagnosed('P1', 'D1', 'E1', 'I21.4', 'NSTEMI', 2, 'dg1', at(9));
    const b = diagnosed('P1', 'D1', 'E1', 'I21.4', 'NSTEMI', 1, 'dg2', at(10));
    for (const order of [
      [a, b],
      [b, a],
    ])
      expect(run(...order).get('diagnoses', 'D1')).toMatchObject({
        rank: 1,
        code: 'I21.4',
        code_system: 'http://hl7.org/fhir/sid/icd-10-cm',
        encounter_id: 'E1',
        diagnosis_type: 'F',
      });
  });

  it('any cross-topic interleaving of a day with coded results and diagnoses ends in the same rows', () => {
    const events = [
      ...hospitalDay().filter((e) => e.type !== 'PatientsMerged'),
      diagnosed('P1', 'D1', 'E1', 'J18.9', 'Pneumonia', 1, 'dg-1', at(8, 30)),
      diagnosed('P1', 'D1', 'E1', 'J18.9', 'Pneumonia', 2, 'dg-1b', at(12)),
      resulted('P2', 'R20', 'O20', 'E2', 'bmp', 'final', 'oru-20', at(10), [
        coded('2823-3', 'K', ['HH'], 'final'),
        coded(null, 'NA', [], 'final', { sequence: 2 }),
      ]),
      resulted('P2', 'R20', 'O20', 'E2', 'bmp', 'corrected', 'oru-20c', at(12), [
        coded('2823-3', 'K', ['H'], 'corrected'),
      ]),
    ];
    const streams = ['patient', 'encounter', 'order', 'result'].map((a) =>
      events.filter((e) => aggregateOf(e) === a),
    );
    const tables = ['encounters', 'results', 'observations', 'diagnoses'] as const;
    const expected = snapshot(evolveAll<AnalyticsTables>(evolve, events), tables);
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        expect(snapshot(evolveAll<AnalyticsTables>(evolve, interleave(streams, rng(seed))), tables)).toBe(
          expected,
        );
      }),
      { numRuns: 100 },
    );
  });
});
