import { describe, expect, it } from 'vitest';
import { observationIdFor } from '../events/ids.js';
import {
  codeOf,
  invalidPaths,
  type ClinicalEvent,
  type EventType,
  type EventTypeMap,
} from '../events/index.js';
import { DEFAULT_IDENTITY_POLICY } from '../identity/index.js';
import { LOINC, TEXT_SYSTEM, UCUM, V2_TABLE } from '../terminology/code-systems.js';
import { mapHl7Message } from './map.js';
import { referenceBounds } from './map-observation.js';
import { textConcept } from './scope.js';
import type { MapContext } from './types.js';

const ctx: MapContext = {
  recordedAt: 1_710_000_000_000,
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: null,
  timeZone: 'UTC',
};
const utc = (iso: string) => Date.parse(iso);

function map(segments: string[]): ClinicalEvent[] {
  const out = mapHl7Message(Buffer.from([...segments, ''].join('\r'), 'latin1'), ctx);
  if (out.kind !== 'mapped') throw new Error(`refused: ${out.refusal.error.message}`);
  for (const e of out.events) expect(invalidPaths(e.type, e.data)).toEqual([]);
  return out.events;
}

function one<K extends EventType>(events: ClinicalEvent[], type: K): EventTypeMap[K] {
  const hits = events.filter((e) => e.type === type);
  expect(hits).toHaveLength(1);
  return hits[0]!.data as EventTypeMap[K];
}

const MSH = (type: string, version = '2.5.1', id = 'M1') =>
  `MSH|^~\\&|LIS|LAB|HUB|HUB|20240301120000||${type}|${id}|P|${version}`;
const PID = 'PID|1||MRN1^^^HOSP^MR||Doe^Jane||19800215|F';
const ORC_RE = 'ORC|RE|PO1^CPOE|F1^LIS';
/** A segment from its fields by number, so the tests say which field carries what. */
function seg(name: string, fields: Record<number, string>): string {
  const last = Math.max(...Object.keys(fields).map(Number));
  return [name, ...Array.from({ length: last }, (_, i) => fields[i + 1] ?? '')].join('|');
}
const OBR = (status = 'F', obr15 = '') =>
  seg('OBR', {
    1: '1',
    2: 'PO1^CPOE',
    3: 'F1^LIS',
    4: '24323-8^Metabolic panel^LN',
    7: '20240301100000',
    15: obr15,
    22: '20240301110000',
    24: 'CH',
    25: status,
  });
/** An OBX with value type, code, value and status F; `more` for the other fields. */
const OBX = (type: string, code: string, value: string, more: Record<number, string> = {}) =>
  seg('OBX', { 1: '1', 2: type, 3: code, 5: value, 11: 'F', ...more });

describe('ORU coded values (CWE: every coding, versions, original text)', () => {
  it('given OBX-3 with LOINC, a local alternate and a second alternate (v2.7), when mapped, then all codings, versions and text travel', () => {
    // given
    const events = map([
      MSH('ORU^R01^ORU_R01', '2.7'),
      PID,
      ORC_RE,
      OBR(),
      OBX('NM', '2345-7^Glucose^LN^GLU^Glucose serum^99LAB^2.68^1.0^Blood sugar^G1^Gluc^L', '5.4'),
    ]);
    // then
    const o = one(events, 'ResultReported').observations[0]!;
    expect(o.code).toEqual({
      system: LOINC,
      code: '2345-7',
      display: 'Glucose',
      version: '2.68',
      alternates: [
        { system: 'urn:hl7:codesystem:99LAB', code: 'GLU', display: 'Glucose serum', version: '1.0' },
        { system: 'urn:hl7:codesystem:L', code: 'G1', display: 'Gluc', version: null },
      ],
      text: 'Blood sugar',
    });
  });

  it('given a CWE with only the alternate triplet, when mapped, then the alternate is the primary coding', () => {
    const events = map([
      MSH('ORU^R01^ORU_R01'),
      PID,
      ORC_RE,
      OBR(),
      OBX('NM', '^^^GLU^Glucose^99LAB', '5.4'),
    ]);
    expect(one(events, 'ResultReported').observations[0]!.code).toEqual(
      codeOf('urn:hl7:codesystem:99LAB', 'GLU', 'Glucose'),
    );
  });

  it('given a CWE with a system OID (CWE-14) and no name, when mapped, then the system is urn:oid', () => {
    const events = map([
      MSH('ORU^R01^ORU_R01', '2.7'),
      PID,
      ORC_RE,
      OBR(),
      OBX('NM', '2345-7^Glucose^^^^^^^^^^^^2.16.840.1.113883.6.1', '5.4'),
    ]);
    expect(one(events, 'ResultReported').observations[0]!.code.system).toBe('urn:oid:2.16.840.1.113883.6.1');
  });

  it('given a coded answer (OBX-5 CWE) sent as text only, when mapped, then a text-only concept keeps the text', () => {
    const events = map([
      MSH('ORU^R01^ORU_R01', '2.7'),
      PID,
      ORC_RE,
      OBR(),
      OBX('CWE', '5778-6^Color^LN', '^^^^^^^^Straw coloured'),
    ]);
    const o = one(events, 'ResultReported').observations[0]!;
    expect(o.valueCode).toEqual({
      system: TEXT_SYSTEM,
      code: 'Straw coloured',
      display: 'Straw coloured',
      version: null,
      alternates: [],
      text: 'Straw coloured',
    });
    expect(o.valueString).toBe('Straw coloured');
  });
});

