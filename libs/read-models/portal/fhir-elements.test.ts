import { describe, expect, it } from 'vitest';
import type { ClinicalEvent, Code, ObservationValue, Practitioner, Specimen } from '../../events/index.js';
import { codeOf } from '../../events/index.js';
import { evolveAll } from '../../../test/support/read-model-testing.js';
import {
  admitted,
  at,
  discharged,
  obs,
  ordered,
  registered,
  resulted,
  transferred,
} from '../../../test/support/hospital-day.js';
import { V2_TABLE, UCUM } from '../../terminology/code-systems.js';
import { toFhirConcept, V3, type V2TableId } from '../../terminology/v2-fhir.js';
import { concept } from './resources.js';
import { evolve, type PortalTables } from './domain.js';

const run = (...events: ClinicalEvent[]) => evolveAll<PortalTables>(evolve, events);

const dr: Practitioner = {
  id: { system: 'urn:genhosp:staff', value: 'D123', type: null },
  name: { family: 'House', given: ['Greg'], prefix: 'Dr', suffix: null, use: null },
  telecom: [],
};
const drWho: Practitioner = {
  id: { system: 'urn:genhosp:staff', value: 'D456', type: null },
  name: { family: 'Who', given: ['John'], prefix: null, suffix: null, use: null },
  telecom: [],
};
const blood: Specimen = {
  identifier: { system: 'urn:genhosp:specimen', value: 'S-1', type: null },
  type: codeOf('http://snomed.info/sct', '119297000', 'Blood specimen'),
  collectionMethod: null,
  sourceSite: codeOf('http://snomed.info/sct', '368208006', 'Left upper arm'),
  collectedAt: at(8),
  collectedUntil: null,
  receivedAt: at(8, 30),
};
const note = (text: string, source: string | null = 'L') => ({ text, source, type: null, authoredAt: null });

/** A glucose value as HL7 sends it now: LOINC + local code, UCUM unit, H flag, bounds, a note. */
function glucose(over: Partial<ObservationValue> = {}): ObservationValue {
  const code: Code = {
    ...codeOf('http://loinc.org', '2345-7', 'Glucose'),
    alternates: [
      { system: 'urn:hl7:codesystem:99LAB', code: 'GLU', display: 'Glucose local', version: null },
    ],
  };
  return {
    ...obs('2345-7', 'Glucose', 182, 'mg/dL', null, 'final'),
    code,
    sequence: 2,
    observationId: 'obs-glu',
    unitCode: codeOf(UCUM, 'mg/dL', 'mg/dL'),
    referenceRange: '70-99',
    referenceLow: 70,
    referenceHigh: 99,
    interpretation: codeOf(V2_TABLE('0078'), 'H', 'High'),
    interpretations: [codeOf(V2_TABLE('0078'), 'H', 'High')],
    notes: [note('Patient was not fasting')],
    method: codeOf('urn:hl7:codesystem:99LAB', 'HEX', 'Hexokinase'),
    bodySite: null,
    ...over,
  };
}

function withReport(e: ClinicalEvent, over: Record<string, unknown>): ClinicalEvent {
  return { ...e, data: { ...e.data, ...over } } as ClinicalEvent;
}

