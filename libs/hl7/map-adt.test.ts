import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { avroTypeOf, type ClinicalEvent, type EventType, type EventTypeMap } from '../events/index.js';
import { mergeDemographics } from '../events/demographics.js';
import { DEFAULT_IDENTITY_POLICY } from '../identity/index.js';
import { allergyIdFor, diagnosisIdFor } from './map-adt-clinical.js';
import { mapHl7Message } from './map.js';
import type { MapContext, MapOutcome } from './types.js';

/**
 * ADT beyond PID/PV1's core (issue #18): PV1/PV2 facts on every visit event, DG1, AL1, IN1/IN2,
 * NK1, PD1, PID-10/15/16/17/22, XAD-7 address type, MRG-3/5/7, with HL7 v2 null semantics.
 */

const ctx: MapContext = {
  recordedAt: 1_710_000_000_000,
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: null,
  timeZone: 'UTC',
};

const v2 = (table: string) => `http://terminology.hl7.org/CodeSystem/v2-${table}`;

/** A segment from its fields by number (the rest empty). */
function seg(name: string, fields: Record<number, string>): string {
  const n = Math.max(...Object.keys(fields).map(Number));
  const f: string[] = Array.from({ length: n + 1 }, () => '');
  f[0] = name;
  for (const [k, v] of Object.entries(fields)) f[Number(k)] = v;
  return f.join('|');
}

const MSH = (type: string, id = 'ADTX1', version = '2.5.1') =>
  `MSH|^~\\&|EHR|GENHOSP|HUB|HUB|20240301100000+0000||${type}|${id}|P|${version}`;
const EVN = (trigger: string) => `EVN|${trigger}|20240301100000+0000||||20240301093000+0000`;
const PID = (fields: Record<number, string> = {}) =>
  seg('PID', { 1: '1', 3: 'MRN30001^^^HOSP^MR', 5: 'Fullcase^Fiona', 7: '19800215', 8: 'F', ...fields });
const PV1 = (fields: Record<number, string> = {}) =>
  seg('PV1', {
    1: '1',
    2: 'I',
    3: 'WARD4^401^B^GENHOSP',
    4: 'E^Emergency^HL70007',
    7: '1234^Welby^Marcus',
    10: 'MED',
    14: '7^Emergency room^HL70023',
    19: 'V30001^^^HOSP^VN',
    ...fields,
  });

function outcome(segments: string[]): MapOutcome {
  return mapHl7Message(Buffer.from(segments.join('\r')), ctx);
}

function map(segments: string[]): ClinicalEvent[] {
  const out = outcome(segments);
  if (out.kind !== 'mapped')
    throw new Error(`refused ${out.refusal.hl7ErrorCode} ${out.refusal.error.message}`);
  return out.events;
}

/** An A08 of the test patient's visit carrying `segments` after its PV1. */
const a08With = (segments: string[], id = 'ADTX1', version = '2.5.1'): string[] => [
  MSH('ADT^A08^ADT_A01', id, version),
  EVN('A08'),
  PID(),
  PV1(),
  ...segments,
];

/** The refusal of a message that must be refused. */
function refusalOf(segments: string[]) {
  const out = outcome(segments);
  if (out.kind !== 'refused') throw new Error('expected a refusal');
  return out.refusal;
}

function all<K extends EventType>(events: ClinicalEvent[], type: K): EventTypeMap[K][] {
  return events.filter((e) => e.type === type).map((e) => e.data as EventTypeMap[K]);
}

function only<K extends EventType>(events: ClinicalEvent[], type: K): EventTypeMap[K] {
  const hits = all(events, type);
  expect(hits).toHaveLength(1);
  return hits[0]!;
}

