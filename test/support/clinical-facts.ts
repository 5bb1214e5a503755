import type {
  AllergyRecorded,
  ClinicalEvent,
  CoverageRecorded,
  DiagnosisRecorded,
} from '../../libs/events/index.js';
import { codeOf } from '../../libs/events/values.js';
import { at, meta } from './hospital-day.js';

/** A message id per fact and statement: the event ids differ, as the hub's idempotence needs. */
const msgOf = (...parts: (string | null | undefined)[]) => parts.map((p) => p ?? '').join('-');

/**
 * A patient's allergy (AL1), diagnosis (DG1) and insurance (IN1/IN2) as events, for tests of
 * the read models and the API: patient P1 on visit E1 unless overridden.
 */

export function allergy(over: Partial<AllergyRecorded> = {}): ClinicalEvent {
  return {
    type: 'AllergyRecorded',
    data: {
      meta: meta(
        'ADT',
        msgOf('al1', over.patientId, over.allergyId, over.verificationStatus),
        'AllergyRecorded',
        at(9),
      ),
      patientId: 'P1',
      allergyId: 'AL1',
      allergen: codeOf('http://www.nlm.nih.gov/research/umls/rxnorm', '7980', 'Penicillin G'),
      allergyType: codeOf('http://terminology.hl7.org/CodeSystem/v2-0127', 'DA', 'Drug allergy'),
      category: 'medication',
      severity: codeOf('http://terminology.hl7.org/CodeSystem/v2-0128', 'SV', 'Severe'),
      criticality: 'high',
      reactions: ['Hives', 'Wheezing'],
      identifiedOn: '2019-05',
      clinicalStatus: 'active',
      verificationStatus: 'confirmed',
      encounterId: 'E1',
      ...over,
    },
  };
}

export function diagnosis(over: Partial<DiagnosisRecorded> = {}): ClinicalEvent {
  return {
    type: 'DiagnosisRecorded',
    data: {
      meta: meta(
        'ADT',
        msgOf('dg1', over.patientId, over.diagnosisId, over.verificationStatus),
        'DiagnosisRecorded',
        at(9),
      ),
      patientId: 'P1',
      diagnosisId: 'D1',
      encounterId: 'E1',
      code: codeOf('http://hl7.org/fhir/sid/icd-10-cm', 'J18.9', 'Pneumonia, unspecified organism'),
      category: 'encounter-diagnosis',
      diagnosisType: codeOf('http://terminology.hl7.org/CodeSystem/v2-0052', 'A', 'Admitting'),
      rank: 1,
      diagnosedAt: at(8, 30),
      clinician: {
        id: { system: 'urn:genhosp:staff', value: '1234', type: null },
        name: { family: 'House', given: ['Gregory'], prefix: 'Dr', suffix: null, use: null },
        telecom: [],
      },
      clinicalStatus: null,
      verificationStatus: null,
      ...over,
    },
  };
}

export function coverage(over: Partial<CoverageRecorded> = {}): ClinicalEvent {
  return {
    type: 'CoverageRecorded',
    data: {
      meta: meta(
        'ADT',
        msgOf('in1', over.patientId, over.coverageId, over.status),
        'CoverageRecorded',
        at(9),
      ),
      patientId: 'P1',
      coverageId: 'C1',
      order: 1,
      payerId: { system: 'urn:genhosp:payer', value: 'BCBS01', type: null },
      payerName: 'Blue Cross',
      plan: codeOf('urn:genhosp:plan', 'PPO-GOLD', 'PPO Gold'),
      planType: null,
      groupNumber: 'G-77',
      groupName: 'Acme Corp',
      memberId: 'MEM-123',
      subscriberName: { family: 'Alpha', given: ['Ann'], prefix: null, suffix: null, use: null },
      relationship: codeOf('http://terminology.hl7.org/CodeSystem/v2-0063', 'SEL', 'Self'),
      periodStart: '2026-01-01',
      periodEnd: '2026-12-31',
      status: 'active',
      encounterId: 'E1',
      ...over,
    },
  };
}