describe('ORU observation facts (OBX-4/6/7/8/11/17/20)', () => {
  const oru = (obx: string[], id = 'M1') =>
    one(map([MSH('ORU^R01^ORU_R01', '2.5.1', id), PID, ORC_RE, OBR(), ...obx]), 'ResultReported');

  it('given OBX-4, OBX-6 with UCUM, OBX-7, several OBX-8 flags, OBX-17 and OBX-20, when mapped, then each has its field', () => {
    // given / when
    const o = oru([
      OBX('NM', '2345-7^Glucose^LN', '12.1', {
        4: '2',
        6: 'mmol/L^millimole per liter^UCUM',
        7: '3.5-5.0',
        8: 'HH~A',
        14: '20240301100500',
        17: 'VEN^Venous^99METH',
        20: 'LA^Left arm^HL70163',
      }),
    ]).observations[0]!;
    // then
    expect(o).toMatchObject({
      subId: '2',
      unit: 'millimole per liter',
      unitCode: codeOf(UCUM, 'mmol/L', 'millimole per liter'),
      referenceRange: '3.5-5.0',
      referenceLow: 3.5,
      referenceHigh: 5,
      interpretation: codeOf(V2_TABLE('0078'), 'HH'),
      interpretations: [codeOf(V2_TABLE('0078'), 'HH'), codeOf(V2_TABLE('0078'), 'A')],
      method: codeOf('urn:hl7:codesystem:99METH', 'VEN', 'Venous'),
      bodySite: codeOf(V2_TABLE('0163'), 'LA', 'Left arm'),
      observedAt: utc('2024-03-01T10:05:00Z'),
    });
  });

  it('given OBX-6 with a local unit (no system), when mapped, then unitCode is local to the sender, never UCUM', () => {
    const o = oru([OBX('NM', '2345-7^Glucose^LN', '5', { 6: 'mg/dl' })]).observations[0]!;
    expect(o.unit).toBe('mg/dl');
    expect(o.unitCode).toEqual(codeOf('urn:hl7:local:LIS', 'mg/dl'));
  });

  it('given numeric and non-numeric reference ranges, when read, then bounds only where numeric', () => {
    expect(referenceBounds('3.5-5.0')).toEqual({ low: 3.5, high: 5 });
    expect(referenceBounds('3.5 - 5.0')).toEqual({ low: 3.5, high: 5 });
    expect(referenceBounds('-1--0.5')).toEqual({ low: -1, high: -0.5 });
    expect(referenceBounds('<5')).toEqual({ low: null, high: 5 });
    expect(referenceBounds('<=5')).toEqual({ low: null, high: 5 });
    expect(referenceBounds('>10')).toEqual({ low: 10, high: null });
    expect(referenceBounds('>= .5')).toEqual({ low: 0.5, high: null });
    expect(referenceBounds('negative')).toEqual({ low: null, high: null });
    expect(referenceBounds('10-5')).toEqual({ low: null, high: null });
    expect(referenceBounds('')).toEqual({ low: null, high: null });
  });

  it('given a preliminary and a corrected (OBX-11 C) report of the same line, when mapped, then the correction has the same observationId', () => {
    // given
    const p = oru([OBX('NM', '2345-7^Glucose^LN', '182', { 4: '1', 11: 'P' })], 'M1');
    const cEvents = map([
      MSH('ORU^R01^ORU_R01', '2.5.1', 'M2'),
      PID,
      ORC_RE,
      OBR('C'),
      OBX('NM', '2345-7^Glucose^LN', '128', { 4: '1', 11: 'C' }),
    ]);
    const c = one(cEvents, 'ResultCorrected');
    // then
    expect(c.resultId).toBe(p.resultId);
    expect(c.observations[0]!.observationId).toBe(p.observations[0]!.observationId);
    expect(c.observations[0]!.observationId).toBe(
      observationIdFor(p.resultId, { system: LOINC, code: '2345-7' }, '1'),
    );
  });

  it('given two lines with one code and different sub-ids, when mapped, then two observation ids', () => {
    const r = oru([
      OBX('ST', '600-7^Organism^LN', 'E. coli', { 4: '1' }),
      OBX('ST', '600-7^Organism^LN', 'S. aureus', { 1: '2', 4: '2' }),
    ]);
    expect(r.observations.map((o) => o.subId)).toEqual(['1', '2']);
    expect(r.observations[0]!.observationId).not.toBe(r.observations[1]!.observationId);
  });
});

