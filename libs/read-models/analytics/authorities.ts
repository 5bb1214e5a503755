import type { ClinicalEvent, Identifier } from '../../events/index.js';
import type { Draft, Needs } from '../../projections/store.js';
import type { AnalyticsTables } from './domain.js';

/**
 * Unregistered assigning authorities: identifier systems on the log that the
 * site configuration does not register (libs/identity isRegisteredSystem).
 * Such an authority is accepted with its deterministic system, but the same
 * authority spelt another way by another feed would be a second system, and
 * the same MRN a second patient: an operator registers it
 * (docs/site-configuration.md). One row per system, derived from the events
 * alone (plus the configuration), so a replay rebuilds it. Counts are of
 * events, the times are ingest times (min/max, so the order of arrival does
 * not matter), never an identifier value.
 *
 * Counted: the identifiers that key aggregates or identify the patient
 * (patient identifiers, merged identifiers, visit numbers, placer and filler
 * order numbers). Clinician ids (XCN) are not: they key nothing here.
 */
/**
 * Whether a canonical system is registered; from the site configuration
 * (projector-analytics' main.ts, `hub projections rebuild analytics`).
 */
export type IsRegistered = (system: string) => boolean;

const MAX_SOURCES = 20;

/** More distinct systems than a site has: past it the memo starts over rather than grow with the log. */
const MEMO_SYSTEMS = 1024;

/**
 * `isRegistered` answered once per system: the site's policy is folded and
 * searched per call, and every event asks it twice (its needs, then its
 * evolve) for each identifier it carries. The answer depends on the system
 * alone, so the memo changes nothing but the work.
 */
export function memoIsRegistered(isRegistered: IsRegistered, max = MEMO_SYSTEMS): IsRegistered {
  const memo = new Map<string, boolean>();
  return (system) => {
    let answer = memo.get(system);
    if (answer === undefined) {
      if (memo.size >= max) memo.clear();
      memo.set(system, (answer = isRegistered(system)));
    }
    return answer;
  };
}

/** Systems the hub mints itself (FHIR logical ids): not an assigning authority anyone registers. */
const HUB_MINTED = 'urn:hub:fhir:';

export type IdentifierKind =
  'patient identifier' | 'visit number' | 'placer order number' | 'filler order number';

/** The identifiers of an event worth an authority, with what they are. Pure. */
export function keyedIdentifiers(e: ClinicalEvent): { kind: IdentifierKind; id: Identifier }[] {
  const out: { kind: IdentifierKind; id: Identifier }[] = [];
  const d = e.data;
  if ('demographics' in d)
    for (const id of d.demographics.identifiers) out.push({ kind: 'patient identifier', id });
  if ('mergedIdentifiers' in d)
    for (const id of d.mergedIdentifiers) out.push({ kind: 'patient identifier', id });
  if ('visitNumber' in d && d.visitNumber) out.push({ kind: 'visit number', id: d.visitNumber });
  if ('placerOrderNumber' in d && d.placerOrderNumber)
    out.push({ kind: 'placer order number', id: d.placerOrderNumber });
  if ('fillerOrderNumber' in d && d.fillerOrderNumber)
    out.push({ kind: 'filler order number', id: d.fillerOrderNumber });
  return out;
}

/** Unregistered systems of one event, each with the kinds it was used for. */
function unregistered(e: ClinicalEvent, isRegistered: IsRegistered): Map<string, Set<IdentifierKind>> {
  const bySystem = new Map<string, Set<IdentifierKind>>();
  for (const { kind, id } of keyedIdentifiers(e)) {
    if (id.system.startsWith(HUB_MINTED) || isRegistered(id.system)) continue;
    let kinds = bySystem.get(id.system);
    if (!kinds) bySystem.set(id.system, (kinds = new Set()));
    kinds.add(kind);
  }
  return bySystem;
}

export function authorityNeeds(e: ClinicalEvent, isRegistered: IsRegistered): Needs<AnalyticsTables> {
  const systems = [...unregistered(e, isRegistered).keys()];
  return systems.length > 0 ? { unregistered_authorities: systems } : {};
}

/**
 * `a` and `b` as one sorted set of at most `max`. Usually the event brings
 * nothing new (the same kinds, the same source): then `a` itself, which is
 * that set already, instead of three arrays and a Set per event in a replay
 * (rows are never mutated, so the new row may share it with the old).
 */
function union(a: string[], b: Iterable<string>, max = Infinity): string[] {
  let same = a.length <= max;
  for (let i = 1; same && i < a.length; i++) same = (a[i - 1] as string) < (a[i] as string);
  if (same) for (const x of b) if (!a.includes(x)) same = false;
  return same ? a : [...new Set([...a, ...b])].sort().slice(0, max);
}

/** Counts the event against each unregistered system it carries. Pure. */
export function countAuthorities(
  draft: Draft<AnalyticsTables>,
  e: ClinicalEvent,
  isRegistered: IsRegistered,
): void {
  const at = e.data.meta.recordedAt;
  const source = e.data.meta.source.system;
  for (const [system, kinds] of unregistered(e, isRegistered)) {
    const prev = draft.get('unregistered_authorities', system);
    draft.put('unregistered_authorities', system, {
      system,
      events: (prev?.events ?? 0) + 1,
      first_seen_at: prev ? Math.min(prev.first_seen_at, at) : at,
      last_seen_at: prev ? Math.max(prev.last_seen_at, at) : at,
      kinds: union(prev?.kinds ?? [], kinds),
      sources: union(prev?.sources ?? [], [source], MAX_SOURCES),
    });
  }
}
