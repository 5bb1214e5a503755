import { validateResource } from '@medplum/core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type {
  AllergyRecorded,
  ClinicalEvent,
  CoverageRecorded,
  DiagnosisRecorded,
} from '../../events/index.js';
import { codeOf } from '../../events/values.js';
import { loadFhirDefinitions } from '../../fhir/validate.js';
import { evolveAll, evolveLearningMerges } from '../../../test/support/read-model-testing.js';
import { admitted, at, merged, registered } from '../../../test/support/hospital-day.js';
import { allergy, coverage, diagnosis } from '../../../test/support/clinical-facts.js';
import { allergyResource, conditionResource, coverageResource } from './clinical.js';
import { evolve, type PortalTables } from './domain.js';

const run = (...events: ClinicalEvent[]) => evolveAll<PortalTables>(evolve, events);

const valid = (r: Parameters<typeof validateResource>[0]) => {
  expect(() => validateResource(r)).not.toThrow();
};

// The R4 definitions take seconds to index once per process.
beforeAll(() => loadFhirDefinitions(), 30_000);

describe('portal: allergies (AllergyRecorded → AllergyIntolerance)', () => {
  it('given an AL1 allergy, when projected, then every fact is in a valid AllergyIntolerance of the patient', () => {
    const d = run(allergy());
    const row = d.get('allergies', 'AL1')!;
    expect(row).toMatchObject({ patient_id: 'P1', visible: true, date_at: Date.UTC(2019, 4, 1) });
    expect(row.resource).toMatchObject({
      resourceType: 'AllergyIntolerance',
      id: 'AL1',
      clinicalStatus: {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' },
        ],
      },
      verificationStatus: {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification',
            code: 'confirmed',
          },
        ],
      },
      type: 'allergy',
      category: ['medication'],
      criticality: 'high',
      code: { coding: [{ code: '7980', display: 'Penicillin G' }] },
      patient: { reference: 'Patient/P1' },
      encounter: { reference: 'Encounter/E1' },
      onsetDateTime: '2019-05',
      recordedDate: '2019-05',
      reaction: [{ manifestation: [{ text: 'Hives' }, { text: 'Wheezing' }], severity: 'severe' }],
    });
    valid(row.resource);
    // The patient it names exists (a placeholder until registered): $everything and reads find it.
    expect(d.get('patients', 'P1')?.placeholder).toBe(true);
  });

  it('given the same allergy restated, then the latest statement wins whole', () => {
    const d = run(
      allergy(),
      allergy({ reactions: [], clinicalStatus: 'resolved', criticality: null, severity: null }),
    );
    const r = d.get('allergies', 'AL1')!.resource;
    expect(r.clinicalStatus?.coding?.[0]?.code).toBe('resolved');
    expect(r.reaction).toBeUndefined();
    expect(r.criticality).toBeUndefined();
  });

  it('given an allergy entered in error, then it is withdrawn and has no clinicalStatus (ait-2)', () => {
    const d = run(allergy(), allergy({ verificationStatus: 'entered-in-error' }));
    const row = d.get('allergies', 'AL1')!;
    expect(row.visible).toBe(false);
    expect(row.resource.clinicalStatus).toBeUndefined();
    valid(row.resource);
  });

  it('given v2 codes only (no FHIR category or criticality sent), then they are translated (tables 0127, 0128)', () => {
    const r = allergyResource(
      { ...(allergy().data as AllergyRecorded), category: null, criticality: null },
      'P1',
    );
    expect(r).toMatchObject({ category: ['medication'], criticality: 'high', type: 'allergy' });
  });
});

