import type { DiagnosticReport, Observation, ServiceRequest, Specimen } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { observationIdFor } from '../events/ids.js';
import { avroTypeOf, codeOf, type ClinicalEvent } from '../events/index.js';
import type { IdentityPolicy } from '../identity/index.js';
import { inputFor, mappedEvents, testContext } from '../../test/support/fhir-mapping.js';
import { hubIdOfResource, mapResource, type MapInput } from './mapping.js';

/** FHIR R4 Observation and DiagnosticReport content the result events carry (issue #18). */

const policy: IdentityPolicy = { enterpriseSystems: ['urn:oid:1.2.3'], authorityAliases: {} };
const ctx = testContext(policy);
const KEY = 'pat-obs-key';
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';

const input = (resource: MapInput['resource'], extra: Partial<MapInput> = {}): MapInput =>
  inputFor(resource, KEY, { id: 'o1', ...extra });

const mapped = (i: MapInput): ClinicalEvent[] => mappedEvents(i, ctx);

function result(i: MapInput) {
  const e = mapped(i).find((x) => x.type === 'ResultReported' || x.type === 'ResultCorrected');
  if (e?.type !== 'ResultReported' && e?.type !== 'ResultCorrected') throw new Error('no result event');
  return e.data;
}

const specimen: Specimen = {
  resourceType: 'Specimen',
  id: 'sp1',
  accessionIdentifier: { system: 'urn:oid:1.2.3.9', value: 'ACC-1' },
  type: {
    coding: [
      { system: 'http://terminology.hl7.org/CodeSystem/v2-0487', code: 'BLD', display: 'Whole blood' },
    ],
  },
  receivedTime: '2026-01-20T09:30:00Z',
  collection: {
    collectedPeriod: { start: '2026-01-20T08:00:00+01:00', end: '2026-01-20T08:05:00+01:00' },
    method: { coding: [{ system: 'http://snomed.info/sct', code: '28520004', display: 'Venipuncture' }] },
    bodySite: {
      coding: [{ system: 'http://snomed.info/sct', code: '368208006', display: 'Left upper arm' }],
    },
  },
};

const glucose: Observation = {
  resourceType: 'Observation',
  status: 'final',
  identifier: [{ system: 'urn:oid:1.2.3.5', value: 'F-100', type: { coding: [{ code: 'FILL' }] } }],
  code: {
    coding: [
      { system: LOINC, code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma', version: '2.77' },
      { system: 'urn:oid:1.2.3.5.99', code: 'GLU', display: 'Glucose (local)' },
    ],
    text: 'Glucose',
  },
  effectiveDateTime: '2026-01-20T08:00:00+01:00',
  valueQuantity: { value: 182, comparator: '>=', unit: 'mg/dL', system: UCUM, code: 'mg/dL' },
  referenceRange: [
    { low: { value: 70, unit: 'mg/dL' }, high: { value: 99, unit: 'mg/dL' }, text: '70-99 mg/dL' },
  ],
  interpretation: [
    { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'H' }] },
    { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'A' }] },
  ],
  note: [{ text: 'Non-fasting sample', authorString: 'Lab', time: '2026-01-20T09:00:00Z' }],
  method: { coding: [{ system: 'http://snomed.info/sct', code: '702873001', display: 'Enzymatic method' }] },
  bodySite: { text: 'left arm' },
  specimen: { reference: '#sp1' },
  contained: [specimen],
};

