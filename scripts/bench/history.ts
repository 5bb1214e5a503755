// The bench's history: one row per interleaved ratio per run, appended to
// docs/benchmarks/history.md by `npm run bench` (run.ts), so that a
// regression shows as a median that left the IQRs of earlier rows on the same
// machine. Pure parts (rows, merge, labels) are tested; the IO shell reads
// git and the file, and formats with the repo's prettier so that
// `prettier --check .` stays green.
//   npx tsx scripts/bench/history.ts docs/benchmarks/latest.json   # append a saved run
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { fmtRatio, type MachineFacts, type ScenarioResult } from './lib.js';

export interface HistoryRow {
  /** When the run started, UTC, to the second: with scenario and ratio, the row's identity. */
  date: string;
  commit: string;
  machine: string;
  /** The BENCH_* settings that differ from the defaults: rows of a quick run are not comparable with full ones. */
  settings: string;
  scenario: string;
  ratio: string;
  median: number;
  q1: number;
  q3: number;
  n: number;
}

/** What run.ts writes to latest.json: enough to rebuild the history rows later. */
export interface RunRecord {
  machine: MachineFacts;
  run?: { commit: string; settings: string };
  results: ScenarioResult[];
}

export const HISTORY_MARKER =
  '<!-- bench-history: the table below is appended to by scripts/bench/run.ts -->';

const HEADER = ['date (UTC)', 'commit', 'machine', 'settings', 'scenario', 'ratio', 'median', 'IQR', 'pairs'];

const TEMPLATE = `# Benchmark history

One row per ratio per run of \`npm run bench\` (or one of its scenarios), appended by
\`scripts/bench/run.ts\` when the run ends. Each ratio is the median over interleaved
hub/limit slice pairs of one run, with its interquartile range (q1–q3) and the number of
pairs; hub ÷ limit for throughput, limit ÷ hub for latency, so higher is better in every
row. A regression shows as a median below the IQRs of earlier rows of the same ratio on
the same machine and settings; see [How ratios are kept comparable](../benchmarks.md#how-ratios-are-kept-comparable-between-runs).

\`settings\` lists the \`BENCH_*\` variables that differ from the defaults; \`commit\` ends in
\`+dirty\` when the work tree had changes outside \`docs/\`. Ratios that are not measured in
interleaved pairs (hub records/s against Kafka's ProducerPerformance, which runs after the
services stop) are not listed. Runs before this table existed reported pooled ratios from
three or fewer slice pairs (docs/benchmarks.md, runs 1-10) and are not repeated here.

${HISTORY_MARKER}

`;

/** The rows of one run: every figure whose ratio has a spread over slice pairs. */
export function historyRows(run: RunRecord, meta: { commit: string; settings: string }): HistoryRow[] {
  const rows: HistoryRow[] = [];
  const date = run.machine.date.replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
  for (const r of run.results) {
    for (const f of r.figures) {
      const s = f.ratioSpread;
      if (!f.limit || !s || s.n === 0) continue;
      rows.push({
        date,
        commit: meta.commit,
        machine: machineLabel(run.machine),
        settings: meta.settings,
        scenario: r.key ?? r.scenario,
        ratio: f.name,
        median: s.median,
        q1: s.q1,
        q3: s.q3,
        n: s.n,
      });
    }
  }
  return rows;
}

export function machineLabel(m: Pick<MachineFacts, 'cores' | 'cpuModel' | 'memoryGiB'>): string {
  return `${m.cores} × ${m.cpuModel.replace(/\s+/g, ' ').trim()}, ${m.memoryGiB} GiB`;
}

/** The BENCH_* variables that are set (a run's knobs), or "defaults". */
export function settingsLabel(env: NodeJS.ProcessEnv): string {
  const set = Object.keys(env)
    .filter((k) => k.startsWith('BENCH_') && k !== 'BENCH_HISTORY' && env[k])
    .sort()
    .map((k) => `${k}=${env[k]}`);
  return set.length ? set.join(' ') : 'defaults';
}

const cell = (s: string) => s.replace(/\|/g, '/').replace(/\s+/g, ' ').trim();

export function formatRow(r: HistoryRow): string {
  const cells = [
    r.date,
    r.commit,
    r.machine,
    r.settings,
    r.scenario,
    r.ratio,
    fmtRatio(r.median),
    `${fmtRatio(r.q1)}–${fmtRatio(r.q3)}`,
    String(r.n),
  ];
  return `| ${cells.map(cell).join(' | ')} |`;
}