describe('ORU notes (NTE per OBR, per OBX) and specimens (SPM, OBR-15)', () => {
  it('given NTE after ORC, after OBR and after each OBX, when mapped, then report notes and observation notes, reportText untouched', () => {
    // given
    const events = map([
      MSH('ORU^R01^ORU_R01', '2.6'),
      PID,
      ORC_RE,
      'NTE|1|P|Order comment',
      OBR(),
      'NTE|2|L|Line one~Line two|RE^Remark^HL70364||20240301101530',
      OBX('NM', '2345-7^Glucose^LN', '5.4'),
      OBX('NM', '2160-0^Creatinine^LN', '80', { 1: '2' }),
      'NTE|1|L|Hemolysed',
      'NTE|2|L|Repeat advised',
    ]);
    const r = one(events, 'ResultReported');
    // then
    expect(r.notes).toEqual([
      { text: 'Order comment', source: 'P', type: null, authoredAt: null },
      {
        text: 'Line one\nLine two',
        source: 'L',
        type: codeOf(V2_TABLE('0364'), 'RE', 'Remark'),
        authoredAt: utc('2024-03-01T10:15:30Z'),
      },
    ]);
    expect(r.observations[0]!.notes).toEqual([]);
    expect(r.observations[1]!.notes.map((n) => n.text)).toEqual(['Hemolysed', 'Repeat advised']);
    expect(r.reportText).toBeNull();
    // and the note's time keeps its precision
    expect(r.meta.sourceTimes).toContainEqual({
      field: 'notes[1].authoredAt',
      precision: 'second',
      offsetMinutes: 0,
      zoned: true,
    });
  });

  it('given an SPM (v2.5), when mapped, then the specimen: id, type, method, site, collection range and receipt', () => {
    const events = map([
      MSH('ORU^R01^ORU_R01'),
      PID,
      ORC_RE,
      OBR(),
      OBX('NM', '2345-7^Glucose^LN', '5.4'),
      seg('SPM', {
        1: '1',
        2: 'SP1&CPOE^FS1&LIS',
        4: 'BLD^Whole blood^HL70487',
        7: 'VENIP^Venipuncture^HL70488',
        8: 'LACF^Left antecubital fossa^HL70163',
        17: '202403010955^202403011000',
        18: '202403011030',
      }),
    ]);
    const r = one(events, 'ResultReported');
    expect(r.specimens).toEqual([
      {
        identifier: { system: 'urn:hl7:authority:LIS', value: 'FS1', type: null },
        type: codeOf(V2_TABLE('0487'), 'BLD', 'Whole blood'),
        collectionMethod: codeOf(V2_TABLE('0488'), 'VENIP', 'Venipuncture'),
        sourceSite: codeOf(V2_TABLE('0163'), 'LACF', 'Left antecubital fossa'),
        collectedAt: utc('2024-03-01T09:55:00Z'),
        collectedUntil: utc('2024-03-01T10:00:00Z'),
        receivedAt: utc('2024-03-01T10:30:00Z'),
      },
    ]);
    expect(r.meta.sourceTimes.map((t) => t.field)).toEqual(
      expect.arrayContaining([
        'specimens[0].collectedAt',
        'specimens[0].collectedUntil',
        'specimens[0].receivedAt',
      ]),
    );
    expect(r.placerOrderNumber?.value).toBe('PO1');
    expect(r.fillerOrderNumber?.value).toBe('F1');
  });

  it('given a v2.3 ORU with OBR-15 and no SPM, when mapped, then one specimen from OBR-15 with OBR-7 as collection time', () => {
    const events = map([
      MSH('ORU^R01', '2.3'),
      PID,
      ORC_RE,
      OBR('F', 'BLD&Blood&HL70070^^Venipuncture^LA&Left arm&HL70163'),
      OBX('NM', '2345-7^Glucose^LN', '5.4'),
    ]);
    expect(one(events, 'ResultReported').specimens).toEqual([
      {
        identifier: null,
        type: codeOf(V2_TABLE('0070'), 'BLD', 'Blood'),
        collectionMethod: textConcept('Venipuncture'),
        sourceSite: codeOf(V2_TABLE('0163'), 'LA', 'Left arm'),
        collectedAt: utc('2024-03-01T10:00:00Z'),
        collectedUntil: null,
        receivedAt: null,
      },
    ]);
  });
});