describe('Observation → ObservationValue', () => {
  it('given a CodeableConcept with two codings and text, when mapped, then the first is primary, the second an alternate with its version, and the text kept', () => {
    // when
    const [line] = result(input(glucose)).observations;
    // then
    expect(line?.code).toEqual({
      system: LOINC,
      code: '2345-7',
      display: 'Glucose [Mass/volume] in Serum or Plasma',
      version: '2.77',
      alternates: [{ system: 'urn:oid:1.2.3.5.99', code: 'GLU', display: 'Glucose (local)', version: null }],
      text: 'Glucose',
    });
  });

  it('given a valueQuantity with comparator and UCUM, when mapped, then value, comparator, unit text and the UCUM coding', () => {
    const [line] = result(input(glucose)).observations;
    expect(line).toMatchObject({
      valueType: 'SN',
      valueNumber: 182,
      valueComparator: '>=',
      unit: 'mg/dL',
      unitCode: codeOf(UCUM, 'mg/dL'),
    });
  });

  it('given a reference range with low, high and text, and two interpretations, when mapped, then bounds, text and every interpretation', () => {
    const [line] = result(input(glucose)).observations;
    expect(line).toMatchObject({ referenceRange: '70-99 mg/dL', referenceLow: 70, referenceHigh: 99 });
    expect(line?.interpretations.map((c) => c.code)).toEqual(['H', 'A']);
    expect(line?.interpretation?.code).toBe('H');
  });

  it('given a range with only low and high, when mapped, then the text reads low-high for older readers', () => {
    const o: Observation = { ...glucose, referenceRange: [{ low: { value: 3.5 }, high: { value: 5.1 } }] };
    const [line] = result(input(o)).observations;
    expect(line).toMatchObject({ referenceRange: '3.5-5.1', referenceLow: 3.5, referenceHigh: 5.1 });
  });

  it('given note, method and bodySite, when mapped, then notes with author and time, method and body site', () => {
    const [line] = result(input(glucose)).observations;
    expect(line?.notes).toEqual([
      { text: 'Non-fasting sample', source: 'Lab', type: null, authoredAt: Date.UTC(2026, 0, 20, 9) },
    ]);
    expect(line?.method?.code).toBe('702873001');
    expect(line?.bodySite).toMatchObject({ system: 'urn:hub:text', code: 'left arm', text: 'left arm' });
  });

  it('given a contained specimen, when mapped, then the result carries it (type, method, site, times, accession)', () => {
    expect(result(input(glucose)).specimens).toEqual([
      {
        identifier: { system: 'urn:oid:1.2.3.9', value: 'ACC-1', type: null },
        type: { ...codeOf('http://terminology.hl7.org/CodeSystem/v2-0487', 'BLD', 'Whole blood') },
        collectionMethod: codeOf('http://snomed.info/sct', '28520004', 'Venipuncture'),
        sourceSite: codeOf('http://snomed.info/sct', '368208006', 'Left upper arm'),
        collectedAt: Date.UTC(2026, 0, 20, 7),
        collectedUntil: Date.UTC(2026, 0, 20, 7, 5),
        receivedAt: Date.UTC(2026, 0, 20, 9, 30),
      },
    ]);
  });

  it('given components (blood pressure), when mapped, then each with its code, quantity, unit coding, range and interpretation', () => {
    const bp: Observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: LOINC, code: '85354-9' }] },
      component: [
        {
          code: { coding: [{ system: LOINC, code: '8480-6', display: 'Systolic' }] },
          valueQuantity: { value: 150, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' },
          referenceRange: [{ high: { value: 120 } }],
          interpretation: [{ coding: [{ code: 'H' }] }],
        },
        {
          code: { text: 'Cuff' },
          valueCodeableConcept: { coding: [{ system: 'urn:x', code: 'L' }], text: 'large' },
        },
      ],
    };
    const [line] = result(input(bp)).observations;
    expect(line?.components).toEqual([
      {
        code: codeOf(LOINC, '8480-6', 'Systolic'),
        valueType: 'NM',
        valueNumber: 150,
        valueString: null,
        valueCode: null,
        valueComparator: null,
        unit: 'mmHg',
        unitCode: codeOf(UCUM, 'mm[Hg]'),
        referenceRange: '-120',
        referenceLow: null,
        referenceHigh: 120,
        interpretation: codeOf('urn:hub:unknown-system', 'H'),
      },
      expect.objectContaining({ valueType: 'CWE', valueCode: { ...codeOf('urn:x', 'L'), text: 'large' } }),
    ]);
  });

  it('given a first report and its correction, when mapped, then the value keeps one observationId (the correction says which value it replaces)', () => {
    const first = result(input(glucose));
    const resultId = hubIdOfResource(glucose, 'o1', policy);
    const prev = {
      version: 1,
      contentHash: 'h',
      hubId: resultId,
      patientKey: KEY,
      status: 'final',
      location: null,
    };
    const corrected = result(input({ ...glucose, status: 'corrected' }, { version: 2, previous: prev }));
    const id = observationIdFor(resultId, { system: LOINC, code: '2345-7' }, null);
    expect(first.observations[0]?.observationId).toBe(id);
    expect(corrected.observations[0]?.observationId).toBe(id);
  });
});

