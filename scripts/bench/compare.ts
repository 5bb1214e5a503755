// Compares the ratios of two benchmark results (latest.json files of two
// runs): each ratio's median over slice pairs with its IQR, side by side.
// A median outside the other run's IQR, with IQRs that do not overlap, is
// flagged: the runs differ by more than each run's own spread.
//   npx tsx scripts/bench/compare.ts run1.json run2.json
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { fmtRatio, ratioOf, type Figure, type ScenarioResult } from './lib.js';

interface Run {
  results: ScenarioResult[];
}

export interface RatioComparison {
  name: string;
  a: number;
  b: number;
  /** |a - b| over the larger of the two. */
  diff: number;
  aIqr?: [number, number];
  bIqr?: [number, number];
  /** Both runs have an IQR and the two do not overlap. */
  apart: boolean;
}

const iqrOf = (f: Figure): [number, number] | undefined =>
  f.ratioSpread && f.ratioSpread.n > 0 ? [f.ratioSpread.q1, f.ratioSpread.q3] : undefined;

export function compareRatios(a: Run, b: Run): RatioComparison[] {
  const rows: RatioComparison[] = [];
  for (const ra of a.results) {
    const rb = b.results.find((r) => r.scenario === ra.scenario);
    if (!rb) continue;
    for (const fa of ra.figures) {
      const fb = rb.figures.find((f) => f.name === fa.name);
      if (!fb) continue;
      const x = ratioOf(fa, ra.figures);
      const y = ratioOf(fb, rb.figures);
      if (x === undefined || y === undefined) continue;
      const top = Math.max(x, y);
      const aIqr = iqrOf(fa);
      const bIqr = iqrOf(fb);
      const apart = Boolean(aIqr && bIqr && (aIqr[1] < bIqr[0] || bIqr[1] < aIqr[0]));
      rows.push({
        name: fa.name,
        a: x,
        b: y,
        diff: top > 0 ? Math.abs(x - y) / top : 0,
        ...(aIqr ? { aIqr } : {}),
        ...(bIqr ? { bIqr } : {}),
        apart,
      });
    }
  }
  return rows;
}

const withIqr = (x: number, iqr?: [number, number]) =>
  iqr ? `${fmtRatio(x)} (${fmtRatio(iqr[0])}–${fmtRatio(iqr[1])})` : fmtRatio(x);

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [fa, fb] = process.argv.slice(2);
  if (!fa || !fb) {
    process.stderr.write('usage: npx tsx scripts/bench/compare.ts <run1.json> <run2.json>\n');
    process.exit(2);
  }
  const a = JSON.parse(await readFile(fa, 'utf8')) as Run;
  const b = JSON.parse(await readFile(fb, 'utf8')) as Run;
  const rows = compareRatios(a, b);
  const out = [
    '| ratio | run A median (IQR) | run B median (IQR) | difference |',
    '| --- | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    out.push(
      `| ${r.name} | ${withIqr(r.a, r.aIqr)} | ${withIqr(r.b, r.bIqr)} | ${(r.diff * 100).toFixed(0)}%${r.apart ? ' (IQRs apart)' : ''} |`,
    );
  }
  const apart = rows.filter((r) => r.apart).length;
  out.push('', `${apart} of ${rows.length} ratios with IQRs that do not overlap.`);
  process.stdout.write(`${out.join('\n')}\n`);
}
