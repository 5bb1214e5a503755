/**
 * The identity-matcher's decisions, pure: which event (if any) a pair gets
 * given what was decided about it before and what the matching core says
 * now, and whether a steward's command still holds. The one place where the
 * precedence is written down: an EHR merge (A40) beats everything, a
 * steward's decision beats the matcher, the matcher may revise only itself.
 */
import { deterministicEventId, type EventMeta, type MatchEvidence } from '../../events/index.js';
import type { MatchDecision } from '../matching/types.js';
import type { CommandKind, PairBasis, PairState } from '../store.js';

export const MATCHER = 'identity-matcher';

export type IdentityEventType =
  'PatientLinkProposed' | 'PatientsLinked' | 'PatientsUnlinked' | 'PatientLinkRejected';

/** The state a decision event leaves its pair in. */
export const STATE_AFTER: Readonly<Record<IdentityEventType, PairState>> = {
  PatientLinkProposed: 'proposed',
  PatientsLinked: 'linked',
  PatientsUnlinked: 'unlinked',
  PatientLinkRejected: 'rejected',
};

/** Why the matcher decided, as carried in the event's reason (no PHI). */
export const REASONS = {
  autoLink: 'score at or above the upper threshold',
  review: 'score between the thresholds',
  safetyRule: 'a safety rule forbids an automatic link',
  rescored: 'rescored',
} as const;

export interface PlannedEvent {
  type: IdentityEventType;
  reason: string;
}

/** What was decided about a pair before: its row in `pairs`, or null for a new pair. */
export interface PriorPair {
  state: PairState;
  basis: PairBasis;
}

/**
 * The matcher's events for one pair of active records. A steward's decision
 * is never overridden; the matcher's own link or proposal is withdrawn when
 * the pair no longer scores (or, for a link, when a safety rule now forbids
 * it: unlinked, then proposed for review); the same outcome again is no event.
 */
export function planPair(
  prior: PriorPair | null,
  d: Pick<MatchDecision, 'outcome' | 'rules'>,
): PlannedEvent[] {
  if (prior?.basis === 'steward') return [];
  const state = prior?.state ?? null;
  if (state === 'linked') {
    if (d.outcome === 'none') return [{ type: 'PatientsUnlinked', reason: REASONS.rescored }];
    if (d.outcome === 'review' && d.rules.length > 0)
      return [
        { type: 'PatientsUnlinked', reason: REASONS.safetyRule },
        { type: 'PatientLinkProposed', reason: REASONS.safetyRule },
      ];
    return [];
  }
  if (state === 'proposed') {
    if (d.outcome === 'link') return [{ type: 'PatientsLinked', reason: REASONS.autoLink }];
    if (d.outcome === 'none') return [{ type: 'PatientLinkRejected', reason: REASONS.rescored }];
    return [];
  }
  // New, or withdrawn by the matcher earlier (not binding): decided afresh.
  if (d.outcome === 'link') return [{ type: 'PatientsLinked', reason: REASONS.autoLink }];
  if (d.outcome === 'review')
    return [
      { type: 'PatientLinkProposed', reason: d.rules.length > 0 ? REASONS.safetyRule : REASONS.review },
    ];
  return [];
}

/** What the matcher knows of one record of a command's pair; null when unknown. */
export interface RecordStatus {
  active: boolean;
}

export type CommandPlan = { ok: true; type: IdentityEventType } | { ok: false; error: string };

const COMMAND_EVENT: Readonly<Record<CommandKind, IdentityEventType>> = {
  link: 'PatientsLinked',
  unlink: 'PatientsUnlinked',
  reject: 'PatientLinkRejected',
};

/**
 * Whether a steward's command still holds when the matcher picks it: an EHR
 * merge retired a record (the merge wins), an unlink of a pair that is not
 * linked, a rejection of a linked pair (unlink it first). The refusal texts
 * name no patient.
 */
export function planCommand(
  kind: CommandKind,
  pairState: PairState | null,
  a: RecordStatus | null,
  b: RecordStatus | null,
): CommandPlan {
  if (!a || !b) return { ok: false, error: 'the master patient index does not know both records' };
  if (!a.active || !b.active)
    return { ok: false, error: 'a record of the pair was retired by an EHR merge (A40), which always wins' };
  if (kind === 'unlink' && pairState !== 'linked') return { ok: false, error: 'the pair is not linked' };
  if (kind === 'reject' && pairState === 'linked')
    return { ok: false, error: 'the pair is linked: unlink it instead' };
  return { ok: true, type: COMMAND_EVENT[kind] };
}

/** A decision's event id from a patient event: the same input, pair and weights give the same id on a re-run. */
export function decisionEventId(
  inputEventId: string,
  pairKey: string,
  weightsVersion: string,
  type: IdentityEventType,
): string {
  return deterministicEventId([MATCHER, inputEventId, pairKey, weightsVersion, type]);
}

/** A steward command's event id: one per command, however often it is picked. */
export function commandEventId(commandId: string): string {
  return deterministicEventId([MATCHER, 'command', commandId]);
}

/** The envelope of a decision event: the matcher is its source; the cause is the input event or the command. */
export function decisionMeta(
  eventId: string,
  type: IdentityEventType,
  cause: { id: string; correlationId: string | null; occurredAt: number },
  recordedAt: number,
): EventMeta {
  return {
    eventId,
    eventType: type,
    occurredAt: cause.occurredAt,
    recordedAt,
    source: { system: MATCHER, facility: null, messageId: null },
    correlationId: cause.correlationId,
    causationId: cause.id,
    rawMessageRef: null,
    sourceTimes: [],
  };
}

/** Evidence as the event carries it (the core's readonly shape, copied). */
export function evidenceOf(d: Pick<MatchDecision, 'evidence'> | null): MatchEvidence[] {
  return d ? d.evidence.map((e) => ({ field: e.field, level: e.level, weight: e.weight })) : [];
}