function cellsOf(line: string): string[] {
  return line
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((c) => c.trim());
}

/** Date, scenario and ratio: a run lists each ratio once, so appending a run twice adds nothing. */
function keyOf(cells: readonly string[]): string {
  return [cells[0], cells[4], cells[5]].join('\u0000');
}

const isSeparator = (line: string) => /^\|[\s:|-]+\|$/.test(line.trim());

/**
 * The history text with `rows` merged in: rows already there (same date,
 * scenario and ratio) are left as they are, new ones are added, and the
 * table is ordered by date (stable, so a run's rows keep their order).
 * Everything outside the table is kept; a missing file starts from the template.
 */
export function mergeHistory(
  existing: string | null,
  rows: readonly HistoryRow[],
): { text: string; added: number } {
  let base = existing && existing.trim() ? existing : TEMPLATE;
  if (!base.includes(HISTORY_MARKER)) base = `${base.trimEnd()}\n\n${HISTORY_MARKER}\n\n`;
  const at = base.indexOf(HISTORY_MARKER) + HISTORY_MARKER.length;
  const head = base.slice(0, at);
  const lines = base.slice(at).split('\n');
  let i = 0;
  while (i < lines.length && (lines[i] ?? '').trim() === '') i++;
  const table: string[] = [];
  while (i < lines.length && (lines[i] ?? '').trim().startsWith('|')) table.push((lines[i++] ?? '').trim());
  const tail = lines.slice(i).join('\n').trim();
  // A header and its separator line come first; the rest are rows.
  const hasHeader = table.length >= 2 && isSeparator(table[1] ?? '');
  const old = table.slice(hasHeader ? 2 : 0).filter((l) => !isSeparator(l));
  const seen = new Set(old.map((l) => keyOf(cellsOf(l))));
  const fresh: string[] = [];
  for (const r of rows) {
    const line = formatRow(r);
    const key = keyOf(cellsOf(line));
    if (seen.has(key)) continue;
    seen.add(key);
    fresh.push(line);
  }
  const body = [...old, ...fresh]
    .map((l, k) => ({ l, k, date: cellsOf(l)[0] ?? '' }))
    .sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.k - b.k))
    .map((x) => x.l);
  const out = [
    `| ${HEADER.join(' | ')} |`,
    `| ${HEADER.map((_, k) => (k >= 6 ? '---:' : '---')).join(' | ')} |`,
    ...body,
  ];
  return { text: `${head}\n\n${out.join('\n')}\n${tail ? `\n${tail}\n` : ''}`, added: fresh.length };
}

function git(repoDir: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('git', ['-C', repoDir, ...args], { timeout: 30_000 }, (err, stdout) =>
      resolve(err ? '' : stdout.trim()),
    );
  });
}

/**
 * The commit measured: short hash, "+dirty" when tracked or untracked files
 * outside docs/ differ from it (docs do not change what runs, and the
 * history file itself would otherwise mark every later run dirty).
 */
export async function commitLabel(repoDir: string): Promise<string> {
  const head = (await git(repoDir, ['rev-parse', '--short', 'HEAD'])) || 'unknown';
  const dirty = await git(repoDir, ['status', '--porcelain', '--', '.', ':(exclude)docs']);
  return dirty ? `${head}+dirty` : head;
}

/** Merges the rows into `file`, formatted as prettier would; how many rows were new. */
export async function appendHistory(file: string, rows: readonly HistoryRow[]): Promise<number> {
  const existing = await readFile(file, 'utf8').catch(() => null);
  const { text, added } = mergeHistory(existing, rows);
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(file)) ?? {};
  const formatted = await prettier.format(text, { ...options, filepath: file });
  if (formatted !== existing) await writeFile(file, formatted);
  return added;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [json, file = 'docs/benchmarks/history.md'] = process.argv.slice(2);
  if (!json) {
    process.stderr.write('usage: npx tsx scripts/bench/history.ts <latest.json> [history.md]\n');
    process.exit(2);
  }
  const run = JSON.parse(await readFile(json, 'utf8')) as RunRecord;
  const meta = run.run ?? { commit: 'unknown', settings: 'unknown' };
  const added = await appendHistory(file, historyRows(run, meta));
  process.stdout.write(`${added} row(s) added to ${file}\n`);
}
