import type {
  AllergyIntolerance,
  Condition,
  Coverage,
  Encounter,
  Patient,
  ServiceRequest,
  Specimen,
} from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { codeOf, type ClinicalEvent, type EventType, type EventTypeMap } from '../events/index.js';
import type { IdentityPolicy } from '../identity/index.js';
import { inputFor, mappedEvents, testContext } from '../../test/support/fhir-mapping.js';
import { hubIdOfResource, mapResource, type MapInput, type PriorVersion } from './mapping.js';
import { validateFhirResource } from './validate.js';

/** Patient, Encounter, ServiceRequest content and the new record types (issue #18). */

const policy: IdentityPolicy = { enterpriseSystems: ['urn:oid:1.2.3'], authorityAliases: {} };
const ctx = testContext(policy);
const KEY = 'pat-rec-key';
const SCT = 'http://snomed.info/sct';

const input = (resource: MapInput['resource'], extra: Partial<MapInput> = {}): MapInput =>
  inputFor(resource, KEY, { id: 'r1', ...extra });

const mapped = (i: MapInput): ClinicalEvent[] => mappedEvents(i, ctx);

function only<T extends EventType>(events: ClinicalEvent[], type: T): EventTypeMap[T] {
  const e = events.find((x) => x.type === type);
  if (!e) throw new Error(`no ${type} in ${events.map((x) => x.type).join(',')}`);
  return e.data as EventTypeMap[T];
}

const prior = (status: string, hubId: string, extra: Partial<PriorVersion> = {}): PriorVersion => ({
  version: 1,
  contentHash: 'h',
  hubId,
  patientKey: KEY,
  status,
  location: null,
  ...extra,
});

describe('Patient: US Core race/ethnicity, religion, marital status, language, contacts', () => {
  const patient: Patient = {
    resourceType: 'Patient',
    identifier: [{ system: 'urn:oid:1.2.3', value: 'MRN-1' }],
    extension: [
      {
        url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race',
        extension: [
          {
            url: 'ombCategory',
            valueCoding: { system: 'urn:oid:2.16.840.1.113883.6.238', code: '2106-3', display: 'White' },
          },
          {
            url: 'detailed',
            valueCoding: { system: 'urn:oid:2.16.840.1.113883.6.238', code: '2108-9', display: 'European' },
          },
          { url: 'text', valueString: 'White European' },
        ],
      },
      {
        url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity',
        extension: [{ url: 'text', valueString: 'Declined' }],
      },
      {
        url: 'http://hl7.org/fhir/StructureDefinition/patient-religion',
        valueCodeableConcept: {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ReligiousAffiliation', code: '1013' }],
        },
      },
    ],
    maritalStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' }],
      text: 'Married',
    },
    communication: [
      { language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] } },
      { language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'de' }] }, preferred: true },
    ],
    address: [{ line: ['PO Box 1'], type: 'postal', use: 'home' }],
    generalPractitioner: [{ display: 'Dr Gp', identifier: { system: 'urn:oid:1.2.3.7', value: 'GP1' } }],
    contact: [
      {
        relationship: [
          { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0131', code: 'N' }] },
          { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'SPS' }] },
        ],
        name: { family: 'Example', given: ['Sam'] },
        telecom: [{ system: 'phone', value: '555-0100', use: 'home' }],
        address: { city: 'Testville' },
        organization: { display: 'Acme' },
        period: { start: '2020-01-01' },
      },
    ],
  };

  it('given the extensions and elements, when mapped, then race (codings, text on the first), ethnicity text, religion, marital status with text and the preferred language', () => {
    const d = only(mapped(input(patient)), 'PatientRegistered').demographics;
    expect(d.race).toEqual([
      { ...codeOf('urn:oid:2.16.840.1.113883.6.238', '2106-3', 'White'), text: 'White European' },
      codeOf('urn:oid:2.16.840.1.113883.6.238', '2108-9', 'European'),
    ]);
    expect(d.ethnicity).toEqual([{ ...codeOf('urn:hub:text', 'Declined', 'Declined'), text: 'Declined' }]);
    expect(d.religion?.code).toBe('1013');
    expect(d.maritalStatus).toMatchObject({ code: 'M', text: 'Married' });
    expect(d.language?.code).toBe('de');
  });

  it('given contacts, an address type and a general practitioner, when mapped, then contacts, address type and primary care provider', () => {
    const d = only(mapped(input(patient)), 'PatientRegistered').demographics;
    expect(d.contacts).toEqual([
      {
        relationships: [
          codeOf('http://terminology.hl7.org/CodeSystem/v2-0131', 'N'),
          codeOf('http://terminology.hl7.org/CodeSystem/v3-RoleCode', 'SPS'),
        ],
        name: { family: 'Example', given: ['Sam'], prefix: null, suffix: null, use: null },
        telecom: [{ system: 'phone', value: '555-0100', use: 'home', part: null }],
        address: {
          lines: [],
          city: 'Testville',
          state: null,
          postalCode: null,
          country: null,
          use: null,
          type: null,
        },
        organization: 'Acme',
        periodStart: '2020-01-01',
        periodEnd: null,
      },
    ]);
    expect(d.addresses[0]?.type).toBe('postal');
    expect(d.primaryCareProvider).toMatchObject({ id: { value: 'GP1' }, name: { family: 'Dr Gp' } });
  });
});