describe('portal Observation elements', () => {
  const report = withReport(
    resulted('P1', 'R1', 'O1', 'E1', 'bmp', 'final', 'm1', at(10), [
      obs('2951-2', 'Sodium', 140, 'mmol/L', null, 'final'),
      glucose(),
    ]),
    { specimens: [blood] },
  );

  it('given a value with a UCUM unit, then valueQuantity has value, unit, system and code', () => {
    const o = run(report).get('observations', 'obs-glu')!.resource;
    expect(o.valueQuantity).toEqual({ value: 182, unit: 'mg/dL', system: UCUM, code: 'mg/dL' });
  });

  it('given a LOINC code with a local alternate, then both codings are in Observation.code', () => {
    const o = run(report).get('observations', 'obs-glu')!.resource;
    expect(o.code.coding).toEqual([
      { system: 'http://loinc.org', code: '2345-7', display: 'Glucose' },
      { system: 'urn:hl7:codesystem:99LAB', code: 'GLU', display: 'Glucose local' },
    ]);
  });

  it('given an H flag in v2-0078, then interpretation is v3 ObservationInterpretation first, v2 second', () => {
    const o = run(report).get('observations', 'obs-glu')!.resource;
    expect(o.interpretation?.[0]?.coding?.map((c) => c.system)).toEqual([
      V3('ObservationInterpretation'),
      V2_TABLE('0078'),
    ]);
  });

  it('given numeric bounds, then referenceRange has low/high in the value unit and the text as sent', () => {
    const o = run(report).get('observations', 'obs-glu')!.resource;
    expect(o.referenceRange).toEqual([
      {
        low: { value: 70, unit: 'mg/dL', system: UCUM, code: 'mg/dL' },
        high: { value: 99, unit: 'mg/dL', system: UCUM, code: 'mg/dL' },
        text: '70-99',
      },
    ]);
  });

  it('given a note after the OBX, then it is an Annotation of that observation only', () => {
    const d = run(report);
    expect(d.get('observations', 'obs-glu')!.resource.note).toEqual([
      { authorString: 'Ancillary (filler) department', text: 'Patient was not fasting' },
    ]);
    expect(d.get('observations', 'R1-1')!.resource.note).toBeUndefined();
  });

  it('given a method and a report specimen, then method and a contained specimen that the reference resolves to', () => {
    const o = run(report).get('observations', 'obs-glu')!.resource;
    expect(o.method?.coding?.[0]?.code).toBe('HEX');
    expect(o.specimen).toEqual({ reference: '#spec-1' });
    expect(o.contained?.[0]).toMatchObject({ resourceType: 'Specimen', id: 'spec-1' });
  });

  it('given an observation without its own time, then the report effective time is its effectiveDateTime', () => {
    const d = run(report);
    const effective = d.get('reports', 'R1')!.resource.effectiveDateTime;
    expect(effective).toBeDefined();
    expect(d.get('observations', 'obs-glu')!.resource.effectiveDateTime).toBe(effective);
    expect(d.get('observations', 'obs-glu')!.date_at).toBe(at(10) - 600_000);
  });

  it('given components, then component[] carries code, value and interpretation', () => {
    const bp = glucose({
      observationId: 'obs-bp',
      valueNumber: null,
      valueType: 'NM',
      unit: null,
      unitCode: null,
      referenceRange: null,
      referenceLow: null,
      referenceHigh: null,
      interpretation: null,
      interpretations: [],
      components: [
        {
          code: codeOf('http://loinc.org', '8480-6', 'Systolic'),
          valueType: 'NM',
          valueNumber: 150,
          valueString: null,
          valueCode: null,
          valueComparator: null,
          unit: 'mm[Hg]',
          unitCode: codeOf(UCUM, 'mm[Hg]'),
          referenceRange: null,
          referenceLow: null,
          referenceHigh: 120,
          interpretation: codeOf(V2_TABLE('0078'), 'H'),
        },
      ],
    });
    const o = run(resulted('P1', 'R2', null, null, 'bmp', 'final', 'm2', at(10), [bp])).get(
      'observations',
      'obs-bp',
    )!.resource;
    expect(o.component).toEqual([
      {
        code: { coding: [{ system: 'http://loinc.org', code: '8480-6', display: 'Systolic' }] },
        valueQuantity: { value: 150, unit: 'mm[Hg]', system: UCUM, code: 'mm[Hg]' },
        interpretation: [
          {
            coding: [
              { system: V3('ObservationInterpretation'), code: 'H', display: 'High' },
              { system: V2_TABLE('0078'), code: 'H' },
            ],
          },
        ],
        referenceRange: [{ high: { value: 120, unit: 'mm[Hg]', system: UCUM, code: 'mm[Hg]' } }],
      },
    ]);
  });

  it('given a correction with the same observationId, then it replaces the value (one observation)', () => {
    const corrected = resulted('P1', 'R1', 'O1', 'E1', 'bmp', 'corrected', 'm3', at(11), [
      glucose({ valueNumber: 90, status: 'corrected', interpretation: null, interpretations: [] }),
    ]);
    for (const d of [run(report, corrected), run(corrected, report)]) {
      expect(d.get('observations', 'obs-glu')!.resource.valueQuantity?.value).toBe(90);
      expect(d.get('reports', 'R1')!.resource.result).toEqual([{ reference: 'Observation/obs-glu' }]);
    }
  });

  it('given an old event (no observationId), then the id is report id and OBX-1 as before', () => {
    expect(run(report).get('observations', 'R1-1')).toBeDefined();
  });
});