const obs = (code: string, value: number): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: LOINC, code }] },
  valueQuantity: { value, unit: 'mmol/L', system: UCUM, code: 'mmol/L' },
});

const report: DiagnosticReport = {
  resourceType: 'DiagnosticReport',
  status: 'final',
  identifier: [{ system: 'urn:oid:1.2.3.5', value: 'F-200', type: { coding: [{ code: 'FILL' }] } }],
  basedOn: [
    {
      reference: 'ServiceRequest/sr1',
      identifier: { system: 'urn:oid:1.2.3.4', value: 'P-1', type: { coding: [{ code: 'PLAC' }] } },
    },
  ],
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB' }] }],
  code: { coding: [{ system: LOINC, code: '24323-8', display: 'CMP' }] },
  effectiveDateTime: '2026-01-20T08:00:00Z',
  issued: '2026-01-20T10:00:00.123Z',
  specimen: [{ reference: 'Specimen/sp9' }],
  result: [{ reference: 'urn:uuid:a' }, { reference: 'urn:uuid:b' }, { reference: 'urn:uuid:c' }],
};

describe('DiagnosticReport → one result with its observations', () => {
  const order: ServiceRequest = {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    subject: { reference: 'Patient/p' },
    code: { coding: [{ system: LOINC, code: '24322-0', display: 'CMP order' }] },
  };
  const extra: Partial<MapInput> = {
    resultObservations: [obs('2951-2', 140), obs('2823-3', 4.1), obs('2823-3', 4.3)],
    order,
    orderId: 'ord-x',
    related: new Map([['Specimen/sp9', { ...specimen, id: 'sp9' }]]),
  };

  it('given a report with three observations, when mapped, then one ResultReported with three lines, each with its own observationId', () => {
    const events = mapped(input(report, extra));
    expect(events.map((e) => e.type)).toEqual(['ResultReported']);
    const r = result(input(report, extra));
    expect(r.observations.map((o) => [o.sequence, o.code.code, o.valueNumber])).toEqual([
      [1, '2951-2', 140],
      [2, '2823-3', 4.1],
      [3, '2823-3', 4.3],
    ]);
    expect(new Set(r.observations.map((o) => o.observationId)).size).toBe(3);
  });

  it('given category, basedOn, issued and specimen, when mapped, then category, order numbers, order code, issued and the specimen', () => {
    const r = result(input(report, extra));
    expect(r).toMatchObject({
      category: 'laboratory',
      orderId: 'ord-x',
      issuedAt: Date.UTC(2026, 0, 20, 10, 0, 0, 123),
      placerOrderNumber: { system: 'urn:oid:1.2.3.4', value: 'P-1', type: 'PLAC' },
      fillerOrderNumber: { system: 'urn:oid:1.2.3.5', value: 'F-200', type: 'FILL' },
      orderCode: codeOf(LOINC, '24322-0', 'CMP order'),
      notes: [],
    });
    expect(r.specimens.map((s) => s.identifier?.value)).toEqual(['ACC-1']);
  });

  it('given an Observation a report of the same request lists, when mapped, then no event of its own', () => {
    const r = mapResource(input(obs('2951-2', 140), { partOfReport: true }), ctx);
    expect(r).toMatchObject({ ok: true, events: [] });
  });
});

