import { FIELDS, FIELD_LEVELS, NEUTRAL_LEVELS, type Field } from './compare.js';
import type { Comparison } from './types.js';

/**
 * Unsupervised estimation of the Fellegi-Sunter m and u probabilities by
 * expectation-maximisation over the comparison vectors of candidate pairs
 * (the pairs blocking produces), under the model's usual assumption that
 * fields agree independently given match status. No labels are used. Pure
 * and deterministic: same vectors in, same weights out.
 *
 * u should not come from the candidate pairs: blocking admits only pairs
 * that already agree on a blocking field (birth date, family name, phone),
 * so among them a non-match agrees on that field far more often than two
 * records drawn at random, and the field's agreement weight collapses (under
 * fs-2026-12-06.1 an exact birth date weighed +1.2 bits, less than a
 * transposed one at +4.5). So EM's u is only a nuisance class here (the
 * blocked non-matches, which EM needs to separate out the matches) and the
 * weights take u from random record pairs instead (`levelShares` over a
 * seeded sample, almost all non-matches; `withU`).
 *
 * EM with u held fixed at the random-pair values does not work on these
 * pairs: every candidate pair looks far more like a match than a random pair
 * does, so the match share ran to 1.0 and m became the candidate pairs' own
 * level shares (a different given name cost 0.3 bits).
 */

export interface EmOptions {
  /** Upper bound on iterations. */
  maxIterations?: number;
  /** Stop when no probability moves by more than this. */
  tolerance?: number;
  /** Starting share of matches among the candidate pairs. */
  initialMatchShare?: number;
}

/** field → level → probability. */
export type LevelShares = Record<string, Record<string, number>>;

export interface EmResult {
  fields: Record<string, Record<string, { m: number; u: number }>>;
  /** Estimated share of matches among the candidate pairs. */
  matchShare: number;
  iterations: number;
  pairs: number;
}

type Probs = number[][]; // [field][level]

// Index helpers: the arrays are built with one slot per field and level, so a
// miss is a programming error, read as 0 rather than asserted with `!`.
const at = (row: readonly number[] | undefined, i: number): number => row?.[i] ?? 0;
const cell = (p: Probs, f: number, l: number): number => at(p[f], l);
function add(p: Probs, f: number, l: number, x: number): void {
  const row = p[f];
  if (row) row[l] = at(row, l) + x;
}

interface Pattern {
  levels: number[]; // level index per field
  count: number;
}

function levelIndex(field: Field, level: string | undefined): number {
  const levels: readonly string[] = FIELD_LEVELS[field];
  const i = levels.indexOf(level ?? 'missing');
  return i >= 0 ? i : levels.length - 1;
}

/** Identical vectors are weighed once with their count: EM then runs over a few thousand patterns. */
function patterns(comparisons: Iterable<Comparison>): Pattern[] {
  const byKey = new Map<string, Pattern>();
  for (const c of comparisons) {
    const levels = FIELDS.map((f) => levelIndex(f, c[f]));
    const k = levels.join(',');
    const p = byKey.get(k);
    if (p) p.count += 1;
    else byKey.set(k, { levels, count: 1 });
  }
  return [...byKey.values()];
}

function frequencies(ps: readonly Pattern[], total: number): Probs {
  return FIELDS.map((f, fi) => {
    const n = FIELD_LEVELS[f].length;
    const counts = new Array<number>(n).fill(0.5);
    for (const p of ps) {
      const l = at(p.levels, fi);
      counts[l] = at(counts, l) + p.count;
    }
    return counts.map((x) => x / (total + 0.5 * n));
  });
}

/** Starting m: agreement levels likely, disagreement unlikely; missing as often as overall. */
function initialM(freq: Probs): Probs {
  return FIELDS.map((f, fi) => {
    const levels: readonly string[] = FIELD_LEVELS[f];
    const raw = levels.map((l, k) => {
      if (NEUTRAL_LEVELS.has(l) || l === 'none') return cell(freq, fi, k);
      if (l === 'disagree' || l === 'conflict') return 0.02;
      return Math.pow(0.5, k);
    });
    const sum = raw.reduce((a, b) => a + b, 0);
    return raw.map((x) => x / sum);
  });
}

/** neutral[f][l]: the level carries no evidence (see NEUTRAL_LEVELS). */
const NEUTRAL: readonly (readonly boolean[])[] = FIELDS.map((f) =>
  FIELD_LEVELS[f].map((l: string) => NEUTRAL_LEVELS.has(l)),
);