describe('portal DiagnosticReport and ServiceRequest elements', () => {
  it('given report notes and text, then conclusion holds the text then each note', () => {
    const r = withReport(
      resulted('P1', 'R1', null, null, 'xrchest', 'final', 'm1', at(10), [], 'No acute findings.'),
      { notes: [note('Compared with 2025 study.', 'P')] },
    );
    expect(run(r).get('reports', 'R1')!.resource.conclusion).toBe(
      'No acute findings.\n\nCompared with 2025 study.',
    );
  });

  it('given a report of an order never placed here, then basedOn resolves to a stub ServiceRequest with its numbers', () => {
    const r = withReport(resulted('P1', 'R1', 'O9', null, 'cbc', 'final', 'm1', at(10), []), {
      placerOrderNumber: { system: 'urn:genhosp:placer', value: 'O9', type: null },
      fillerOrderNumber: { system: 'urn:lab:filler', value: 'F9', type: null },
      specimens: [blood],
      performer: dr,
    });
    const d = run(r);
    const rep = d.get('reports', 'R1')!.resource;
    expect(rep.basedOn).toEqual([{ reference: 'ServiceRequest/O9' }]);
    expect(rep.category).toEqual([
      { coding: [{ system: V2_TABLE('0074'), code: 'LAB', display: 'Laboratory' }] },
    ]);
    expect(rep.identifier).toEqual([
      {
        type: { coding: [{ system: V2_TABLE('0203'), code: 'FILL' }] },
        system: 'urn:lab:filler',
        value: 'F9',
      },
    ]);
    expect(rep.specimen).toEqual([{ reference: '#spec-1' }]);
    expect(rep.contained?.[0]).toMatchObject({
      resourceType: 'Specimen',
      type: { coding: [{ code: '119297000' }] },
      collection: { bodySite: { coding: [{ code: '368208006' }] } },
    });
    expect(rep.performer).toEqual([
      { identifier: { system: 'urn:genhosp:staff', value: 'D123' }, display: 'Dr Greg House' },
    ]);
    const sr = d.get('service_requests', 'O9')!.resource;
    expect(sr).toMatchObject({ status: 'unknown', code: { coding: [{ code: '58410-2' }] } });
    expect(sr.identifier?.map((i) => i.type?.coding?.[0]?.code)).toEqual(['PLAC', 'FILL']);
  });

  it('given the order placed after its report, then the placement replaces the stub', () => {
    const r = resulted('P1', 'R1', 'O1', null, 'cbc', 'final', 'm1', at(10), []);
    const o = ordered('P1', 'O1', null, 'cbc', 'routine', 'o1', at(8));
    expect(run(r, o).get('service_requests', 'O1')!.resource).toEqual(
      run(o).get('service_requests', 'O1')!.resource,
    );
  });

  it('given an order with group number, specimen, note, reason and requester, then each is on the ServiceRequest', () => {
    const o = withReport(ordered('P1', 'O1', null, 'cbc', 'routine', 'o1', at(8)), {
      placerGroupNumber: { system: 'urn:genhosp:group', value: 'G1', type: null },
      specimens: [blood],
      notes: [note('Draw after dialysis', 'P')],
      reasons: [codeOf('http://hl7.org/fhir/sid/icd-10-cm', 'D64.9', 'Anemia')],
      orderingProvider: dr,
    });
    const sr = run(o).get('service_requests', 'O1')!.resource;
    expect(sr.requisition).toEqual({
      system: 'urn:genhosp:group',
      value: 'G1',
    });
    expect(sr.identifier).toEqual([
      {
        type: { coding: [{ system: V2_TABLE('0203'), code: 'PLAC' }] },
        system: 'urn:genhosp:placer',
        value: 'O1',
      },
    ]);
    expect(sr.specimen).toEqual([{ reference: '#spec-1' }]);
    expect(sr.note).toEqual([{ authorString: 'Orderer (placer)', text: 'Draw after dialysis' }]);
    expect(sr.reasonCode?.[0]?.coding?.[0]?.code).toBe('D64.9');
    expect(sr.requester?.display).toBe('Dr Greg House');
  });

  it('given a status change with the filler number and final results, then the order is completed with both numbers', () => {
    const o = ordered('P1', 'O1', null, 'cbc', 'routine', 'o1', at(8));
    const changed: ClinicalEvent = {
      type: 'OrderStatusChanged',
      data: {
        meta: {
          ...o.data.meta,
          eventId: '00000000-0000-4000-8000-000000000001',
          eventType: 'OrderStatusChanged',
        },
        patientId: 'P1',
        orderId: 'O1',
        status: 'active',
        fillerStatus: 'CM',
        changedAt: at(12),
        placerOrderNumber: null,
        fillerOrderNumber: { system: 'urn:lab:filler', value: 'F1', type: null },
        resultStatus: 'final',
        notes: [],
      },
    };
    const sr = run(o, changed).get('service_requests', 'O1')!.resource;
    expect(sr.status).toBe('completed');
    expect(sr.identifier?.map((i) => i.value)).toEqual(['O1', 'F1']);
  });
});