describe('Observation property: generated content survives map → Avro encode → decode unchanged', () => {
  const text = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s.trim() === s && s.trim() !== '');
  const coding = fc.record({
    system: fc.constantFrom(LOINC, 'http://snomed.info/sct', 'urn:oid:1.2.3.5.99'),
    code: fc.stringMatching(/^[A-Za-z0-9-]{1,8}$/),
    display: fc.option(text, { nil: undefined }),
    version: fc.option(fc.constantFrom('2.77', '2024-03'), { nil: undefined }),
  });
  const concept = fc.record({
    coding: fc.array(coding, { minLength: 1, maxLength: 3 }),
    text: fc.option(text, { nil: undefined }),
  });
  const quantity = fc.record({
    // -0 is the decimal 0 (FHIR decimals have no signed zero); the value is carried as 0.
    value: fc
      .double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true })
      .map((v) => (v === 0 ? 0 : v)),
    comparator: fc.option(fc.constantFrom<('<' | '<=' | '>=' | '>')[]>('<', '<=', '>=', '>'), {
      nil: undefined,
    }),
    unit: text,
    system: fc.constant(UCUM),
    code: fc.constantFrom('mg/dL', 'mmol/L', '10*9/L', '%', 'mm[Hg]'),
  });
  const bound = fc.option(fc.record({ value: fc.integer({ min: -1000, max: 1000 }) }), { nil: undefined });
  const generated = fc.record({
    code: concept,
    valueQuantity: quantity,
    interpretation: fc.array(concept, { maxLength: 3 }),
    note: fc.array(fc.record({ text, authorString: fc.option(text, { nil: undefined }) }), { maxLength: 3 }),
    referenceRange: fc.array(
      fc.record({ low: bound, high: bound, text: fc.option(text, { nil: undefined }) }),
      { maxLength: 1 },
    ),
  });

  it('given generated quantities, codings, notes and ranges, when mapped and encoded, then every field arrives as sent', () => {
    fc.assert(
      fc.property(generated, (g) => {
        // given
        const o = JSON.parse(
          JSON.stringify({ resourceType: 'Observation', status: 'final', ...g }),
        ) as Observation;
        // when
        const [e] = mapped(input(o));
        if (e?.type !== 'ResultReported') throw new Error('no result');
        const t = avroTypeOf(e.type);
        const back = t.fromBuffer(t.toBuffer(e.data)) as typeof e.data;
        const line = back.observations[0];
        // then
        const q = g.valueQuantity;
        expect(line).toMatchObject({
          valueNumber: q.value,
          valueComparator: q.comparator ?? null,
          unit: q.unit,
        });
        expect(line?.unitCode).toMatchObject({ system: UCUM, code: q.code });
        const codings = [line!.code, ...line!.code.alternates].map((c) => [
          c.system,
          c.code,
          c.display,
          c.version,
        ]);
        expect(codings).toEqual(
          g.code.coding.map((c) => [c.system, c.code, c.display ?? null, c.version ?? null]),
        );
        expect(line?.code.text).toBe(g.code.text ?? null);
        expect(line?.interpretations.map((c) => c.code)).toEqual(
          g.interpretation.map((c) => c.coding[0]!.code),
        );
        expect(line?.notes.map((n) => [n.text, n.source])).toEqual(
          g.note.map((n) => [n.text, n.authorString ?? null]),
        );
        const rr = g.referenceRange[0];
        expect(line?.referenceLow).toBe(rr?.low?.value ?? null);
        expect(line?.referenceHigh).toBe(rr?.high?.value ?? null);
        if (rr?.text) expect(line?.referenceRange).toBe(rr.text);
        expect(back).toEqual(e.data);
      }),
      { numRuns: 60 },
    );
  });
});
