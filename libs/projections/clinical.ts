import type { Code, ObservationValue } from '../events/index.js';

/**
 * Clinical rules shared by the read models, so that billing, analytics and
 * the portal agree on what "final", "superseded" and "abnormal" mean.
 */

/**
 * Which version of a report wins, whatever order versions arrive in: a
 * cancellation beats a correction beats a final beats a preliminary; within
 * one rank the later clinical time, then the larger event id (a stable tie
 * break, so that replays in any order agree).
 */
export function resultRank(status: string): number {
  switch (status.toLowerCase()) {
    case 'preliminary':
    case 'registered':
    case 'partial':
      return 1;
    case 'final':
      return 2;
    case 'corrected':
    case 'amended':
      return 3;
    case 'cancelled':
    case 'entered-in-error':
      return 4;
    default:
      return 0;
  }
}

export interface VersionStamp {
  rank: number;
  at: number;
  eventId: string;
}

export function supersedes(candidate: VersionStamp, current: VersionStamp | null): boolean {
  if (!current) return true;
  if (candidate.rank !== current.rank) return candidate.rank > current.rank;
  if (candidate.at !== current.at) return candidate.at > current.at;
  return candidate.eventId > current.eventId;
}

/** The version columns of a row that holds the latest statement of a restatable fact. */
export interface StatementVersion {
  version_at: number;
  version_event: string;
}

/**
 * Facts restated under the same id (coverage, diagnosis, allergy: latest
 * wins): whether an event's statement replaces the stored one. Later
 * clinical time, then the larger event id, so any arrival order agrees.
 * Returns the version columns to store, or null when the stored one stays.
 */
export function restatement(
  meta: { occurredAt: number; eventId: string },
  stored: StatementVersion | undefined,
): StatementVersion | null {
  const stamp = { rank: 0, at: meta.occurredAt, eventId: meta.eventId };
  if (stored && !supersedes(stamp, { rank: 0, at: stored.version_at, eventId: stored.version_event }))
    return null;
  return { version_at: meta.occurredAt, version_event: meta.eventId };
}

/** Released to the patient and billable: a final or corrected report. */
export function isReleasedStatus(status: string): boolean {
  const r = resultRank(status);
  return r === 2 || r === 3;
}

// HL7 table 0078 flags that mean "outside the normal range".
export const ABNORMAL_FLAGS = [
  'A',
  'AA',
  'H',
  'HH',
  'L',
  'LL',
  'HU',
  'LU',
  '<',
  '>',
  'POS',
  'R',
  'W',
] as const;
const ABNORMAL = new Set<string>(ABNORMAL_FLAGS);

/** One interpretation code (HL7 table 0078 or v3-ObservationInterpretation, which share these codes). */
export const isAbnormalFlag = (code: string): boolean => ABNORMAL.has(code.toUpperCase());

export function isAbnormal(o: ObservationValue): boolean {
  const flag = o.interpretation?.code;
  return flag !== undefined && isAbnormalFlag(flag);
}

// Critical ("panic") values: 0078 / v3 HH critically high, LL critically low, AA critically
// abnormal. HU/LU ("significantly" high/low) and </> (off scale) are abnormal, not critical.
export const CRITICAL_FLAGS = ['HH', 'LL', 'AA'] as const;
const CRITICAL = new Set<string>(CRITICAL_FLAGS);

export const isCriticalFlag = (code: string): boolean => CRITICAL.has(code.toUpperCase());

/** inpatient | emergency | outpatient | other, from HL7 PV1-2 or FHIR v3-ActCode. */
export function classOf(c: Code | null | undefined): string {
  const code = (c?.code ?? '').toUpperCase();
  switch (code) {
    case 'I':
    case 'IMP':
    case 'ACUTE':
    case 'NONAC':
    case 'INPATIENT':
      return 'inpatient';
    case 'E':
    case 'EMER':
    case 'EMERGENCY':
      return 'emergency';
    case 'O':
    case 'AMB':
    case 'OUTPATIENT':
    case 'R':
    case 'B':
      return 'outpatient';
    case 'P':
    case 'PRENC':
      return 'preadmit';
    case 'OBSENC':
      return 'observation';
    default:
      return code === '' ? 'unknown' : code.toLowerCase();
  }
}

/** What an encounter cancellation undoes: the whole visit, its last transfer or its discharge. */
export function cancelledPart(cancelledEventType: string | null): 'visit' | 'transfer' | 'discharge' {
  const t = (cancelledEventType ?? '').toLowerCase();
  if (t.includes('transfer') || t === 'a12' || t === 'encountertransferred') return 'transfer';
  if (t.includes('discharge') || t === 'a13' || t === 'encounterended' || t.includes('end'))
    return 'discharge';
  return 'visit';
}

/** The part of a visit an undo event takes back, for both the generic and the specific undo events. */
export function undonePart(
  e:
    | { type: 'EncounterCancelled'; data: { cancelledEventType: string | null } }
    | { type: 'EncounterTransferCancelled' }
    | { type: 'EncounterDischargeCancelled' },
): 'visit' | 'transfer' | 'discharge' {
  if (e.type === 'EncounterTransferCancelled') return 'transfer';
  if (e.type === 'EncounterDischargeCancelled') return 'discharge';
  return cancelledPart(e.data.cancelledEventType);
}