const condition: Condition = {
  resourceType: 'Condition',
  id: 'c1',
  subject: { reference: 'Patient/p' },
  code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'J18.9', display: 'Pneumonia' }] },
  clinicalStatus: { coding: [{ code: 'active' }] },
  verificationStatus: { coding: [{ code: 'confirmed' }] },
  recordedDate: '2026-01-19T10:00:00Z',
  asserter: { display: 'Dr Who' },
};

describe('Encounter: reason, admit source, type, discharge, visit facts on every event, diagnoses', () => {
  const enc: Encounter = {
    resourceType: 'Encounter',
    status: 'in-progress',
    identifier: [{ system: 'urn:oid:1.2.3.8', value: 'V-1', type: { coding: [{ code: 'VN' }] } }],
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
    type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0007', code: 'E' }] }],
    serviceType: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/service-type', code: '394802001' }],
    },
    reasonCode: [{ text: 'chest pain' }],
    hospitalization: {
      admitSource: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/admit-source', code: 'emd' }],
      },
    },
    participant: [{ type: [{ coding: [{ code: 'ATND' }] }], individual: { display: 'Dr Att' } }],
    location: [{ location: { display: 'Ward 1' } }],
    subject: { reference: 'Patient/p' },
    diagnosis: [{ condition: { reference: '#dx' }, use: { coding: [{ code: 'AD' }] }, rank: 1 }],
    contained: [{ ...condition, id: 'dx' }],
  };

  it('given a new in-progress visit, when mapped, then EncounterStarted with reason, source and type, and the contained diagnosis with use and rank', () => {
    const events = mapped(input(enc));
    expect(events.map((e) => e.type)).toEqual(['EncounterStarted', 'DiagnosisRecorded']);
    const s = only(events, 'EncounterStarted');
    expect(s.admitReason).toMatchObject({ code: 'chest pain', text: 'chest pain' });
    expect(s.admitSource?.code).toBe('emd');
    expect(s.admissionType?.code).toBe('E');
    const dx = only(events, 'DiagnosisRecorded');
    expect(dx).toMatchObject({
      encounterId: s.encounterId,
      code: { code: 'J18.9' },
      category: 'problem-list-item',
      diagnosisType: { code: 'AD' },
      rank: 1,
      clinicalStatus: 'active',
      verificationStatus: 'confirmed',
      diagnosedAt: Date.UTC(2026, 0, 19, 10),
      clinician: { name: { family: 'Dr Who' } },
    });
  });

  it('given a Condition the adapter resolved, when mapped, then the diagnosis has the Condition own id', () => {
    const e2: Encounter = {
      ...enc,
      diagnosis: [{ condition: { reference: 'Condition/c1' } }],
    };
    const dx = only(
      mapped(input(e2, { related: new Map([['Condition/c1', condition]]) })),
      'DiagnosisRecorded',
    );
    expect(dx.diagnosisId).toBe(hubIdOfResource(condition, 'c1', policy));
  });

  it('given a transfer, then the end, when mapped, then class, service and attending on both and the location on the end', () => {
    const encId = hubIdOfResource(enc, 'r1', policy);
    const { diagnosis: _dx, ...plain } = enc;
    const moved = { ...plain, location: [{ location: { display: 'Ward 2' } }] };
    const t = only(
      mapped(
        input(moved, {
          previous: prior('in-progress', encId, {
            location: { facility: null, unit: 'Ward 1', room: null, bed: null },
          }),
        }),
      ),
      'EncounterTransferred',
    );
    expect(t).toMatchObject({
      encounterClass: { code: 'IMP' },
      hospitalService: { code: '394802001' },
      attendingPractitioner: { name: { family: 'Dr Att' } },
    });
    const ended = {
      ...moved,
      status: 'finished' as const,
      hospitalization: { dischargeDisposition: { coding: [{ code: 'home' }] } },
    };
    const end = only(mapped(input(ended, { previous: prior('in-progress', encId) })), 'EncounterEnded');
    expect(end).toMatchObject({
      encounterClass: { code: 'IMP' },
      location: { unit: 'Ward 2' },
      dischargeDisposition: { code: 'home' },
    });
    const cancelled = only(
      mapped(input({ ...moved, status: 'cancelled' }, { previous: prior('in-progress', encId) })),
      'EncounterCancelled',
    );
    expect(cancelled.encounterClass?.code).toBe('IMP');
  });
});

