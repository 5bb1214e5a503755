import type { DiagnosticReport, Encounter, Observation, Patient, ServiceRequest } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { invalidPaths, type ClinicalEvent } from '../events/index.js';
import { enterprisePatientId, systemForHl7Authority, type IdentityPolicy } from '../identity/index.js';
import { contentHash, mapResource, type MapContext, type MapInput, type PriorVersion } from './mapping.js';

const policy: IdentityPolicy = {
  enterpriseSystems: ['urn:oid:2.16.840.1.113883.3.999.1'],
  authorityAliases: { HOSP: 'urn:oid:2.16.840.1.113883.3.999.1' },
};
const ctx: MapContext = {
  policy,
  recordedAt: Date.UTC(2026, 0, 20, 12),
  source: { system: 'fhir-test', facility: null, messageId: null },
  correlationId: null,
  requestKey: null,
};
const KEY = 'pat-test-key';

function input(
  resource: MapInput['resource'],
  previous: PriorVersion | null = null,
  extra: Partial<MapInput> = {},
): MapInput {
  return {
    resource,
    id: 'r1',
    version: (previous?.version ?? 0) + 1,
    contentHash: contentHash(resource),
    previous,
    subjectKey: KEY,
    ...extra,
  };
}

function events(i: MapInput, c: MapContext = ctx): ClinicalEvent[] {
  const r = mapResource(i, c);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  for (const e of r.events) expect(invalidPaths(e.type, e.data)).toEqual([]);
  return r.events;
}

function prior(status: string | null, extra: Partial<PriorVersion> = {}): PriorVersion {
  return { version: 1, contentHash: 'h', hubId: 'hub-1', patientKey: KEY, status, location: null, ...extra };
}

const patient: Patient = {
  resourceType: 'Patient',
  identifier: [
    {
      system: 'urn:oid:2.16.840.1.113883.3.999.1',
      value: 'MRN-77',
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] },
    },
  ],
  name: [{ family: 'Testperson', given: ['Alex'], use: 'official' }],
  gender: 'female',
  birthDate: '1980-02',
  address: [{ line: ['1 Example St'], city: 'Testville' }],
  telecom: [{ system: 'phone', value: '000' }],
};

describe('Patient', () => {
  it('given a new patient, then PatientRegistered with the enterprise key and full demographics', () => {
    const [e] = events(input(patient));
    expect(e?.type).toBe('PatientRegistered');
    if (e?.type !== 'PatientRegistered') return;
    expect(e.data.patientId).toBe(enterprisePatientId(e.data.demographics.identifiers, policy));
    expect(e.data.demographics).toMatchObject({
      birthDate: '1980-02',
      administrativeGender: 'female',
      identifiers: [{ system: 'urn:oid:2.16.840.1.113883.3.999.1', value: 'MRN-77', type: 'MR' }],
      names: [{ family: 'Testperson', given: ['Alex'], use: 'official' }],
    });
  });

  it('given the same MRN arriving by HL7 (PID-3 with authority HOSP), then both routes yield one key', () => {
    const hl7System = systemForHl7Authority({ namespaceId: 'HOSP' }, policy);
    const fromHl7 = enterprisePatientId([{ system: hl7System, value: 'MRN-77', type: 'MR' }], policy);
    const [e] = events(input(patient));
    expect(e?.data.patientId).toBe(fromHl7);
  });

  it('given a known patient, then PatientUpdated', () => {
    expect(events(input(patient, prior('active')))[0]?.type).toBe('PatientUpdated');
  });

  it('given no identifier, then 422 at Patient.identifier', () => {
    const r = mapResource(input({ resourceType: 'Patient', name: [{ family: 'X' }] }), ctx);
    expect(r).toMatchObject({ ok: false, status: 422 });
    if (!r.ok) expect(r.issues[0]?.expression).toEqual(['Patient.identifier']);
  });

  it('given a gender or telecom system outside its required value set, then 422 at that element', () => {
    const bad = (x: Partial<Patient>) => mapResource(input({ ...patient, ...x }), ctx);
    expect(bad({ gender: 'x' as NonNullable<Patient['gender']> })).toMatchObject({
      ok: false,
      issues: [{ expression: ['Patient.gender'] }],
    });
    expect(
      bad({
        telecom: [
          { system: 'phone', value: '1' },
          { system: 'pigeon' as 'phone', value: '2' },
        ],
      }),
    ).toMatchObject({ ok: false, issues: [{ expression: ['Patient.telecom[1].system'] }] });
  });

  it('event ids: same version and content → same id; another version or request → another id', () => {
    const a = events(input(patient))[0]!.data.meta.eventId;
    expect(events(input(patient))[0]!.data.meta.eventId).toBe(a);
    expect(events(input(patient, prior('active')))[0]!.data.meta.eventId).not.toBe(a);
    const viaRequest = events(input(patient), { ...ctx, requestKey: 'req-1#0' })[0]!.data.meta.eventId;
    expect(viaRequest).not.toBe(a);
    expect(events(input(patient), { ...ctx, requestKey: 'req-1#0' })[0]!.data.meta.eventId).toBe(viaRequest);
  });
});

