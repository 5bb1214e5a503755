/**
 * Master patient index benchmark: `npm run bench:empi`.
 *
 * Generates a synthetic population (test/support/population.ts; EMPI_SEED,
 * default 20261206; EMPI_RECORDS, default 100000), then matches it
 * incrementally as a matcher would: each record, in arrival order, against
 * an in-memory blocking index of the records before it, through `matchOne`
 * with the committed weights; then the record joins the index. The time of
 * each record (blocking keys, candidates, decisions, index insert) is taken
 * with performance.now().
 *
 * Quality is pairwise against the ground truth: a predicted pair is right
 * when both records belong to one person; recall is over every true pair of
 * the population (C(k, 2) per person of k records), so pairs blocking never
 * compared count as missed. Prints a table and writes .hub/bench/empi.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  blockingKeys,
  DEFAULT_WEIGHTS,
  matchOne,
  type MatchWeights,
} from '../../libs/identity/matching/index.js';
import { DEFAULT_RATES, truePairCount } from '../../test/support/population.js';
import { MemoryIndex, population, type Population } from './empi-lib.js';

const SEED = Number(process.env.EMPI_SEED ?? 20261206);
const RECORDS = Number(process.env.EMPI_RECORDS ?? 100_000);
const OUT_DIR = '.hub/bench';

interface Tally {
  link: number;
  linkTrue: number;
  review: number;
  reviewTrue: number;
  rules: Record<string, number>;
}

async function run(p: Population, w: MatchWeights) {
  const index = new MemoryIndex();
  const latencies = new Float64Array(p.records.length);
  const t: Tally = { link: 0, linkTrue: 0, review: 0, reviewTrue: 0, rules: {} };
  const start = performance.now();
  for (let i = 0; i < p.records.length; i++) {
    const r = p.records[i];
    if (!r) continue;
    const t0 = performance.now();
    const decisions = await matchOne(r, index, w);
    index.add(r, blockingKeys(r));
    latencies[i] = performance.now() - t0;
    for (const { candidate, decision } of decisions) {
      const same = p.person.get(r.patientId) === p.person.get(candidate.patientId);
      if (decision.outcome === 'link') {
        t.link++;
        if (same) t.linkTrue++;
      } else {
        t.review++;
        if (same) t.reviewTrue++;
      }
      for (const rule of decision.rules) t.rules[rule] = (t.rules[rule] ?? 0) + 1;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  return { t, seconds, latencies };
}

function quantile(xs: Float64Array, q: number): number {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

const f1 = (p: number, r: number) => (p + r === 0 ? 0 : (2 * p * r) / (p + r));
const fmt = (x: number, d = 4) => x.toFixed(d);

async function main(): Promise<void> {
  const g0 = performance.now();
  const p = population(SEED, RECORDS);
  const genSeconds = (performance.now() - g0) / 1000;
  const truePairs = truePairCount(p.raw);
  const persons = new Set(p.raw.map((r) => r.personId)).size;
  console.log(
    `seed ${SEED}: ${p.records.length} records of ${persons} persons, ${truePairs} true pairs (generated in ${genSeconds.toFixed(1)} s)`,
  );
  const { t, seconds, latencies } = await run(p, DEFAULT_WEIGHTS);
  const autoP = t.link === 0 ? 1 : t.linkTrue / t.link;
  const autoR = t.linkTrue / truePairs;
  const bothP = (t.linkTrue + t.reviewTrue) / Math.max(1, t.link + t.review);
  const bothR = (t.linkTrue + t.reviewTrue) / truePairs;
  const result = {
    seed: SEED,
    records: p.records.length,
    persons,
    truePairs,
    weightsVersion: DEFAULT_WEIGHTS.version,
    upper: DEFAULT_WEIGHTS.upper,
    lower: DEFAULT_WEIGHTS.lower,
    auto: { pairs: t.link, precision: autoP, recall: autoR, f1: f1(autoP, autoR) },
    autoPlusReview: { pairs: t.link + t.review, precision: bothP, recall: bothR, f1: f1(bothP, bothR) },
    reviewQueue: t.review,
    reviewTrue: t.reviewTrue,
    rules: t.rules,
    recordsPerSecond: p.records.length / seconds,
    latencyMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: quantile(latencies, 1) },
    node: process.version,
    rates: DEFAULT_RATES,
  };
  printTable(result);
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(`${OUT_DIR}/empi.json`, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${OUT_DIR}/empi.json`);
}

function printTable(r: {
  auto: { pairs: number; precision: number; recall: number; f1: number };
  autoPlusReview: { pairs: number; precision: number; recall: number; f1: number };
  reviewQueue: number;
  recordsPerSecond: number;
  latencyMs: { p50: number; p99: number };
}): void {
  const rows: [string, string, string][] = [
    ['auto-link precision', fmt(r.auto.precision), '>= 0.999'],
    ['auto-link recall', fmt(r.auto.recall), ''],
    ['auto-link F1', fmt(r.auto.f1), ''],
    ['auto-link pairs', String(r.auto.pairs), ''],
    ['auto+review precision', fmt(r.autoPlusReview.precision), ''],
    ['auto+review recall', fmt(r.autoPlusReview.recall), '>= 0.98'],
    ['auto+review F1', fmt(r.autoPlusReview.f1), ''],
    ['review queue (pairs)', String(r.reviewQueue), ''],
    ['throughput (records/s)', r.recordsPerSecond.toFixed(0), '>= 2000'],
    ['latency p50 (ms)', fmt(r.latencyMs.p50, 3), ''],
    ['latency p99 (ms)', fmt(r.latencyMs.p99, 3), ''],
  ];
  console.log('\n| measure | value | goal |\n| --- | ---: | --- |');
  for (const [k, v, g] of rows) console.log(`| ${k} | ${v} | ${g} |`);
}

await main();
