import { deterministicEventId, type ClinicalEvent, type EventMeta } from '../../libs/events/index.js';
import { EMPTY_DEMOGRAPHICS } from '../../libs/events/demographics.js';

/** Made-up patients only. */
export function meta(type: string, messageId: string, occurredAt = Date.UTC(2026, 0, 15, 9, 30)): EventMeta {
  return {
    eventId: deterministicEventId(['TEST-EHR', 'TESTFAC', messageId, type]),
    eventType: type,
    occurredAt,
    recordedAt: occurredAt + 1000,
    source: { system: 'TEST-EHR', facility: 'TESTFAC', messageId },
    correlationId: messageId,
    causationId: null,
    rawMessageRef: null,
    sourceTimes: [],
  };
}

export function patientRegistered(patientId: string, family: string, messageId: string): ClinicalEvent {
  return {
    type: 'PatientRegistered',
    data: {
      meta: meta('PatientRegistered', messageId),
      patientId,
      demographics: {
        ...EMPTY_DEMOGRAPHICS,
        identifiers: [{ system: 'urn:oid:2.16.840.1.113883.3.999.1', value: `MRN-${patientId}`, type: 'MR' }],
        names: [{ family, given: ['Testy'], prefix: null, suffix: null, use: 'official' }],
        birthDate: '1970-01-01',
        administrativeGender: 'unknown',
      },
    },
  };
}

export function patientUpdated(patientId: string, family: string, messageId: string): ClinicalEvent {
  const r = patientRegistered(patientId, family, messageId);
  if (r.type !== 'PatientRegistered') throw new Error('unreachable');
  return { type: 'PatientUpdated', data: { ...r.data, meta: meta('PatientUpdated', messageId) } };
}

export function patientsMerged(survivor: string, retired: string, messageId: string): ClinicalEvent {
  return {
    type: 'PatientsMerged',
    data: {
      meta: meta('PatientsMerged', messageId),
      patientId: survivor,
      mergedPatientId: retired,
      mergedIdentifiers: [],
      mergedNames: [],
      mergedAccountNumber: null,
      mergedVisitNumber: null,
      mergedDemographics: null,
    },
  };
}