/** The A01 of the issue: two diagnoses, an allergy, insurance, a next of kin, a GP and PID-10/17/22. */
const FULL_A01 = [
  MSH('ADT^A01^ADT_A01'),
  EVN('A01'),
  PID({
    10: '2106-3^White^CDCREC^W^White^L~2028-9^Asian^CDCREC',
    11: '12 Elm St^^Springfield^IL^62701^USA^H~PO Box 9^^Springfield^IL^62702^USA^M',
    15: 'eng^English^ISO639',
    16: 'M^Married^HL70002',
    17: 'CAT^Roman Catholic^HL70006',
    22: '2186-5^Not Hispanic or Latino^CDCREC^N^Not Hispanic^HL70189',
  }),
  seg('PD1', { 4: '5678^Kildare^James^^^Dr^^^NPI' }),
  seg('NK1', {
    1: '1',
    2: 'Fullcase^Frank',
    3: 'SPO^Spouse^HL70063',
    4: '12 Elm St^^Springfield^IL^62701^USA^H',
    5: '^PRN^PH^^1^217^5550101',
    6: '^WPN^PH^^1^217^5550102',
    7: 'EP^Emergency contact person^HL70131',
    8: '20200101',
  }),
  PV1({ 36: '01^Discharged to home^HL70112' }),
  seg('PV2', { 3: 'R07.9^Chest pain, unspecified^I10' }),
  seg('AL1', {
    1: '1',
    2: 'DA^Drug allergy^HL70127',
    3: '7980^Penicillin G^RXNORM',
    4: 'SV^Severe^HL70128',
    5: 'Hives~Wheezing',
    6: '20190310',
  }),
  seg('DG1', {
    1: '1',
    3: 'I21.4^NSTEMI^I10',
    5: '20240301094500+0000',
    6: 'A',
    15: '1',
    16: '1234^Welby^Marcus',
  }),
  seg('DG1', { 1: '2', 3: 'E11.9^Type 2 diabetes mellitus without complications^I10', 6: 'W', 15: '2' }),
  seg('IN1', {
    1: '1',
    2: 'GOLD^Gold PPO^L',
    3: 'ACME01^^^PAYERS',
    4: 'Acme Health',
    8: 'GRP-7',
    9: 'Springfield Works',
    12: '20240101',
    13: '20241231',
    15: 'PPO',
    16: 'Fullcase^Frank',
    17: 'SPO^Spouse^HL70063',
    22: '1',
    36: 'POL-99',
  }),
  seg('IN2', { 61: 'MEM-42' }),
  seg('IN1', { 1: '2', 2: 'MCR^Medicare^L', 3: 'CMS^^^PAYERS', 4: 'Medicare' }),
  seg('IN2', { 6: '1EG4-TE5-MK73' }),
];

describe('ADT encounter facts on every visit event (PV1-2/3/4/7/10/14/36, PV2-3)', () => {
  it('given an A01 with PV1-4, PV1-14, PV1-36 and PV2-3, when mapped, then EncounterStarted carries them as sent', () => {
    // given / when
    const enc = only(map(FULL_A01), 'EncounterStarted');
    // then
    expect(enc.admissionType).toMatchObject({ system: v2('0007'), code: 'E', display: 'Emergency' });
    expect(enc.admitSource).toMatchObject({ system: v2('0023'), code: '7', display: 'Emergency room' });
    expect(enc.dischargeDisposition).toMatchObject({ system: v2('0112'), code: '01' });
    expect(enc.admitReason).toMatchObject({ code: 'R07.9', display: 'Chest pain, unspecified' });
    expect(enc.admitReason?.system).toMatch(/icd-10|I10/i);
    expect(enc.payer).toBe('Acme Health');
  });

  it('given a PV2-3 sent as text only, when mapped, then the admit reason is kept as text', () => {
    const enc = only(
      map([...FULL_A01.slice(0, 6), seg('PV2', { 3: '^Fell off ladder' })]),
      'EncounterStarted',
    );
    expect(enc.admitReason).toMatchObject({
      system: 'urn:hub:text',
      code: 'Fell off ladder',
      text: 'Fell off ladder',
    });
  });

  it('given an A02 with PV1-2/7/10, when mapped, then EncounterTransferred carries class, service and attending', () => {
    const t = only(
      map([
        MSH('ADT^A02^ADT_A02'),
        EVN('A02'),
        PID(),
        PV1({ 2: 'E', 3: 'ICU^1^1^GENHOSP', 6: 'ED^^^GENHOSP', 10: 'CAR' }),
      ]),
      'EncounterTransferred',
    );
    expect(t.encounterClass).toMatchObject({ code: 'EMER', alternates: [{ system: v2('0004'), code: 'E' }] });
    expect(t.hospitalService).toMatchObject({ system: v2('0069'), code: 'CAR' });
    expect(t.attendingPractitioner?.name?.family).toBe('Welby');
  });

  it('given an A11 with PV1-2, when mapped, then EncounterCancelled carries the class', () => {
    const c = only(map([MSH('ADT^A11^ADT_A09'), EVN('A11'), PID(), PV1({ 2: 'O' })]), 'EncounterCancelled');
    expect(c.encounterClass).toMatchObject({ code: 'AMB', alternates: [{ code: 'O' }] });
  });

  it('given an A03 of an emergency visit admitted as inpatient, when mapped, then the class at discharge is the one sent', () => {
    const e = only(map([MSH('ADT^A03^ADT_A03'), EVN('A03'), PID(), PV1({ 2: 'I' })]), 'EncounterEnded');
    expect(e.encounterClass).toMatchObject({ code: 'IMP', alternates: [{ code: 'I' }] });
    expect(e.location?.unit).toBe('WARD4');
  });
});