describe('ServiceRequest: requisition, specimen, note, reason', () => {
  const sr: ServiceRequest = {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    identifier: [
      { system: 'urn:oid:1.2.3.4', value: 'P-1', type: { coding: [{ code: 'PLAC' }] } },
      { system: 'urn:oid:1.2.3.5', value: 'F-1', type: { coding: [{ code: 'FILL' }] } },
    ],
    requisition: { system: 'urn:oid:1.2.3.4', value: 'G-1' },
    code: { coding: [{ system: 'http://loinc.org', code: '24323-8' }] },
    subject: { reference: 'Patient/p' },
    note: [{ text: 'fasting' }],
    reasonCode: [{ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'E11.9' }] }],
    specimen: [{ reference: '#s' }],
    contained: [{ resourceType: 'Specimen', id: 's', type: { text: 'serum' } } satisfies Specimen],
  };
  it('given a new order, when mapped, then placer group, specimens, notes, reasons and the order status', () => {
    const p = only(mapped(input(sr)), 'OrderPlaced');
    expect(p).toMatchObject({
      placerOrderNumber: { value: 'P-1' },
      fillerOrderNumber: { value: 'F-1' },
      placerGroupNumber: { system: 'urn:oid:1.2.3.4', value: 'G-1', type: null },
      notes: [{ text: 'fasting', source: null, type: null, authoredAt: null }],
      reasons: [{ code: 'E11.9' }],
      orderStatus: 'active',
    });
    expect(p.specimens.map((s) => s.type?.code)).toEqual(['serum']);
  });
  it('given a status change, when mapped, then the order numbers travel with it', () => {
    const c = only(
      mapped(input({ ...sr, status: 'completed' }, { previous: prior('active', 'ord-1') })),
      'OrderStatusChanged',
    );
    expect(c).toMatchObject({
      placerOrderNumber: { value: 'P-1' },
      fillerOrderNumber: { value: 'F-1' },
      notes: [{ text: 'fasting' }],
    });
  });
});

describe('AllergyIntolerance → AllergyRecorded', () => {
  const a: AllergyIntolerance = {
    resourceType: 'AllergyIntolerance',
    patient: { reference: 'Patient/p' },
    code: {
      coding: [
        { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '7980', display: 'Penicillin G' },
      ],
    },
    type: 'allergy',
    category: ['medication'],
    criticality: 'high',
    clinicalStatus: { coding: [{ code: 'active' }] },
    verificationStatus: { coding: [{ code: 'confirmed' }] },
    onsetDateTime: '2010',
    recordedDate: '2026-01-19T10:00:00Z',
    reaction: [
      { manifestation: [{ text: 'Hives' }], severity: 'moderate' },
      {
        manifestation: [{ coding: [{ system: SCT, code: '39579001', display: 'Anaphylaxis' }] }],
        severity: 'severe',
      },
    ],
  };
  it('given an allergy, when mapped, then allergen, type, category, worst severity, criticality, reactions, dates and statuses', () => {
    const d = only(mapped(input(a)), 'AllergyRecorded');
    expect(d).toMatchObject({
      allergyId: hubIdOfResource(a, 'r1', policy),
      allergen: { code: '7980' },
      allergyType: { code: 'allergy' },
      category: 'medication',
      severity: { code: 'severe' },
      criticality: 'high',
      reactions: ['Hives', 'Anaphylaxis'],
      identifiedOn: '2010',
      clinicalStatus: 'active',
      verificationStatus: 'confirmed',
    });
  });
  it('given no code, when mapped, then 422 at AllergyIntolerance.code', () => {
    const { code: _code, ...withoutCode } = a;
    expect(mapResource(input(withoutCode), ctx)).toMatchObject({
      ok: false,
      status: 422,
      issues: [{ expression: ['AllergyIntolerance.code'] }],
    });
  });
});