const encounter = (status: Encounter['status'], ward = 'Ward 1'): Encounter => ({
  resourceType: 'Encounter',
  status,
  class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
  identifier: [{ system: 'urn:oid:1.2.3', value: 'V1', type: { coding: [{ code: 'VN' }] } }],
  subject: { reference: 'Patient/p1' },
  period: { start: '2026-01-02T03:04:05Z', end: '2026-01-03T03:04:05Z' },
  location: [{ location: { display: ward }, status: 'active' }],
});

describe('Encounter by status', () => {
  it('given in-progress and unknown before, then EncounterStarted keyed by the subject', () => {
    const [e] = events(input(encounter('in-progress')));
    expect(e).toMatchObject({
      type: 'EncounterStarted',
      data: { patientId: KEY, status: 'in-progress', admittedAt: Date.UTC(2026, 0, 2, 3, 4, 5) },
    });
  });

  it('given in-progress at another location than before, then EncounterTransferred', () => {
    const prev = prior('in-progress', {
      location: { facility: null, unit: 'Ward 1', room: null, bed: null },
    });
    const [e] = events(input(encounter('in-progress', 'Ward 2'), prev));
    expect(e).toMatchObject({
      type: 'EncounterTransferred',
      data: { toLocation: { unit: 'Ward 2' }, encounterId: 'hub-1' },
    });
  });

  it('given the same location (stored with its keys in another order), then no transfer', () => {
    const stored = JSON.parse(
      '{"bed":null,"room":null,"unit":"Ward 1","facility":null}',
    ) as PriorVersion['location'];
    expect(events(input(encounter('in-progress'), prior('in-progress', { location: stored })))).toEqual([]);
  });

  it('given finished after in-progress, then EncounterEnded; finished first seen, then Started and Ended', () => {
    expect(events(input(encounter('finished'), prior('in-progress'))).map((e) => e.type)).toEqual([
      'EncounterEnded',
    ]);
    expect(events(input(encounter('finished'))).map((e) => e.type)).toEqual([
      'EncounterStarted',
      'EncounterEnded',
    ]);
  });

  it('given cancelled or entered-in-error, then EncounterCancelled', () => {
    expect(events(input(encounter('cancelled'), prior('in-progress')))[0]?.type).toBe('EncounterCancelled');
    expect(events(input(encounter('entered-in-error')))[0]?.type).toBe('EncounterCancelled');
  });

  it('given an unresolvable subject, then 422 at Encounter.subject', () => {
    const r = mapResource(input(encounter('in-progress'), null, { subjectKey: undefined }), ctx);
    expect(r).toMatchObject({ ok: false, issues: [{ expression: ['Encounter.subject'] }] });
  });
});