describe('ADT patient facts (PID-10/15/16/17/22, XAD-7, PD1-4, NK1)', () => {
  it('given PID-10 with two races and alternates, PID-22, PID-17, PID-15 and PID-16, when mapped, then every repetition and coding is kept', () => {
    const d = only(map(FULL_A01), 'PatientRegistered').demographics;
    expect(d.race).toHaveLength(2);
    expect(d.race[0]).toMatchObject({
      code: '2106-3',
      display: 'White',
      alternates: [{ code: 'W', display: 'White' }],
    });
    expect(d.race[1]).toMatchObject({ code: '2028-9', display: 'Asian' });
    expect(d.race[0]?.system).toBe(d.race[1]?.system);
    expect(d.ethnicity).toEqual([
      expect.objectContaining({
        code: '2186-5',
        alternates: [{ system: v2('0189'), code: 'N', display: 'Not Hispanic', version: null }],
      }),
    ]);
    expect(d.religion).toMatchObject({ system: v2('0006'), code: 'CAT', display: 'Roman Catholic' });
    expect(d.language).toMatchObject({ code: 'eng', display: 'English' });
    expect(d.maritalStatus).toMatchObject({ system: v2('0002'), code: 'M', display: 'Married' });
    for (const f of [
      'race',
      'ethnicity',
      'religion',
      'language',
      'maritalStatus',
      'contacts',
      'primaryCareProvider',
    ]) {
      expect(d.notSent).not.toContain(f);
    }
    expect(d.cleared).toEqual([]);
  });

  it('given bare table codes in PID-10/15/17/22, when mapped, then their system is the HL7 table', () => {
    const d = only(
      map([MSH('ADT^A28^ADT_A05'), EVN('A28'), PID({ 10: 'W', 15: 'ENG', 17: 'BAP', 22: 'N' }), 'PV1|1|N']),
      'PatientRegistered',
    ).demographics;
    expect(d.race[0]?.system).toBe(v2('0005'));
    expect(d.language?.system).toBe(v2('0296'));
    expect(d.religion?.system).toBe(v2('0006'));
    expect(d.ethnicity[0]?.system).toBe(v2('0189'));
  });

  it('given XAD-7 H and M, when mapped, then home is use home and mailing is type postal (v2-to-FHIR 0190 maps)', () => {
    const d = only(map(FULL_A01), 'PatientRegistered').demographics;
    expect(d.addresses.map((a) => [a.lines[0], a.use, a.type])).toEqual([
      ['12 Elm St', 'home', null],
      ['PO Box 9', null, 'postal'],
    ]);
  });

  it('given PD1-4, when mapped, then it is the primary care provider', () => {
    const d = only(map(FULL_A01), 'PatientRegistered').demographics;
    expect(d.primaryCareProvider).toMatchObject({
      id: { value: '5678' },
      name: { family: 'Kildare', given: ['James'], prefix: 'Dr' },
    });
  });

  it('given an NK1, when mapped, then a contact with relationships, name, phones, address and period', () => {
    const [c] = only(map(FULL_A01), 'PatientRegistered').demographics.contacts;
    expect(c).toEqual({
      relationships: [
        { system: v2('0063'), code: 'SPO', display: 'Spouse', version: null, alternates: [], text: null },
        {
          system: v2('0131'),
          code: 'EP',
          display: 'Emergency contact person',
          version: null,
          alternates: [],
          text: null,
        },
      ],
      name: { family: 'Fullcase', given: ['Frank'], prefix: null, suffix: null, use: null },
      telecom: [
        { system: 'phone', value: '+1 217 5550101', use: 'home', part: null },
        { system: 'phone', value: '+1 217 5550102', use: 'work', part: null },
      ],
      address: {
        lines: ['12 Elm St'],
        city: 'Springfield',
        state: 'IL',
        postalCode: '62701',
        country: 'USA',
        use: 'home',
        type: null,
      },
      organization: null,
      periodStart: '2020-01-01',
      periodEnd: null,
    });
  });

  it('given an NK1 for an organisation (NK1-13, contact person NK1-30), when mapped, then both are kept', () => {
    const [c] = only(
      map([
        MSH('ADT^A31^ADT_A05'),
        EVN('A31'),
        PID(),
        seg('NK1', { 1: '1', 7: 'E^Employer^HL70131', 13: 'Springfield Works', 30: 'Boss^Betty' }),
        'PV1|1|N',
      ]),
      'PatientUpdated',
    ).demographics.contacts;
    expect(c).toMatchObject({ organization: 'Springfield Works', name: { family: 'Boss' } });
  });

  it('given an NK1-8 that is not a date, when mapped, then AE 102 at NK1-8', () => {
    const refusal = refusalOf([
      MSH('ADT^A31^ADT_A05'),
      EVN('A31'),
      PID(),
      seg('NK1', { 1: '1', 2: 'A^B', 8: '2020-01' }),
      'PV1|1|N',
    ]);
    expect(refusal).toMatchObject({
      hl7ErrorCode: '102',
      location: { segment: 'NK1', field: 8 },
    });
  });
});

