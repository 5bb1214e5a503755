import type { ClinicalEvent, MatchEvidence } from '../../libs/events/index.js';
import { meta } from './hospital-day.js';

/**
 * Identity decisions (clinical.identity.v1) as the matcher or a data steward
 * publishes them, for read-model tests: made-up ids, no PHI. The pair is
 * named lower id first, as the events require (that id is the Kafka key).
 */
const MATCHER = 'identity-matcher';

type Scored = 'PatientLinkProposed' | 'PatientsLinked' | 'PatientLinkRejected';

const pair = (a: string, b: string) =>
  a <= b ? { patientId: a, otherPatientId: b } : { patientId: b, otherPatientId: a };

/** A decision with a score (proposal, link, rejection). */
function scored(
  type: Scored,
  [a, b]: readonly [string, string],
  msg: string,
  t: number,
  decision: { decidedBy: string; reason: string; evidence?: MatchEvidence[] },
): ClinicalEvent {
  const data = {
    meta: meta(MATCHER, msg, type, t),
    ...pair(a, b),
    score: 14.2,
    weightsVersion: 'test-weights',
    evidence: decision.evidence ?? [],
    rules: [],
    decidedBy: decision.decidedBy,
    reason: decision.reason,
  };
  return { type, data };
}

export function linked(a: string, b: string, msg: string, t: number, decidedBy = MATCHER): ClinicalEvent {
  return scored('PatientsLinked', [a, b], msg, t, {
    decidedBy,
    reason: decidedBy === MATCHER ? 'auto-link above the upper threshold' : 'same person',
    evidence: [{ field: 'family', level: 'exact', weight: 4.1 }],
  });
}

export function unlinked(
  a: string,
  b: string,
  msg: string,
  t: number,
  decidedBy = 'steward-ann',
): ClinicalEvent {
  return {
    type: 'PatientsUnlinked',
    data: {
      meta: meta(MATCHER, msg, 'PatientsUnlinked', t),
      ...pair(a, b),
      decidedBy,
      reason: 'not the same person',
    },
  };
}

export const proposed = (a: string, b: string, msg: string, t: number): ClinicalEvent =>
  scored('PatientLinkProposed', [a, b], msg, t, { decidedBy: MATCHER, reason: 'between the thresholds' });

export const rejected = (a: string, b: string, msg: string, t: number): ClinicalEvent =>
  scored('PatientLinkRejected', [a, b], msg, t, { decidedBy: 'steward-ann', reason: 'different people' });
