import {
  blockingKeys,
  compare,
  safetyRules,
  score,
  toMatchRecord,
  type CandidateSource,
  type Comparison,
  type MatchRecord,
  type MatchWeights,
} from '../../libs/identity/matching/index.js';
import { rng } from '../../test/support/hospital-day.js';
import { generatePopulation, type PopulationRecord } from '../../test/support/population.js';

/** Shared by the EMPI benchmark (scripts/bench/empi.ts) and the training script (scripts/empi-train.ts). */

/** The blocking index in memory: key → records, in insertion order. */
export class MemoryIndex implements CandidateSource {
  private readonly blocks = new Map<string, MatchRecord[]>();

  add(r: MatchRecord, keys: readonly string[] = blockingKeys(r)): void {
    for (const k of keys) {
      const b = this.blocks.get(k);
      if (b) b.push(r);
      else this.blocks.set(k, [r]);
    }
  }

  candidates(keys: readonly string[]): readonly MatchRecord[] {
    const out: MatchRecord[] = [];
    for (const k of keys) {
      const b = this.blocks.get(k);
      if (b) out.push(...b);
    }
    return out;
  }
}

export interface Population {
  seed: number;
  raw: PopulationRecord[];
  records: MatchRecord[];
  /** patientId → ground-truth person id. */
  person: Map<string, string>;
}

export function population(seed: number, records: number): Population {
  const raw = generatePopulation({ seed, records });
  return {
    seed,
    raw,
    records: raw.map((r) => toMatchRecord(r.patientId, r.demographics)),
    person: new Map(raw.map((r) => [r.patientId, r.personId])),
  };
}

export interface CandidatePair {
  a: MatchRecord;
  b: MatchRecord;
  same: boolean;
}

/** Every pair blocking produces when the records arrive in order (each against those before it), once. */
export function* candidatePairs(p: Population): Generator<CandidatePair> {
  const index = new MemoryIndex();
  for (const r of p.records) {
    const keys = blockingKeys(r);
    const seen = new Set<string>();
    for (const c of index.candidates(keys)) {
      if (seen.has(c.patientId)) continue;
      seen.add(c.patientId);
      yield { a: r, b: c, same: p.person.get(r.patientId) === p.person.get(c.patientId) };
    }
    index.add(r, keys);
  }
}

/**
 * `n` record pairs drawn uniformly at random (with replacement, never a
 * record with itself) under `seed`: the sample u is measured on. In a
 * population of 100,000 records with ~50,000 true pairs a random pair is a
 * match with probability ~1e-5 (23 of the trainer's 2,000,000), so the sample
 * is all but entirely non-matches.
 */
export function* randomPairs(p: Population, n: number, seed: number): Generator<CandidatePair> {
  const next = rng(seed);
  const size = p.records.length;
  if (size < 2) return;
  for (let k = 0; k < n; k++) {
    const i = Math.floor(next() * size);
    let j = Math.floor(next() * (size - 1));
    if (j >= i) j++;
    const a = p.records[i];
    const b = p.records[j];
    if (a && b) yield { a, b, same: p.person.get(a.patientId) === p.person.get(b.patientId) };
  }
}

export interface ScoredPair {
  score: number;
  capped: boolean;
  same: boolean;
}

/** Candidate pairs scored under weights (thresholds ignored), with whether a safety rule caps them. */
export function scoredPairs(p: Population, w: MatchWeights): ScoredPair[] {
  const out: ScoredPair[] = [];
  for (const { a, b, same } of candidatePairs(p)) {
    const c: Comparison = compare(a, b);
    out.push({ score: score(c, w).score, capped: safetyRules(a, b, c).length > 0, same });
  }
  return out;
}

/** Local precision: a pair is auto-linked only when nearly all pairs scoring like it (within 1 bit) are true. */
export const LOCAL_PRECISION = 0.99;
const STEP = 0.25;

/**
 * `upper`: walking down from the top score in steps of 0.25 bits, the last
 * score s at which (a) the uncapped pairs scoring >= s have precision >=
 * target and (b) those scoring in [s, s + 1) have precision >= LOCAL_PRECISION.
 * (b) keeps the cut where the marginal auto-link is still almost surely right,
 * not merely where the many easy links above it dilute the wrong ones.
 */
export function chooseUpper(pairs: readonly ScoredPair[], target: number): number {
  const auto = pairs.filter((p) => !p.capped).sort((x, y) => y.score - x.score);
  // trueAbove[k]: true pairs among the k highest-scoring.
  const trueAbove = [0];
  for (const p of auto) trueAbove.push((trueAbove[trueAbove.length - 1] ?? 0) + (p.same ? 1 : 0));
  const top = auto[0]?.score ?? 0;
  let upper = Math.ceil(top / STEP) * STEP;
  let end = 0; // auto[0, end) score >= s
  let bandStart = 0; // auto[bandStart, end) score in [s, s + 1)
  for (let s = upper; s > -50; s -= STEP) {
    while (end < auto.length && (auto[end]?.score ?? -Infinity) >= s) end++;
    while (bandStart < end && (auto[bandStart]?.score ?? -Infinity) >= s + 1) bandStart++;
    const setTrue = trueAbove[end] ?? 0;
    const bandTrue = setTrue - (trueAbove[bandStart] ?? 0);
    const setOk = end === 0 || setTrue / end >= target;
    const bandOk = end === bandStart || bandTrue / (end - bandStart) >= LOCAL_PRECISION;
    if (!setOk || !bandOk) break;
    upper = s;
  }
  return upper;
}

/** The highest score s such that all pairs scoring >= s hold >= target of the true pairs. */
export function chooseLower(pairs: readonly ScoredPair[], truePairs: number, target: number): number {
  const sorted = pairs.filter((p) => p.same).sort((x, y) => y.score - x.score);
  const need = Math.ceil(target * truePairs);
  const at = sorted[need - 1];
  return at ? Math.floor(at.score * 100) / 100 : (sorted[sorted.length - 1]?.score ?? 0);
}