describe('Condition → DiagnosisRecorded', () => {
  it('given an encounter-diagnosis, when mapped, then the diagnosis with its visit', () => {
    const c = {
      ...condition,
      encounter: { reference: 'Encounter/e1' },
      category: [{ coding: [{ code: 'encounter-diagnosis' }] }],
    };
    const d = only(mapped(input(c, { encounterId: 'enc-1' })), 'DiagnosisRecorded');
    expect(d).toMatchObject({
      encounterId: 'enc-1',
      category: 'encounter-diagnosis',
      rank: null,
      diagnosisType: null,
    });
  });
});

describe('Coverage → CoverageRecorded', () => {
  it('given payor, classes, subscriber id, relationship, period and order, when mapped, then each field', () => {
    const c: Coverage = {
      resourceType: 'Coverage',
      status: 'active',
      beneficiary: { reference: 'Patient/p' },
      payor: [{ display: 'Acme Health', identifier: { system: 'urn:oid:1.2.3.6', value: 'ACME' } }],
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'HIP' }] },
      subscriberId: 'M-123',
      subscriber: { display: 'Alex Example' },
      relationship: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/subscriber-relationship', code: 'self' }],
      },
      period: { start: '2026-01-01', end: '2026-12-31' },
      order: 1,
      class: [
        { type: { coding: [{ code: 'plan' }] }, value: 'GOLD', name: 'Gold plan' },
        { type: { coding: [{ code: 'group' }] }, value: 'G-77', name: 'Acme Corp' },
      ],
    };
    expect(only(mapped(input(c)), 'CoverageRecorded')).toMatchObject({
      payerId: { system: 'urn:oid:1.2.3.6', value: 'ACME' },
      payerName: 'Acme Health',
      plan: { code: 'GOLD', display: 'Gold plan' },
      planType: { code: 'HIP' },
      groupNumber: 'G-77',
      groupName: 'Acme Corp',
      memberId: 'M-123',
      subscriberName: { family: 'Alex Example' },
      relationship: { code: 'self' },
      periodStart: '2026-01-01',
      periodEnd: '2026-12-31',
      order: 1,
      status: 'active',
    });
  });
});

describe('Specimen', () => {
  it('given a Specimen, when mapped, then stored for reference with no event of its own', () => {
    const s: Specimen = {
      resourceType: 'Specimen',
      subject: { reference: 'Patient/p' },
      type: { text: 'serum' },
    };
    expect(mapResource(input(s), ctx)).toMatchObject({ ok: true, events: [] });
  });
});

describe('accepted types', () => {
  it('given AllergyIntolerance, Condition, Coverage and Specimen, when validated, then accepted; RelatedPerson refused as unsupported', () => {
    const subject = { reference: 'Patient/p' };
    const accepted = [
      {
        resourceType: 'AllergyIntolerance',
        patient: subject,
        code: { text: 'x' },
        clinicalStatus: { coding: [{ code: 'active' }] },
      },
      { resourceType: 'Condition', subject, code: { text: 'x' } },
      { resourceType: 'Coverage', status: 'active', beneficiary: subject, payor: [{ display: 'x' }] },
      { resourceType: 'Specimen', subject },
    ];
    for (const r of accepted) expect(validateFhirResource(r)).toMatchObject({ ok: true });
    expect(validateFhirResource({ resourceType: 'RelatedPerson', patient: subject })).toMatchObject({
      ok: false,
      reason: 'unsupported-type',
    });
  });
});