describe('ORM/OML order facts', () => {
  it('given an ORM NW with ORC-4, ORC-5, ORC-12/14, OBR-31, OBR-15 and NTEs, when mapped, then OrderPlaced carries them', () => {
    // given
    const events = map([
      MSH('ORM^O01^ORM_O01'),
      PID,
      seg('ORC', {
        1: 'NW',
        2: 'PO9^CPOE',
        4: 'PG1^CPOE',
        5: 'SC',
        9: '20240301090000',
        12: '1234^Welby^Marcus^^^Dr^^^NPI',
        14: '^WPN^PH^^^555^1234567',
      }),
      'NTE|1|P|Fasting sample',
      seg('OBR', {
        1: '1',
        2: 'PO9^CPOE',
        4: '24323-8^Metabolic panel^LN',
        15: 'BLD&Blood&HL70070',
        31: 'R73.09^Abnormal glucose^I10C~^^^^^^^^Check diabetes',
      }),
      'NTE|2|P|Call on critical values',
      OBX('ST', 'ASK1^Fasting?^99Q', 'Yes'),
      'NTE|1|P|Ask-at-order-entry comment',
    ]);
    const o = one(events, 'OrderPlaced');
    // then
    expect(o.placerGroupNumber).toEqual({ system: 'urn:hl7:authority:CPOE', value: 'PG1', type: null });
    expect(o.orderStatus).toBe('active');
    expect(o.orderingProvider).toMatchObject({
      id: { value: '1234' },
      name: { family: 'Welby', given: ['Marcus'], prefix: 'Dr' },
      telecom: [
        {
          system: 'phone',
          value: '555 1234567',
          use: 'work',
          part: null,
        },
      ],
    });
    expect(o.reasons).toEqual([
      codeOf('http://hl7.org/fhir/sid/icd-10-cm', 'R73.09', 'Abnormal glucose'),
      textConcept('Check diabetes'),
    ]);
    expect(o.notes.map((n) => n.text)).toEqual(['Fasting sample', 'Call on critical values']);
    expect(o.specimens.map((s) => s.type?.code)).toEqual(['BLD']);
  });

  it('given an OML^O21 with an SPM, when mapped, then the order carries the specimen', () => {
    const events = map([
      MSH('OML^O21^OML_O21'),
      PID,
      seg('ORC', { 1: 'NW', 2: 'PO10^CPOE', 9: '20240301090000' }),
      'OBR|1|PO10^CPOE||58410-2^CBC^LN',
      seg('SPM', { 1: '1', 2: 'SP10&CPOE', 4: 'BLD^Whole blood^HL70487', 17: '202403010900' }),
    ]);
    const o = one(events, 'OrderPlaced');
    expect(o.specimens).toHaveLength(1);
    expect(o.specimens[0]).toMatchObject({
      identifier: { value: 'SP10' },
      type: codeOf(V2_TABLE('0487'), 'BLD', 'Whole blood'),
      collectedAt: utc('2024-03-01T09:00:00Z'),
    });
    expect(o.orderStatus).toBeNull();
  });

  it('given an ORM SC with a filler number, OBR-25 and a note, when mapped, then OrderStatusChanged carries them', () => {
    const events = map([
      MSH('ORM^O01^ORM_O01'),
      PID,
      seg('ORC', { 1: 'SC', 2: 'PO9^CPOE', 3: 'F9^LIS', 5: 'CM', 9: '20240301130000' }),
      seg('OBR', { 1: '1', 2: 'PO9^CPOE', 3: 'F9^LIS', 4: '24323-8^Metabolic panel^LN', 25: 'F' }),
      'NTE|1|L|Resulted',
    ]);
    const sc = one(events, 'OrderStatusChanged');
    expect(sc).toMatchObject({
      status: 'completed',
      fillerStatus: 'CM',
      placerOrderNumber: { value: 'PO9' },
      fillerOrderNumber: { value: 'F9' },
      resultStatus: 'final',
    });
    expect(sc.notes.map((n) => n.text)).toEqual(['Resulted']);
  });

  it('given an ORM CA, when mapped, then OrderCancelled carries placer and filler numbers', () => {
    const events = map([
      MSH('ORM^O01^ORM_O01'),
      PID,
      seg('ORC', { 1: 'CA', 2: 'PO9^CPOE', 3: 'F9^LIS', 9: '20240301130000' }),
    ]);
    const ca = one(events, 'OrderCancelled');
    expect(ca.placerOrderNumber?.value).toBe('PO9');
    expect(ca.fillerOrderNumber?.value).toBe('F9');
  });
});