function posterior(p: Pattern, m: Probs, u: Probs, share: number): number {
  let lm = Math.log(share);
  let lu = Math.log(1 - share);
  p.levels.forEach((l, fi) => {
    if (NEUTRAL[fi]?.[l]) return;
    lm += Math.log(cell(m, fi, l));
    lu += Math.log(cell(u, fi, l));
  });
  return 1 / (1 + Math.exp(lu - lm));
}

/** One M step: re-estimated m, u and share from the posteriors; a prior of one pair's weight at the overall frequency keeps every probability above zero. */
function maximise(ps: readonly Pattern[], g: readonly number[], freq: Probs, total: number) {
  const mc = freq.map((row) => row.map((x) => x));
  const uc = freq.map((row) => row.map((x) => x));
  let gm = 0;
  ps.forEach((p, i) => {
    const w = at(g, i) * p.count;
    gm += w;
    p.levels.forEach((l, fi) => {
      add(mc, fi, l, w);
      add(uc, fi, l, p.count - w);
    });
  });
  const m = mc.map((row) => row.map((x) => x / (gm + 1)));
  const u = uc.map((row) => row.map((x) => x / (total - gm + 1)));
  return { m, u, share: gm / total };
}

function maxDelta(a: Probs, b: Probs): number {
  let d = 0;
  a.forEach((row, i) => row.forEach((x, j) => (d = Math.max(d, Math.abs(x - cell(b, i, j))))));
  return d;
}

/**
 * No level is taken as rarer than 1 in 10,000 pairs in either class: a level
 * seen a handful of times has no reliable probability, and without a floor
 * one never-seen combination would carry ±15 bits on its own.
 */
const PROB_FLOOR = 1e-4;

function round(x: number): number {
  return Number(Math.max(x, PROB_FLOOR).toPrecision(6));
}

/**
 * How often each level occurs among the comparisons, per field (a pseudo-count
 * of half a pair per level keeps unseen levels above zero). Over random record
 * pairs this is u.
 */
export function levelShares(comparisons: Iterable<Comparison>): { shares: LevelShares; pairs: number } {
  const ps = patterns(comparisons);
  const total = ps.reduce((a, p) => a + p.count, 0);
  const freq = frequencies(ps, total);
  const shares: LevelShares = {};
  FIELDS.forEach((f, fi) => {
    shares[f] = Object.fromEntries(FIELD_LEVELS[f].map((l: string, k) => [l, cell(freq, fi, k)]));
  });
  return { shares, pairs: total };
}

/**
 * The weights with u replaced by `u` (random-pair level shares), floored and
 * rounded like every estimate; m as estimated. A neutral level keeps m = u:
 * weight 0.
 */
export function withU(fields: EmResult['fields'], u: LevelShares): EmResult['fields'] {
  return Object.fromEntries(
    Object.entries(fields).map(([f, levels]) => [
      f,
      Object.fromEntries(
        Object.entries(levels).map(([l, p]) => [
          l,
          NEUTRAL_LEVELS.has(l) ? p : { m: p.m, u: round(u[f]?.[l] ?? 0) },
        ]),
      ),
    ]),
  );
}

/** EM over candidate pairs' comparison vectors → m and u per field level. */
export function estimateWeights(comparisons: Iterable<Comparison>, opts: EmOptions = {}): EmResult {
  const ps = patterns(comparisons);
  const total = ps.reduce((a, p) => a + p.count, 0);
  const freq = frequencies(ps, total);
  let m = initialM(freq);
  let u = freq;
  let share = opts.initialMatchShare ?? 0.1;
  let iterations = 0;
  for (; iterations < (opts.maxIterations ?? 1000); iterations++) {
    const g = ps.map((p) => posterior(p, m, u, share));
    const next = maximise(ps, g, freq, total);
    const delta = Math.max(maxDelta(m, next.m), maxDelta(u, next.u));
    ({ m, u, share } = next);
    if (delta < (opts.tolerance ?? 1e-9)) break;
  }
  const fields: EmResult['fields'] = {};
  FIELDS.forEach((f, fi) => {
    fields[f] = Object.fromEntries(
      FIELD_LEVELS[f].map((l: string, k) => {
        // A neutral level reports how often it occurs (m = u = its share of all pairs): weight 0.
        if (NEUTRAL_LEVELS.has(l)) return [l, { m: round(cell(freq, fi, k)), u: round(cell(freq, fi, k)) }];
        return [l, { m: round(cell(m, fi, k)), u: round(cell(u, fi, k)) }];
      }),
    );
  });
  return { fields, matchShare: share, iterations, pairs: total };
}