describe('ADT null semantics of the new patient fields (HL7 v2 chapter 2: empty keeps, "" deletes)', () => {
  const a08 = (extra: string[], pid: Record<number, string> = {}) =>
    only(map([MSH('ADT^A08^ADT_A01'), EVN('A08'), PID(pid), ...extra, PV1()]), 'PatientUpdated').demographics;

  it('given an A08 without NK1 and PD1, when mapped, then contacts and the GP are not sent', () => {
    const d = a08([]);
    expect(d.notSent).toEqual(
      expect.arrayContaining(['contacts', 'primaryCareProvider', 'race', 'ethnicity', 'religion']),
    );
  });

  it('given PID-10, PID-17 and PID-22 sent as "", when mapped, then they are cleared', () => {
    const d = a08([], { 10: '""', 17: '""', 22: '""' });
    expect([...d.cleared].sort()).toEqual(['ethnicity', 'race', 'religion']);
    expect([d.race, d.ethnicity, d.religion]).toEqual([[], [], null]);
  });

  it('given an NK1 with only "" and PD1-4 as "", when mapped, then contacts and GP are cleared', () => {
    const d = a08([seg('PD1', { 4: '""' }), seg('NK1', { 1: '1', 2: '""' })]);
    expect(d.cleared).toEqual(expect.arrayContaining(['contacts', 'primaryCareProvider']));
    expect(d.notSent).not.toContain('contacts');
    expect(d.contacts).toEqual([]);
  });

  it('given a stored patient and an A08 that sends only names, when applied, then contacts, GP, race and religion stay', () => {
    const stored = only(map(FULL_A01), 'PatientRegistered').demographics;
    const merged = mergeDemographics(stored, a08([]));
    expect(merged.contacts).toEqual(stored.contacts);
    expect(merged.primaryCareProvider).toEqual(stored.primaryCareProvider);
    expect(merged.race).toEqual(stored.race);
    expect(merged.religion).toEqual(stored.religion);
    expect(merged.ethnicity).toEqual(stored.ethnicity);
  });

  it('given a stored patient and an A08 clearing NK1 and PID-17, when applied, then those are deleted and the rest stays', () => {
    const stored = only(map(FULL_A01), 'PatientRegistered').demographics;
    const merged = mergeDemographics(stored, a08([seg('NK1', { 1: '1', 2: '""' })], { 17: '""' }));
    expect(merged.contacts).toEqual([]);
    expect(merged.religion).toBeNull();
    expect(merged.race).toEqual(stored.race);
  });
});

