// Compares the ratios of two benchmark results (latest.json files of two
// runs): the issue asks for ratios within 15% of each other between runs.
//   npx tsx scripts/bench/compare.ts run1.json run2.json
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { ratioOf, type ScenarioResult } from './lib.js';

interface Run {
  results: ScenarioResult[];
}

export function compareRatios(a: Run, b: Run): { name: string; a: number; b: number; diff: number }[] {
  const rows: { name: string; a: number; b: number; diff: number }[] = [];
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
      rows.push({ name: fa.name, a: x, b: y, diff: top > 0 ? Math.abs(x - y) / top : 0 });
    }
  }
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [fa, fb] = process.argv.slice(2);
  if (!fa || !fb) {
    process.stderr.write('usage: npx tsx scripts/bench/compare.ts <run1.json> <run2.json>\n');
    process.exit(2);
  }
  const a = JSON.parse(await readFile(fa, 'utf8')) as Run;
  const b = JSON.parse(await readFile(fb, 'utf8')) as Run;
  const rows = compareRatios(a, b);
  const out = ['| ratio | run A | run B | difference |', '| --- | ---: | ---: | ---: |'];
  for (const r of rows) {
    out.push(
      `| ${r.name} | ${r.a.toFixed(2)} | ${r.b.toFixed(2)} | ${(r.diff * 100).toFixed(0)}%${r.diff > 0.15 ? ' (> 15%)' : ''} |`,
    );
  }
  const within = rows.filter((r) => r.diff <= 0.15).length;
  out.push('', `${within} of ${rows.length} ratios within 15%.`);
  process.stdout.write(`${out.join('\n')}\n`);
}