describe('portal Encounter elements', () => {
  it('given a hospital service code not in v2-0069 (EM), then serviceType is text only; a valid one (MED) is coded', () => {
    const em = run(admitted('P1', 'E1', 'emergency', 'ED', 'a1', at(8))).get('encounters', 'E1')!.resource;
    expect(em.serviceType).toEqual({ text: 'EM' });
    const med = run(admitted('P1', 'E2', 'inpatient', 'W1', 'a2', at(8))).get('encounters', 'E2')!.resource;
    expect(med.serviceType).toEqual({ coding: [{ system: V2_TABLE('0069'), code: 'MED' }] });
  });

  it('given admit reason, source, type and attending, then reasonCode, hospitalization, priority and participant', () => {
    const a = withReport(admitted('P1', 'E1', 'inpatient', 'W1', 'a1', at(8)), {
      admitReason: codeOf('http://hl7.org/fhir/sid/icd-10-cm', 'R07.9', 'Chest pain'),
      admitSource: codeOf(V2_TABLE('0023'), '7', 'Emergency room'),
      admissionType: codeOf(V2_TABLE('0007'), 'E', 'Emergency'),
      attendingPractitioner: dr,
    });
    const e = run(a).get('encounters', 'E1')!.resource;
    expect(e.reasonCode?.[0]?.coding?.[0]?.code).toBe('R07.9');
    expect(e.hospitalization?.admitSource?.coding?.[0]).toMatchObject({
      system: V2_TABLE('0023'),
      code: '7',
    });
    expect(e.priority?.coding?.[0]).toMatchObject({ system: V3('ActPriority'), code: 'EM' });
    expect(e.participant).toEqual([
      {
        type: [{ coding: [{ system: V3('ParticipationType'), code: 'ATND', display: 'attender' }] }],
        period: { start: e.period?.start },
        individual: { identifier: { system: 'urn:genhosp:staff', value: 'D123' }, display: 'Dr Greg House' },
      },
    ]);
    expect(e.identifier?.[0]?.type?.coding?.[0]).toEqual({ system: V2_TABLE('0203'), code: 'VN' });
  });

  it('given a transfer with a new class and attending, then class is the latest and attenders are a history', () => {
    const a = withReport(admitted('P1', 'E1', 'emergency', 'ED', 'a1', at(8)), { attendingPractitioner: dr });
    const t = withReport(transferred('P1', 'E1', 'ED', 'W1', 't1', at(10)), {
      encounterClass: codeOf(V2_TABLE('0004'), 'I'),
      attendingPractitioner: drWho,
    });
    const e = run(a, t).get('encounters', 'E1')!.resource;
    expect(e.class).toEqual({ system: V3('ActCode'), code: 'IMP', display: 'inpatient encounter' });
    expect(e.participant?.map((p) => [p.individual?.display, p.period?.end !== undefined])).toEqual([
      ['Dr Greg House', true],
      ['John Who', false],
    ]);
  });

  it('given a discharge with a disposition, then hospitalization.dischargeDisposition keeps the v2-0112 coding', () => {
    const e = run(
      admitted('P1', 'E1', 'inpatient', 'W1', 'a1', at(8)),
      discharged('P1', 'E1', 'd1', at(12)),
    ).get('encounters', 'E1')!.resource;
    expect(e.hospitalization?.dischargeDisposition).toEqual({
      coding: [{ system: V2_TABLE('0112'), code: '01', display: 'home' }],
    });
  });
});