describe('DG1 → DiagnosisRecorded', () => {
  it('given two DG1, when an A01 is mapped, then two diagnoses with code, type, rank, time and clinician', () => {
    const events = map(FULL_A01);
    const enc = only(events, 'EncounterStarted');
    const [a, b] = all(events, 'DiagnosisRecorded');
    expect(a).toMatchObject({
      patientId: enc.patientId,
      encounterId: enc.encounterId,
      code: { code: 'I21.4', display: 'NSTEMI' },
      category: 'encounter-diagnosis',
      diagnosisType: { system: v2('0052'), code: 'A' },
      rank: 1,
      diagnosedAt: Date.parse('2024-03-01T09:45:00Z'),
      clinician: { name: { family: 'Welby' } },
      verificationStatus: null,
    });
    expect(b).toMatchObject({
      code: { code: 'E11.9' },
      diagnosisType: { code: 'W' },
      rank: 2,
      diagnosedAt: null,
    });
    expect(a?.diagnosisId).toBe(diagnosisIdFor(enc.encounterId, a!.code));
    expect(a?.diagnosisId).not.toBe(b?.diagnosisId);
    expect(a?.meta.sourceTimes.map((t) => t.field)).toContain('diagnosedAt');
  });

  it('given the same DG1 in an A08 and an A03 of the visit, when mapped, then the diagnosis id is the same (a restatement)', () => {
    const dg1 = seg('DG1', { 1: '3', 3: 'I21.4^NSTEMI^I10', 6: 'F' });
    const fromA08 = only(map(a08With([dg1], 'X8')), 'DiagnosisRecorded');
    const fromA03 = only(
      map([MSH('ADT^A03^ADT_A03', 'X3'), EVN('A03'), PID(), PV1(), dg1]),
      'DiagnosisRecorded',
    );
    const fromA01 = all(map(FULL_A01), 'DiagnosisRecorded')[0];
    expect(fromA08.diagnosisId).toBe(fromA03.diagnosisId);
    expect(fromA08.diagnosisId).toBe(fromA01?.diagnosisId);
    expect(fromA08.meta.eventId).not.toBe(fromA03.meta.eventId);
  });

  it('given an uncoded DG1 (DG1-4 only, v2.3 style), when mapped, then a text-only code keyed by its text, not its set id', () => {
    const events = map(
      a08With(
        [
          seg('DG1', { 1: '1', 2: 'I9', 4: 'Chest pain', 6: 'A' }),
          seg('DG1', { 1: '2', 2: 'I9', 4: 'Shortness of breath', 6: 'A' }),
        ],
        'X9',
        '2.3',
      ),
    );
    const [a, b] = all(events, 'DiagnosisRecorded');
    expect(a?.code).toEqual({
      system: 'urn:hub:text',
      code: 'Chest pain',
      display: 'Chest pain',
      version: null,
      alternates: [],
      text: 'Chest pain',
    });
    expect(a?.diagnosisId).not.toBe(b?.diagnosisId);
    const renumbered = map(a08With([seg('DG1', { 1: '7', 4: 'Chest pain', 6: 'A' })], 'X10', '2.3'));
    expect(only(renumbered, 'DiagnosisRecorded').diagnosisId).toBe(a?.diagnosisId);
  });

  it('given DG1-21 D (delete), when mapped, then the diagnosis is entered-in-error', () => {
    const d = only(
      map(a08With([seg('DG1', { 1: '1', 3: 'I21.4^NSTEMI^I10', 6: 'F', 21: 'D' })])),
      'DiagnosisRecorded',
    );
    expect(d.verificationStatus).toBe('entered-in-error');
  });

  it('given a DG1 with neither DG1-3 nor DG1-4, when mapped, then AE 101 at DG1-3', () => {
    expect(refusalOf(a08With([seg('DG1', { 1: '1', 6: 'A' })]))).toMatchObject({
      hl7ErrorCode: '101',
      location: { segment: 'DG1', field: 3 },
    });
  });

  it('given an A31 without a visit, when mapped, then the diagnosis has no encounter and is keyed by the patient', () => {
    const events = map([
      MSH('ADT^A31^ADT_A05'),
      EVN('A31'),
      PID(),
      'PV1|1|N',
      seg('DG1', { 1: '1', 3: 'E11.9^T2DM^I10' }),
    ]);
    const d = only(events, 'DiagnosisRecorded');
    expect(d.encounterId).toBeNull();
    expect(d.diagnosisId).toBe(diagnosisIdFor(d.patientId, d.code));
  });

  it('given an A02 or an A40 with a DG1, when mapped, then no diagnosis is emitted (their structures have none)', () => {
    const dg1 = seg('DG1', { 1: '1', 3: 'I21.4^NSTEMI^I10' });
    expect(map([MSH('ADT^A02^ADT_A02'), EVN('A02'), PID(), PV1(), dg1]).map((e) => e.type)).toEqual([
      'EncounterTransferred',
    ]);
  });
});

