/**
 * Trains the master patient index's weights: `npm run empi:train`.
 *
 * 1. u per field level from U_PAIRS record pairs drawn at random (seed
 *    U_SEED) from a synthetic population (seed EM_SEED): almost all are
 *    non-matches, and unlike candidate pairs they are not pre-selected to
 *    agree on the blocking fields (u measured on candidate pairs made an
 *    exact birth date weigh less than a transposed one).
 * 2. m by EM (unsupervised: no labels) over the candidate pairs blocking
 *    produces on that population; EM's own u there describes the blocked
 *    non-matches only and is replaced by step 1's (see em.ts for why u is
 *    not held fixed during EM).
 * 3. The thresholds on a second, held-out population (seed THRESHOLD_SEED;
 *    neither seed is the benchmark's): `upper` is the lowest score at which the
 *    pairs no safety rule caps reach auto-link precision PRECISION_TARGET;
 *    `lower` the highest score at which link + review still reach
 *    RECALL_TARGET of all true pairs (including those blocking never
 *    compared). The ground truth is used here only, never by EM.
 *
 * Writes libs/identity/matching/weights.json. Seeded and deterministic.
 */
import { writeFileSync } from 'node:fs';
import { estimateWeights, levelShares, withU, type MatchWeights } from '../libs/identity/matching/index.js';
import { compare } from '../libs/identity/matching/compare.js';
import {
  candidatePairs,
  chooseLower,
  chooseUpper,
  population,
  randomPairs,
  scoredPairs,
  type CandidatePair,
} from './bench/empi-lib.js';
import { DEFAULT_RATES, truePairCount } from '../test/support/population.js';

export const WEIGHTS_VERSION = 'fs-2026-12-06.2';
export const EM_SEED = 7001;
export const THRESHOLD_SEED = 7002;
export const U_SEED = 7003;
// 2 million draws: a level as rare as the probability floor (1e-4) is still seen ~200 times.
export const U_PAIRS = 2_000_000;
const RECORDS = 100_000;
// Targets above the goals (0.999, 0.98): margin for a population the thresholds were not fitted on.
export const PRECISION_TARGET = 0.9995;
export const RECALL_TARGET = 0.985;

const OUT = new URL('../libs/identity/matching/weights.json', import.meta.url);

function main(): void {
  const t0 = performance.now();
  const em = population(EM_SEED, RECORDS);
  const comparisons = function* (pairs: Iterable<CandidatePair>) {
    for (const { a, b } of pairs) yield compare(a, b);
  };
  const u = levelShares(comparisons(randomPairs(em, U_PAIRS, U_SEED)));
  const fit = estimateWeights(comparisons(candidatePairs(em)));
  const fields = withU(fit.fields, u.shares);
  console.log(
    `\nu: ${u.pairs} random pairs; m by EM: ${fit.pairs} candidate pairs, ${fit.iterations} iterations, match share ${fit.matchShare.toFixed(4)}`,
  );
  const draft: MatchWeights = { version: WEIGHTS_VERSION, fields, upper: 0, lower: 0 };
  const held = population(THRESHOLD_SEED, RECORDS);
  const scored = scoredPairs(held, draft);
  const truePairs = truePairCount(held.raw);
  const upper = chooseUpper(scored, PRECISION_TARGET);
  const lower = Math.min(chooseLower(scored, truePairs, RECALL_TARGET), upper);
  const weights = {
    version: WEIGHTS_VERSION,
    upper,
    lower,
    fields,
    training: {
      method:
        'u from seeded random record pairs; m by EM (unsupervised) on candidate pairs; thresholds on a held-out labelled population',
      emSeed: EM_SEED,
      uSeed: U_SEED,
      uPairs: u.pairs,
      thresholdSeed: THRESHOLD_SEED,
      records: RECORDS,
      emPairs: fit.pairs,
      emIterations: fit.iterations,
      matchShare: Number(fit.matchShare.toFixed(6)),
      precisionTarget: PRECISION_TARGET,
      recallTarget: RECALL_TARGET,
      rates: DEFAULT_RATES,
    },
  };
  writeFileSync(OUT, `${JSON.stringify(weights, null, 2)}\n`);
  console.log(
    `upper ${upper}, lower ${lower}; wrote ${OUT.pathname} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

main();