describe('portal Patient elements', () => {
  const withDemographics = (over: Record<string, unknown>): ClinicalEvent => {
    const r = registered('P1', 'Kim', 'Kept', 'r1', at(7));
    if (r.type !== 'PatientRegistered') throw new Error('registered() builds PatientRegistered');
    return { ...r, data: { ...r.data, demographics: { ...r.data.demographics, ...over } } };
  };

  it('given language SPA (table 0296), then communication.language is BCP-47 es with the v2 coding kept', () => {
    const p = run(withDemographics({ language: codeOf(V2_TABLE('0296'), 'SPA', 'Spanish') })).get(
      'patients',
      'P1',
    )!.resource;
    expect(p.communication?.[0]?.language.coding?.[0]).toEqual({ system: 'urn:ietf:bcp:47', code: 'es' });
  });

  it('given an MR identifier, then identifier.type is coded in v2-0203', () => {
    const p = run(withDemographics({})).get('patients', 'P1')!.resource;
    expect(p.identifier?.[0]?.type).toEqual({ coding: [{ system: V2_TABLE('0203'), code: 'MR' }] });
  });

  it('given a next of kin, then Patient.contact with relationship through the table, name, phone and address', () => {
    const p = run(
      withDemographics({
        contacts: [
          {
            relationships: [codeOf(V2_TABLE('0063'), 'SPO', 'Spouse'), codeOf(V2_TABLE('0131'), 'C')],
            name: { family: 'Kim', given: ['Lee'], prefix: null, suffix: null, use: null },
            telecom: [{ system: 'phone', value: '555-0199', use: 'home', part: null }],
            address: null,
            organization: null,
            periodStart: '2020-01-01',
            periodEnd: null,
          },
          {
            relationships: [codeOf(V2_TABLE('0063'), 'OTH')],
            name: null,
            telecom: [],
            address: null,
            organization: null,
            periodStart: null,
            periodEnd: null,
          },
        ],
      }),
    ).get('patients', 'P1')!.resource;
    expect(p.contact).toEqual([
      {
        relationship: [
          {
            coding: [
              { system: V3('RoleCode'), code: 'SPS', display: 'spouse' },
              { system: V2_TABLE('0063'), code: 'SPO', display: 'Spouse' },
            ],
          },
          { coding: [{ system: V2_TABLE('0131'), code: 'C' }] },
        ],
        name: { family: 'Kim', given: ['Lee'] },
        telecom: [{ system: 'phone', value: '555-0199', use: 'home' }],
        period: { start: '2020-01-01' },
      },
    ]);
  });

  it('given race, ethnicity, religion, marital status and a GP, then US Core extensions, religion extension, v3 marital, GP display', () => {
    const p = run(
      withDemographics({
        race: [codeOf(V2_TABLE('0005'), '2106-3', 'White')],
        ethnicity: [codeOf(V2_TABLE('0189'), 'N', 'Not Hispanic')],
        religion: codeOf(V2_TABLE('0006'), 'CAT', 'Catholic'),
        maritalStatus: codeOf(V2_TABLE('0002'), 'M', 'Married'),
        primaryCareProvider: dr,
        addresses: [
          {
            lines: ['PO Box 1'],
            city: 'X',
            state: null,
            postalCode: null,
            country: null,
            use: 'home',
            type: 'postal',
          },
        ],
      }),
    ).get('patients', 'P1')!.resource;
    expect(p.extension).toEqual([
      {
        url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race',
        extension: [
          {
            url: 'ombCategory',
            valueCoding: { system: 'urn:oid:2.16.840.1.113883.6.238', code: '2106-3', display: 'White' },
          },
          { url: 'text', valueString: 'White' },
        ],
      },
      {
        url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity',
        extension: [
          {
            url: 'ombCategory',
            valueCoding: {
              system: 'urn:oid:2.16.840.1.113883.6.238',
              code: '2186-5',
              display: 'Not Hispanic or Latino',
            },
          },
          { url: 'text', valueString: 'Not Hispanic' },
        ],
      },
      {
        url: 'http://hl7.org/fhir/StructureDefinition/patient-religion',
        valueCodeableConcept: { coding: [{ system: V2_TABLE('0006'), code: 'CAT', display: 'Catholic' }] },
      },
    ]);
    expect(p.maritalStatus?.coding?.[0]).toEqual({
      system: V3('MaritalStatus'),
      code: 'M',
      display: 'Married',
    });
    expect(p.generalPractitioner).toEqual([
      { identifier: { system: 'urn:genhosp:staff', value: 'D123' }, display: 'Dr Greg House' },
    ]);
    expect(p.address?.[0]).toMatchObject({ use: 'home', type: 'postal' });
  });
});