describe('AL1 → AllergyRecorded', () => {
  it('given an AL1, when mapped, then allergen, type, category, severity, criticality, reactions and date', () => {
    const events = map(FULL_A01);
    const a = only(events, 'AllergyRecorded');
    expect(a).toMatchObject({
      patientId: only(events, 'PatientRegistered').patientId,
      encounterId: only(events, 'EncounterStarted').encounterId,
      allergen: { code: '7980', display: 'Penicillin G' },
      allergyType: { system: v2('0127'), code: 'DA' },
      category: 'medication',
      severity: { system: v2('0128'), code: 'SV' },
      criticality: 'high',
      reactions: ['Hives', 'Wheezing'],
      identifiedOn: '2019-03-10',
      clinicalStatus: 'active',
      verificationStatus: null,
    });
    expect(a.allergyId).toBe(allergyIdFor(a.patientId, a.allergen));
  });

  it.each([
    ['FA', 'MI', 'food', 'low'],
    ['EA', 'MO', 'environment', 'low'],
    ['DI', 'SV', 'medication', 'high'],
    ['AA', 'U', 'biologic', 'unable-to-assess'],
    ['MA', '', null, null],
  ])(
    'given AL1-2 %s and AL1-4 %s, when mapped, then category %s and criticality %s',
    (type, sev, cat, crit) => {
      const a = only(
        map(a08With([seg('AL1', { 1: '1', 2: type, 3: '^Peanuts', 4: sev })])),
        'AllergyRecorded',
      );
      expect([a.category, a.criticality]).toEqual([cat, crit]);
      expect(a.allergen).toMatchObject({ system: 'urn:hub:text', code: 'Peanuts', text: 'Peanuts' });
    },
  );

  it('given the same allergen sent again by another message, when mapped, then the allergy id is the same', () => {
    const al1 = seg('AL1', { 1: '4', 3: '7980^Penicillin G^RXNORM', 4: 'MO' });
    const a = only(map(a08With([al1], 'Y1')), 'AllergyRecorded');
    expect(a.allergyId).toBe(only(map(FULL_A01), 'AllergyRecorded').allergyId);
  });

  it('given an AL1 without AL1-3, when mapped, then AE 101 at AL1-3', () => {
    expect(refusalOf(a08With([seg('AL1', { 1: '1', 2: 'DA' })]))).toMatchObject({
      hl7ErrorCode: '101',
      location: { segment: 'AL1', field: 3 },
    });
  });
});

describe('IN1/IN2 → CoverageRecorded', () => {
  it('given two IN1 each with its IN2, when mapped, then each coverage takes its own IN2', () => {
    const [first, second] = all(map(FULL_A01), 'CoverageRecorded');
    expect(first).toMatchObject({
      order: 1,
      payerId: { value: 'ACME01' },
      payerName: 'Acme Health',
      plan: { code: 'GOLD', display: 'Gold PPO' },
      planType: { system: v2('0086'), code: 'PPO' },
      groupNumber: 'GRP-7',
      groupName: 'Springfield Works',
      memberId: 'POL-99',
      subscriberName: { family: 'Fullcase', given: ['Frank'] },
      relationship: { system: v2('0063'), code: 'SPO' },
      periodStart: '2024-01-01',
      periodEnd: '2024-12-31',
      status: 'active',
    });
    // No IN1-22 / IN1-36: the set id orders it, and its own IN2 (Medicare card) is the member id.
    expect(second).toMatchObject({ order: 2, payerName: 'Medicare', memberId: '1EG4-TE5-MK73' });
    expect(first?.coverageId).not.toBe(second?.coverageId);
  });

  it('given IN1 without IN1-36 but IN2-61, when mapped, then the patient member number is the member id', () => {
    const c = only(
      map(a08With([seg('IN1', { 1: '1', 2: 'P', 3: 'X^^^PAYERS' }), seg('IN2', { 61: 'M-1' })])),
      'CoverageRecorded',
    );
    expect(c.memberId).toBe('M-1');
  });

  it('given the same coverage in an A01 and an A08, when mapped, then the coverage id is the same', () => {
    const again = map(a08With([...FULL_A01.slice(-4)], 'Z1'));
    expect(all(again, 'CoverageRecorded').map((c) => c.coverageId)).toEqual(
      all(map(FULL_A01), 'CoverageRecorded').map((c) => c.coverageId),
    );
  });
});

