// Figures of one fault test: printed for the run's log and written to
// .hub/faults/<name>.json, from which scripts/faults-nightly.sh assembles the
// committed summary (docs/reliability-last-run.md).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoDir } from './processes.js';

export type FaultFigures = Record<string, number | string | boolean>;

export function reportFault(name: string, title: string, figures: FaultFigures): void {
  const dir = join(repoDir, '.hub', 'faults');
  mkdirSync(dir, { recursive: true });
  const at = new Date().toISOString();
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ name, title, at, figures }, null, 2)}\n`);
  const width = Math.max(...Object.keys(figures).map((k) => k.length));
  const rows = Object.entries(figures).map(([k, v]) => `  ${k.padEnd(width)}  ${String(v)}`);
  process.stdout.write(`[fault] ${name}: ${title}\n${rows.join('\n')}\n`);
}