describe('portal Observation performer', () => {
  it('given a report with a performer, then each observation names it (the validator expects one)', () => {
    const r = withReport(resulted('P1', 'R1', null, null, 'cbc', 'final', 'm1', at(10), [glucose()]), {
      performer: dr,
    });
    expect(run(r).get('observations', 'obs-glu')!.resource.performer).toEqual([
      { identifier: { system: 'urn:genhosp:staff', value: 'D123' }, display: 'Dr Greg House' },
    ]);
  });
});

describe('portal ServiceRequest: arrival order', () => {
  it('given placement, a status change with the filler number and a note, and a report, in any order, then the same ServiceRequest', () => {
    const placed = withReport(ordered('P1', 'O1', null, 'cbc', 'routine', 'o1', at(8)), {
      notes: [note('Fasting', 'P')],
    });
    const changed: ClinicalEvent = {
      type: 'OrderStatusChanged',
      data: {
        meta: {
          ...placed.data.meta,
          eventId: '00000000-0000-4000-8000-000000000002',
          eventType: 'OrderStatusChanged',
        },
        patientId: 'P1',
        orderId: 'O1',
        status: 'active',
        fillerStatus: 'IP',
        changedAt: at(9),
        placerOrderNumber: null,
        fillerOrderNumber: { system: 'urn:lab:filler', value: 'F1', type: null },
        resultStatus: null,
        notes: [note('Specimen received', 'L')],
      },
    };
    const reported = withReport(resulted('P1', 'R1', 'O1', null, 'cbc', 'final', 'm1', at(10), []), {
      placerOrderNumber: { system: 'urn:genhosp:placer', value: 'O1', type: null },
      fillerOrderNumber: { system: 'urn:lab:filler', value: 'F1', type: null },
    });
    const orders = [
      [placed, changed, reported],
      [placed, reported, changed],
      [changed, placed, reported],
      [changed, reported, placed],
      [reported, placed, changed],
      [reported, changed, placed],
    ];
    const shown = orders.map((events) =>
      JSON.stringify(run(...events).get('service_requests', 'O1')!.resource),
    );
    expect(new Set(shown).size).toBe(1);
    const sr = run(placed, changed, reported).get('service_requests', 'O1')!.resource;
    expect(sr.identifier?.map((i) => i.value)).toEqual(['O1', 'F1']);
  });
});

describe('portal concept memo', () => {
  const code = (over: Partial<Code> = {}): Code => ({
    system: 'http://loinc.org',
    code: '718-7',
    display: 'Hemoglobin',
    version: null,
    alternates: [],
    text: null,
    ...over,
  });

  it('given the same code twice, then the same rendering as toFhirConcept, frozen (resources share it)', () => {
    const first = concept(code());
    expect(concept(code())).toBe(first);
    expect(first).toEqual(toFhirConcept(code()));
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.coding?.[0])).toBe(true);
  });

  it('given codes differing in any field read (table, null or "" text, an alternate), then each its own rendering', () => {
    const variants: [Code, V2TableId | undefined][] = [
      [code({ system: '', code: 'H' }), undefined],
      [code({ system: '', code: 'H' }), '0078'],
      [code({ text: '' }), undefined],
      [code({ text: 'Hb' }), undefined],
      [code({ display: null }), undefined],
      [code({ display: '' }), undefined],
      [code({ alternates: [{ system: 'urn:local', code: 'HGB', display: null, version: null }] }), undefined],
    ];
    for (const [c, table] of variants) expect(concept(c, table)).toEqual(toFhirConcept(c, table));
  });
});