describe('A40 → PatientsMerged with MRG-3/5/7', () => {
  it('given MRG-1/3/5/7, when mapped, then the retired account, visit and names travel with the merge', () => {
    const m = only(
      map([
        MSH('ADT^A40^ADT_A39'),
        EVN('A40'),
        PID(),
        seg('MRG', {
          1: 'MRN30009^^^HOSP^MR',
          3: 'ACC9^^^HOSP^AN',
          5: 'V9^^^HOSP^VN',
          7: 'Oldname^Fiona~Fullcase^Fi^^^^^A',
        }),
      ]),
      'PatientsMerged',
    );
    expect(m.mergedAccountNumber).toEqual({ system: 'urn:hl7:authority:HOSP', value: 'ACC9', type: 'AN' });
    expect(m.mergedVisitNumber).toEqual({ system: 'urn:hl7:authority:HOSP', value: 'V9', type: 'VN' });
    expect(m.mergedNames.map((n) => [n.family, n.use])).toEqual([
      ['Oldname', null],
      ['Fullcase', 'usual'],
    ]);
    expect(m.mergedDemographics).toBeNull();
  });
});

describe('ADT event identity', () => {
  it('given the full A01, when mapped twice, then every event id is distinct within it and equal across resends', () => {
    const ids = map(FULL_A01).map((e) => e.data.meta.eventId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(map(FULL_A01).map((e) => e.data.meta.eventId)).toEqual(ids);
    expect(map(FULL_A01).map((e) => e.type)).toEqual([
      'PatientRegistered',
      'EncounterStarted',
      'DiagnosisRecorded',
      'DiagnosisRecorded',
      'AllergyRecorded',
      'CoverageRecorded',
      'CoverageRecorded',
    ]);
  });
});

// ---------------------------------------------------------------------------
// Property: generated NK1 / AL1 / DG1 / IN1 content survives map → Avro encode → decode.

/** Text with no HL7 delimiters and no leading/trailing blanks (the reader trims). */
const word = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 .-]{0,14}[A-Za-z0-9]$/);
const code = fc.stringMatching(/^[A-Z0-9][A-Z0-9.]{0,7}$/);
const date = fc
  .date({ min: new Date('1950-01-01T00:00:00Z'), max: new Date('2049-12-31T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString().slice(0, 10));
const hl7Date = (iso: string) => iso.replaceAll('-', '');

const generated = fc.record({
  contact: fc.record({
    family: word,
    given: word,
    rel: fc.constantFrom('SPO', 'MTH', 'FTH', 'CHD', 'FND'),
    start: date,
  }),
  allergies: fc.uniqueArray(
    fc.record({
      code,
      name: word,
      type: fc.constantFrom('DA', 'FA', 'EA', 'MA'),
      reactions: fc.array(word, { maxLength: 3 }),
      on: date,
    }),
    { minLength: 1, maxLength: 3, selector: (a) => a.code },
  ),
  diagnoses: fc.uniqueArray(
    fc.record({
      code,
      text: word,
      type: fc.constantFrom('A', 'W', 'F'),
      rank: fc.integer({ min: 1, max: 9 }),
    }),
    {
      minLength: 1,
      maxLength: 3,
      selector: (d) => d.code,
    },
  ),
  coverage: fc.record({ payer: code, name: word, member: code, group: word, from: date }),
});

function roundTrip(e: ClinicalEvent): unknown {
  const t = avroTypeOf(e.type);
  return t.fromBuffer(t.toBuffer(e.data));
}

describe('ADT property: NK1, AL1, DG1, IN1 content survives map → Avro encode → decode', () => {
  it('given generated segments, when mapped and encoded, then every field arrives unchanged', () => {
    fc.assert(
      fc.property(generated, (g) => {
        // given
        const segments = [
          MSH('ADT^A01^ADT_A01'),
          EVN('A01'),
          PID(),
          seg('NK1', {
            1: '1',
            2: `${g.contact.family}^${g.contact.given}`,
            3: `${g.contact.rel}^^HL70063`,
            8: hl7Date(g.contact.start),
          }),
          PV1(),
          ...g.allergies.map((a, i) =>
            seg('AL1', {
              1: String(i + 1),
              2: a.type,
              3: `${a.code}^${a.name}^L`,
              5: a.reactions.join('~'),
              6: hl7Date(a.on),
            }),
          ),
          ...g.diagnoses.map((d, i) =>
            seg('DG1', { 1: String(i + 1), 3: `${d.code}^${d.text}^I10`, 6: d.type, 15: String(d.rank) }),
          ),
          seg('IN1', {
            1: '1',
            2: 'PLAN^Plan',
            3: `${g.coverage.payer}^^^PAYERS`,
            4: g.coverage.name,
            8: g.coverage.group,
            12: hl7Date(g.coverage.from),
            36: g.coverage.member,
          }),
        ];
        // when
        const events = map(segments);
        // then: the Avro round trip changes nothing ...
        for (const e of events) expect(roundTrip(e)).toEqual(e.data);
        // ... and what was sent is what was mapped.
        const [contact] = only(events, 'PatientRegistered').demographics.contacts;
        expect(contact).toMatchObject({
          name: { family: g.contact.family, given: [g.contact.given] },
          relationships: [{ code: g.contact.rel, system: v2('0063') }],
          periodStart: g.contact.start,
        });
        expect(
          all(events, 'AllergyRecorded').map((a) => [
            a.allergen.code,
            a.allergen.display,
            a.reactions,
            a.identifiedOn,
          ]),
        ).toEqual(g.allergies.map((a) => [a.code, a.name, a.reactions, a.on]));
        expect(
          all(events, 'DiagnosisRecorded').map((d) => [
            d.code.code,
            d.code.display,
            d.diagnosisType?.code,
            d.rank,
          ]),
        ).toEqual(g.diagnoses.map((d) => [d.code, d.text, d.type, d.rank]));
        expect(only(events, 'CoverageRecorded')).toMatchObject({
          payerId: { value: g.coverage.payer },
          payerName: g.coverage.name,
          groupNumber: g.coverage.group,
          memberId: g.coverage.member,
          periodStart: g.coverage.from,
        });
      }),
      { numRuns: 150 },
    );
  }, 60_000);
});

describe('PID-40 (v2.7+ patient telecommunication information)', () => {
  const a08 = (pid: Record<number, string>) =>
    only(map([MSH('ADT^A08^ADT_A01', 'T40', '2.7'), EVN('A08'), PID(pid), PV1()]), 'PatientUpdated')
      .demographics;

  it('given PID-40 with a home and a work number and no PID-13/14, when mapped, then both parts are sent with those numbers', () => {
    const d = a08({ 40: '^PRN^PH^^1^217^5550201~^WPN^PH^^1^217^5550202' });
    expect(d.telecom.map((t) => [t.value, t.use, t.part])).toEqual([
      ['+1 217 5550201', 'home', 'home'],
      ['+1 217 5550202', 'work', 'work'],
    ]);
    expect(d.notSent).not.toContain('telecom.home');
    expect(d.notSent).not.toContain('telecom.work');
  });

  it('given PID-40 sent as "" and no PID-13/14, when mapped, then both telecom parts are cleared', () => {
    const d = a08({ 40: '""' });
    expect(d.cleared).toEqual(expect.arrayContaining(['telecom.home', 'telecom.work']));
    expect(d.notSent).not.toContain('telecom.home');
  });
});

describe('corpus: adt-a01-full-record.hl7 (the issue #18 admission)', () => {
  it('given the A01 with two diagnoses, an allergy, insurance and a next of kin, when mapped, then every fact is an event or a demographics field', () => {
    // given
    const bytes = readFileSync(
      join(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/hl7/adt-a01-full-record.hl7'),
    );
    // when
    const out = mapHl7Message(bytes, ctx);
    if (out.kind !== 'mapped') throw new Error(out.refusal.error.message);
    const events = out.events;
    // then
    expect(events.map((e) => e.type)).toEqual([
      'PatientRegistered',
      'EncounterStarted',
      'DiagnosisRecorded',
      'DiagnosisRecorded',
      'AllergyRecorded',
      'CoverageRecorded',
    ]);
    const d = only(events, 'PatientRegistered').demographics;
    expect(d.contacts[0]).toMatchObject({ name: { family: 'Fullcase', given: ['Frank'] } });
    expect(d.race.map((r) => r.code)).toEqual(['2106-3', '2028-9']);
    expect(d.ethnicity[0]?.alternates[0]?.code).toBe('N');
    expect(d.primaryCareProvider?.name?.family).toBe('Kildare');
    expect(d.addresses[1]?.type).toBe('postal');
    expect(only(events, 'EncounterStarted').admitReason?.code).toBe('R07.9');
    expect(all(events, 'DiagnosisRecorded').map((x) => x.code.code)).toEqual(['I21.4', 'E11.9']);
    expect(only(events, 'AllergyRecorded').criticality).toBe('high');
    expect(only(events, 'CoverageRecorded')).toMatchObject({
      payerName: 'Acme Health Insurance',
      memberId: 'POL-99',
    });
  });
});