describe('portal: diagnoses (DiagnosisRecorded → Condition, Encounter.diagnosis)', () => {
  it('given a DG1 on a visit, when projected, then a valid Condition and the visit lists it with use and rank', () => {
    const d = run(admitted('P1', 'E1', 'inpatient', 'W1', 'a01', at(8)), diagnosis());
    const row = d.get('conditions', 'D1')!;
    expect(row.resource).toMatchObject({
      resourceType: 'Condition',
      id: 'D1',
      category: [
        {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/condition-category',
              code: 'encounter-diagnosis',
            },
          ],
        },
      ],
      code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'J18.9' }] },
      subject: { reference: 'Patient/P1' },
      encounter: { reference: 'Encounter/E1' },
      recordedDate: '2026-03-02T08:30:00.000Z',
      asserter: { identifier: { system: 'urn:genhosp:staff', value: '1234' }, display: 'Dr Gregory House' },
    });
    // No clinicalStatus was sent for an encounter diagnosis: none is made up.
    expect(row.resource.clinicalStatus).toBeUndefined();
    valid(row.resource);
    const enc = d.get('encounters', 'E1')!.resource;
    expect(enc.diagnosis).toEqual([
      {
        condition: { reference: 'Condition/D1' },
        use: {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/diagnosis-role',
              code: 'AD',
              display: 'Admission diagnosis',
            },
            { system: 'http://terminology.hl7.org/CodeSystem/v2-0052', code: 'A', display: 'Admitting' },
          ],
        },
        rank: 1,
      },
    ]);
    valid(enc);
  });

  it('given two diagnoses out of rank order and the visit restated, then the list is by rank and kept', () => {
    const d = run(
      admitted('P1', 'E1', 'inpatient', 'W1', 'a01', at(8)),
      diagnosis({ diagnosisId: 'D2', rank: 2 }),
      diagnosis({ diagnosisId: 'D1', rank: 1 }),
      admitted('P1', 'E1', 'inpatient', 'W2', 'a01-again', at(8)),
    );
    expect(d.get('encounters', 'E1')!.resource.diagnosis?.map((x) => x.condition.reference)).toEqual([
      'Condition/D1',
      'Condition/D2',
    ]);
  });

  it('given a diagnosis before its visit is known, then the visit is a stub that resolves, and keeps it once started', () => {
    const d = run(diagnosis(), admitted('P1', 'E1', 'inpatient', 'W1', 'a01', at(8)));
    const enc = d.get('encounters', 'E1')!;
    expect(enc.resource.status).toBe('in-progress');
    expect(enc.resource.diagnosis?.[0]?.condition.reference).toBe('Condition/D1');
  });

  it('given a diagnosis entered in error, then it is withdrawn, without clinicalStatus (con-5), and off the visit', () => {
    const d = run(
      diagnosis(),
      diagnosis({ verificationStatus: 'entered-in-error', clinicalStatus: 'active' }),
    );
    const row = d.get('conditions', 'D1')!;
    expect(row.visible).toBe(false);
    expect(row.resource.clinicalStatus).toBeUndefined();
    expect(row.resource.verificationStatus?.coding?.[0]?.code).toBe('entered-in-error');
    expect(d.get('encounters', 'E1')!.resource.diagnosis).toBeUndefined();
  });

  it('given a problem-list item without a status, then it is active (con-3), with no encounter', () => {
    const r = conditionResource(
      { ...(diagnosis().data as DiagnosisRecorded), category: 'problem-list-item', encounterId: null },
      'P1',
    );
    expect(r.clinicalStatus?.coding?.[0]?.code).toBe('active');
    expect(r.encounter).toBeUndefined();
    valid(r);
  });
});

describe('portal: coverage (CoverageRecorded → Coverage)', () => {
  it('given IN1/IN2 insurance, when projected, then a valid Coverage with payor, classes and relationship', () => {
    const d = run(coverage());
    const row = d.get('coverages', 'C1')!;
    expect(row).toMatchObject({ patient_id: 'P1', visible: true, date_at: Date.UTC(2026, 0, 1) });
    expect(row.resource).toMatchObject({
      resourceType: 'Coverage',
      id: 'C1',
      status: 'active',
      subscriber: { display: 'Ann Alpha' },
      subscriberId: 'MEM-123',
      beneficiary: { reference: 'Patient/P1' },
      period: { start: '2026-01-01', end: '2026-12-31' },
      payor: [{ identifier: { system: 'urn:genhosp:payer', value: 'BCBS01' }, display: 'Blue Cross' }],
      class: [
        {
          type: {
            coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-class', code: 'plan' }],
          },
          value: 'PPO-GOLD',
          name: 'PPO Gold',
        },
        {
          type: {
            coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-class', code: 'group' }],
          },
          value: 'G-77',
          name: 'Acme Corp',
        },
      ],
      order: 1,
    });
    expect(row.resource.relationship?.coding?.[0]).toEqual({
      system: 'http://terminology.hl7.org/CodeSystem/subscriber-relationship',
      code: 'self',
    });
    valid(row.resource);
  });

  it('given no payer sent, then payor (1..*) still says so, and the Coverage validates', () => {
    const r = coverageResource(
      {
        ...(coverage().data as CoverageRecorded),
        payerId: null,
        payerName: null,
        plan: null,
        groupNumber: null,
      },
      'P1',
    );
    expect(r.payor).toEqual([{ display: 'payer not sent' }]);
    expect(r.class).toBeUndefined();
    valid(r);
  });
});