const order = (status: ServiceRequest['status']): ServiceRequest => ({
  resourceType: 'ServiceRequest',
  status,
  intent: 'order',
  identifier: [{ system: 'urn:oid:1.2.4', value: 'O1', type: { coding: [{ code: 'PLAC' }] } }],
  category: [{ coding: [{ system: 'http://snomed.info/sct', code: '108252007' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
  subject: { reference: 'Patient/p1' },
  priority: 'stat',
  authoredOn: '2026-01-02T03:04:05Z',
});

describe('ServiceRequest by status', () => {
  it('given active and new, then OrderPlaced', () => {
    const [e] = events(input(order('active'), null, { encounterId: 'enc-1' }));
    expect(e).toMatchObject({
      type: 'OrderPlaced',
      data: {
        category: 'laboratory',
        priority: 'stat',
        encounterId: 'enc-1',
        placerOrderNumber: { value: 'O1' },
      },
    });
  });

  it('given a status change, then OrderStatusChanged; revoked, then OrderCancelled', () => {
    expect(events(input(order('completed'), prior('active')))[0]).toMatchObject({
      type: 'OrderStatusChanged',
      data: { status: 'completed' },
    });
    expect(events(input(order('revoked'), prior('active')))[0]?.type).toBe('OrderCancelled');
    expect(events(input(order('active'), prior('active')))).toEqual([]);
  });
});

const obs = (status: Observation['status']): Observation => ({
  resourceType: 'Observation',
  status,
  code: { coding: [{ system: 'http://loinc.org', code: '2345-7', display: 'Glucose' }] },
  subject: { reference: 'Patient/p1' },
  valueQuantity: { value: 5.4, unit: 'mmol/L' },
  referenceRange: [{ low: { value: 3.9 }, high: { value: 5.6 } }],
});

describe('Observation and DiagnosticReport by status', () => {
  it('given preliminary or final, then ResultReported with the value', () => {
    for (const [s, want] of [
      ['preliminary', 'preliminary'],
      ['final', 'final'],
    ] as const) {
      const [e] = events(input(obs(s), null, { orderId: 'ord-1' }));
      expect(e).toMatchObject({
        type: 'ResultReported',
        data: {
          status: want,
          orderId: 'ord-1',
          observations: [{ valueType: 'NM', valueNumber: 5.4, unit: 'mmol/L', referenceRange: '3.9-5.6' }],
        },
      });
    }
  });

  it('given amended or corrected, then ResultCorrected', () => {
    for (const s of ['amended', 'corrected'] as const) {
      expect(events(input(obs(s), prior('final')))[0]).toMatchObject({
        type: 'ResultCorrected',
        data: { status: 'corrected', correctionReason: s, resultId: 'hub-1' },
      });
    }
  });

  it('given a DiagnosticReport with contained observations, then one ResultReported with them all', () => {
    const dr: DiagnosticReport = {
      resourceType: 'DiagnosticReport',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '24323-8' }] },
      subject: { reference: 'Patient/p1' },
      conclusion: 'normal',
    };
    const [e] = events(input(dr, null, { resultObservations: [obs('final'), obs('final')] }));
    expect(e).toMatchObject({ type: 'ResultReported', data: { reportText: 'normal' } });
    if (e?.type === 'ResultReported') expect(e.data.observations.map((o) => o.sequence)).toEqual([1, 2]);
  });

  it('given status unknown, then 422 at the status', () => {
    expect(mapResource(input(obs('unknown')), ctx)).toMatchObject({
      ok: false,
      issues: [{ expression: ['Observation.status'] }],
    });
  });
});

describe('hub ids line up with the HL7 adapter', () => {
  it('given the same visit, order and report numbers, then encounter, order and result ids equal HL7 ones', async () => {
    const hl7 = await import('../hl7/scope.js');
    const [enc] = events(input(encounter('in-progress')));
    expect(enc?.type === 'EncounterStarted' && enc.data.encounterId).toBe(
      hl7.encounterIdFor({ system: 'urn:oid:1.2.3', value: 'V1', type: 'VN' }),
    );
    const [ord] = events(input(order('active')));
    expect(ord?.type === 'OrderPlaced' && ord.data.orderId).toBe(
      hl7.orderIdFor({ system: 'urn:oid:1.2.4', value: 'O1', type: 'PLAC' }),
    );
    const report: Observation = {
      ...obs('final'),
      identifier: [{ system: 'urn:oid:1.2.5', value: 'F1', type: { coding: [{ code: 'FILL' }] } }],
    };
    const [res] = events(input(report));
    expect(res?.type === 'ResultReported' && res.data.resultId).toBe(
      hl7.resultIdFor(
        { system: 'urn:oid:1.2.5', value: 'F1', type: 'FILL' },
        {
          system: 'http://loinc.org',
          code: '2345-7',
          display: null,
          version: null,
          alternates: [],
          text: null,
        },
      ),
    );
  });
});
