import { FIELDS, compare, conflictingSystems } from './compare.js';
import type { Comparison, Evidence, MatchDecision, MatchRecord, MatchWeights, Outcome } from './types.js';

/**
 * Fellegi-Sunter scoring and the safety rules that beat the score. The score
 * of a pair is the sum over fields of log2(m/u) of the level the field
 * reached; `upper` and `lower` cut it into link / review / none. A safety
 * rule never raises an outcome: it caps a would-be link at review.
 */

/** Identifier types (HL7 table 0203) that name one person at their authority. */
const STRONG_TYPES: ReadonlySet<string> = new Set([
  'MR',
  'MRN',
  'PI',
  'PT',
  'PN',
  'SS',
  'NI',
  'NH',
  'DL',
  'PPN',
  'PRN',
]);

// Rules, by name (carried in MatchDecision.rules and on the events).
export const RULE_IDENTIFIER_CONFLICT = 'identifier-conflict';
export const RULE_SEX_CONFLICT = 'sex-conflict';
export const RULE_TWINS = 'twins';
export const RULE_BIRTH_DATE_CONFLICT = 'birthdate-conflict';

/**
 * Given-name levels that say "a different first name", for the twins rule.
 * Not `jw-high` (one keystroke apart: a typo of one name far more often than
 * twins named so), nor `nickname` (one name). An initial may be either twin.
 */
const DIFFERENT_GIVEN: ReadonlySet<string> = new Set(['jw-mid', 'phonetic', 'initial', 'disagree']);

type WeightTable = ReadonlyMap<string, ReadonlyMap<string, number>>;
const tables = new WeakMap<MatchWeights, WeightTable>();

function weightTable(w: MatchWeights): WeightTable {
  const hit = tables.get(w);
  if (hit) return hit;
  const t = new Map<string, Map<string, number>>();
  for (const [field, levels] of Object.entries(w.fields)) {
    t.set(field, new Map(Object.entries(levels).map(([level, { m, u }]) => [level, Math.log2(m / u)])));
  }
  tables.set(w, t);
  return t;
}

/** log2(m/u) of one field level; 0 (no evidence either way) for a level the weights do not know. */
export function levelWeight(w: MatchWeights, field: string, level: string): number {
  return weightTable(w).get(field)?.get(level) ?? 0;
}

function strongConflict(a: MatchRecord, b: MatchRecord): boolean {
  // A typeless identifier is taken as strong: treating it so costs a review, not a wrong link.
  const strong = (r: MatchRecord, system: string) =>
    r.identifiers.some((i) => i.system === system && (i.type === null || STRONG_TYPES.has(i.type)));
  return conflictingSystems(a, b).some((s) => strong(a, s) || strong(b, s));
}

/** The safety rules a pair trips, by name, in a fixed order. */
export function safetyRules(a: MatchRecord, b: MatchRecord, c: Comparison): string[] {
  const rules: string[] = [];
  if (c.identifier === 'conflict' && strongConflict(a, b)) rules.push(RULE_IDENTIFIER_CONFLICT);
  if (c.sex === 'disagree') rules.push(RULE_SEX_CONFLICT);
  // One home: the same (or one keystroke apart) address line, or the same phone.
  const home =
    c.address === 'exact' || c.address === 'similar' || c.phone === 'agree' || c.phone === 'implied';
  if (c.birthDate === 'exact' && home && DIFFERENT_GIVEN.has(c.given ?? '')) rules.push(RULE_TWINS);
  // Birth dates in different years that are no one-digit typo or transposition of each other: a
  // parent and a child of one name at one address (Sr./Jr.) score like one person on the rest.
  if (c.birthDate === 'disagree') rules.push(RULE_BIRTH_DATE_CONFLICT);
  return rules;
}

/** The evidence and score of a comparison vector under a weights version. */
export function score(c: Comparison, w: MatchWeights): { score: number; evidence: Evidence[] } {
  let total = 0;
  const evidence: Evidence[] = [];
  for (const field of FIELDS) {
    const level = c[field] ?? 'missing';
    const weight = levelWeight(w, field, level);
    total += weight;
    evidence.push({ field, level, weight });
  }
  return { score: total, evidence };
}

/** The outcome the score alone gives. */
export function outcomeOf(s: number, w: MatchWeights): Outcome {
  if (s >= w.upper) return 'link';
  return s >= w.lower ? 'review' : 'none';
}

/**
 * The decision on a pair: outcome by the thresholds, capped at review by any
 * safety rule. `rules` lists the rules tripped when the score reached review
 * or link (below `lower` nothing is proposed, so nothing is overridden).
 */
export function decide(a: MatchRecord, b: MatchRecord, w: MatchWeights): MatchDecision {
  const c = compare(a, b);
  const { score: s, evidence } = score(c, w);
  const byScore = outcomeOf(s, w);
  if (byScore === 'none') return { outcome: 'none', score: s, evidence, rules: [] };
  const rules = safetyRules(a, b, c);
  return { outcome: rules.length > 0 ? 'review' : byScore, score: s, evidence, rules };
}
