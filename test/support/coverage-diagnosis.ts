import { codeOf, type ClinicalEvent, type CoverageRecorded } from '../../libs/events/index.js';
import { meta } from './hospital-day.js';

/**
 * Coverage and diagnosis events for the billing and analytics read-model
 * tests (made-up payers and patients), in the style of hospital-day.ts.
 */
export function coverage(
  pid: string,
  coverageId: string,
  msg: string,
  t: number,
  over: Partial<Omit<CoverageRecorded, 'meta' | 'patientId' | 'coverageId'>> = {},
): ClinicalEvent {
  return {
    type: 'CoverageRecorded',
    data: {
      meta: meta('EHR-ADT', msg, 'CoverageRecorded', t),
      patientId: pid,
      coverageId,
      order: 1,
      payerId: { system: 'urn:genhosp:payer', value: 'ACME01', type: null },
      payerName: 'ACME Health',
      plan: codeOf('urn:genhosp:plan', 'GOLD', 'ACME Gold PPO'),
      planType: codeOf('http://terminology.hl7.org/CodeSystem/v2-0086', 'PPO', null),
      groupNumber: 'G-100',
      groupName: 'Testville Employers',
      memberId: `M-${pid}`,
      subscriberName: null,
      relationship: codeOf('http://terminology.hl7.org/CodeSystem/v2-0063', 'SEL', 'self'),
      periodStart: '2026-01-01',
      periodEnd: '2026-12-31',
      status: 'active',
      encounterId: null,
      ...over,
    },
  };
}

export function diagnosed(
  pid: string,
  diagnosisId: string,
  eid: string | null,
  icd10: string,
  display: string,
  rank: number | null,
  msg: string,
  t: number,
  verificationStatus: string | null = 'confirmed',
): ClinicalEvent {
  return {
    type: 'DiagnosisRecorded',
    data: {
      meta: meta('EHR-ADT', msg, 'DiagnosisRecorded', t),
      patientId: pid,
      diagnosisId,
      encounterId: eid,
      code: codeOf('http://hl7.org/fhir/sid/icd-10-cm', icd10, display),
      category: eid ? 'encounter-diagnosis' : 'problem-list-item',
      diagnosisType: codeOf('http://terminology.hl7.org/CodeSystem/v2-0052', 'F', 'Final'),
      rank,
      diagnosedAt: t,
      clinician: null,
      clinicalStatus: 'active',
      verificationStatus,
    },
  };
}