describe('portal: clinical facts and merges', () => {
  it('given facts of a patient merged away, then later facts about the retired id land on the survivor', () => {
    const d = evolveLearningMerges<PortalTables>(evolve, [
      registered('P1', 'Alpha', 'Ann', 'r1', at(7)),
      registered('P9', 'Alpha', 'Anne', 'r9', at(7)),
      merged('P1', 'P9', 'm', at(8)),
      allergy({ patientId: 'P9' }),
      coverage({ patientId: 'P9' }),
      diagnosis({ patientId: 'P9' }),
    ]);
    expect(d.get('allergies', 'AL1')?.resource.patient).toEqual({ reference: 'Patient/P1' });
    expect(d.get('coverages', 'C1')?.resource.beneficiary).toEqual({ reference: 'Patient/P1' });
    expect(d.get('conditions', 'D1')?.patient_id).toBe('P1');
  });
});

describe('portal: clinical mappers (property)', () => {
  const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });
  const word = fc.stringMatching(/^[A-Za-z][A-Za-z0-9 ]{0,11}$/);
  const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9.-]{0,20}$/);

  it('given any statuses and codes, then the resources validate and keep the FHIR status invariants', () => {
    fc.assert(
      fc.property(
        id,
        maybe(fc.constantFrom('active', 'inactive', 'resolved', 'recurrence', 'remission', 'bogus')),
        maybe(fc.constantFrom('unconfirmed', 'confirmed', 'refuted', 'entered-in-error', 'provisional', 'x')),
        fc.constantFrom('encounter-diagnosis', 'problem-list-item'),
        fc.array(word, { maxLength: 3 }),
        maybe(fc.constantFrom('2019', '2019-05', '2019-05-04', 'not a date')),
        maybe(fc.constantFrom('AA', 'DA', 'FA', 'MC', 'XX')),
        maybe(fc.constantFrom('SEL', 'SPO', 'CHD', 'EMR', 'UNK', 'ZZZ')),
        maybe(fc.integer({ min: -1, max: 4 })),
        (rid, clinical, verification, category, reactions, identifiedOn, type, rel, n) => {
          const a = allergyResource(
            {
              ...(allergy().data as AllergyRecorded),
              allergyId: rid,
              clinicalStatus: clinical ?? 'active',
              verificationStatus: verification,
              reactions,
              identifiedOn,
              allergyType: type ? codeOf('http://terminology.hl7.org/CodeSystem/v2-0127', type) : null,
              category: null,
            },
            'P1',
          );
          validateResource(a);
          // ait-1 / ait-2: clinicalStatus present exactly when not entered in error.
          expect(a.clinicalStatus === undefined).toBe(verification === 'entered-in-error');
          const c = conditionResource(
            {
              ...(diagnosis().data as DiagnosisRecorded),
              diagnosisId: rid,
              clinicalStatus: clinical,
              verificationStatus: verification,
              category,
              rank: n,
            },
            'P1',
          );
          validateResource(c);
          if (verification === 'entered-in-error') expect(c.clinicalStatus).toBeUndefined();
          else if (category === 'problem-list-item') expect(c.clinicalStatus).toBeDefined();
          const v = coverageResource(
            {
              ...(coverage().data as CoverageRecorded),
              coverageId: rid,
              order: n,
              relationship: rel ? codeOf('http://terminology.hl7.org/CodeSystem/v2-0063', rel) : null,
              periodStart: identifiedOn,
            },
            'P1',
          );
          validateResource(v);
          expect(v.payor.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
