// Shared parts of the benchmark scenarios: the stack they run on, machine
// facts, percentiles, progress display and the result format. Each scenario
// reports hub figures next to the limit the same machine reached in the same
// run, so that the ratio, not the absolute number, is what compares runs.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import pg from 'pg';
import { startStack, stackConfig, type StackConfig, type StackHandle } from '../../libs/stack/index.js';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** Name of the limit figure this one is compared with, when there is one. */
  limit?: string;
  /** Whether a higher value is better (throughput) or lower (latency, memory). */
  better: 'higher' | 'lower';
  /**
   * The ratio to the limit in each interleaved hub/limit slice pair, with
   * their median and IQR. When present, the median is the ratio the report
   * shows: both sides of each pair saw the machine of the same few seconds.
   */
  ratioSpread?: Spread;
  /** The figure itself in each slice; when present, `value` is its median. */
  valueSpread?: Spread;
}

/** Values in measurement order (drift shows), with their median and quartiles. */
export interface Spread {
  values: number[];
  n: number;
  median: number;
  q1: number;
  q3: number;
}

export interface ScenarioResult {
  scenario: string;
  /** The scenario's name on the command line (hl7, replay, ...), set by run.ts. */
  key?: string;
  /** Warm-up, duration, load and record sizes, said in words. */
  setup: string;
  figures: Figure[];
  notes?: string[];
}

export interface BenchEnv {
  stack: StackHandle;
  cfg: StackConfig;
  databaseUrl: string;
  /** Seconds each measured phase runs (BENCH_SECONDS, default 15). */
  seconds: number;
  /** Scale factor for record counts (BENCH_SCALE, default 1). */
  scale: number;
  /**
   * Hub/limit slice pairs each measured phase is cut into (BENCH_SLICES,
   * default 5): the two sides alternate so that they share the machine's
   * load of the moment, and each ratio is the median of the pairs' ratios
   * with its IQR. Five is the fewest for which the quartiles are not
   * simply the extremes' neighbours.
   */
  slices: number;
  /**
   * Seconds of the HL7 open-loop phase per side (BENCH_OPEN_SECONDS, default
   * 3 x seconds): its p99 rests on a few stalls (GC, a projector commit), so
   * it needs more of them than a throughput figure does to repeat.
   */
  openSeconds: number;
  /**
   * Open-loop rate in msg/s (BENCH_OPEN_RATE; unset or 0: half of this
   * run's 32-connection maximum). Relative by default because this VM's
   * speed moves by 30% and more between runs: at a fixed 1,250 msg/s the
   * hub kept the machine 90-95% busy in a slow spell (ACK p99 183 ms) and
   * far less in a fast one, so the latency ratios measured the VM, not the
   * hub. At half of the run's own maximum the load is the same share of
   * what the machine can do that day.
   */
  openRate: number | null;
  log(msg: string): void;
}

export const BENCH_PORTS = { kafka: 19092, controller: 19093, registry: 18081 };

/**
 * MLLP connections the adapter and the null listener accept from the load
 * generator (one peer): each slice closes its connections and opens new
 * ones, and the server may not have seen the last slice's closes yet.
 */
export const BENCH_MAX_CONNECTIONS_PER_PEER = 256;

/**
 * The bench stack: its own ports, data dir, registry database and app
 * database, so a benchmark never touches the dev event store or a test run.
 */
export function benchStackConfig(env: NodeJS.ProcessEnv = process.env): StackConfig {
  const base = stackConfig('dev', env);
  const u = new URL(base.postgres.url);
  u.pathname = '/hub_bench';
  return stackConfig('dev', {
    ...env,
    HUB_DATA_DIR: join(base.repoDir, '.hub', 'bench'),
    HUB_KAFKA_PORT: String(BENCH_PORTS.kafka),
    HUB_KAFKA_CONTROLLER_PORT: String(BENCH_PORTS.controller),
    HUB_REGISTRY_PORT: String(BENCH_PORTS.registry),
    HUB_REGISTRY_DATABASE: 'hub_registry_bench',
    DATABASE_URL: u.toString(),
  });
}

export async function openBenchEnv(log: (m: string) => void): Promise<BenchEnv> {
  const cfg = benchStackConfig();
  const stack = await startStack(cfg, { log });
  const seconds = Number(process.env['BENCH_SECONDS'] ?? 15);
  return {
    stack,
    cfg,
    databaseUrl: stack.databaseUrl,
    seconds,
    scale: Number(process.env['BENCH_SCALE'] ?? 1),
    slices: Number(process.env['BENCH_SLICES'] ?? 5),
    openSeconds: Number(process.env['BENCH_OPEN_SECONDS'] ?? 3 * seconds),
    openRate: Number(process.env['BENCH_OPEN_RATE'] ?? 0) || null,
    log,
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  // Undefined only when there is nothing to rank (i is -1).
  return sorted[i] ?? Number.NaN;
}

/** The middle element by `key` (the upper one of an even count): the limit of a repeated measurement. */
export function medianBy<T>(xs: readonly T[], key: (x: T) => number): T | undefined {
  return [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)];
}

/**
 * Quantile p (0..1) of sorted values, interpolated linearly between the
 * order statistics (R's type 7, numpy's default), so that the quartiles of
 * five pairs are the 2nd and 4th values and do not jump with one outlier.
 */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const h = (sorted.length - 1) * Math.min(1, Math.max(0, p));
  const lo = Math.floor(h);
  const a = sorted[lo] ?? Number.NaN;
  const b = sorted[Math.min(sorted.length - 1, lo + 1)] ?? a;
  return a + (h - lo) * (b - a);
}

/** Median and interquartile range of repeated measurements (NaN and infinities left out). */
export function spreadOf(values: readonly number[]): Spread {
  const kept = values.filter((x) => Number.isFinite(x));
  const s = [...kept].sort((a, b) => a - b);
  return {
    values: kept,
    n: s.length,
    median: quantile(s, 0.5),
    q1: quantile(s, 0.25),
    q3: quantile(s, 0.75),
  };
}

/**
 * The ratio of each interleaved hub/limit pair (hub / limit for throughput,
 * limit / hub for latency, so higher is better either way), with median and IQR.
 */
export function pairSpread(
  pairs: readonly { hub: number; limit: number }[],
  better: 'higher' | 'lower',
): Spread {
  return spreadOf(pairs.map(({ hub, limit }) => (better === 'higher' ? hub / limit : limit / hub)));
}

/** A throughput figure whose value is the median of its slices, with their spread. */
export function medianFigure(
  name: string,
  values: readonly number[],
  unit: string,
  more: Pick<Figure, 'limit' | 'ratioSpread'> = {},
): Figure {
  const valueSpread = spreadOf(values);
  return { name, value: valueSpread.median, unit, better: 'higher', valueSpread, ...more };
}

/** Latency summary in milliseconds from nanosecond samples. */
export function latencySummary(ns: number[]): { p50: number; p99: number; p999: number; n: number } {
  const s = [...ns].sort((a, b) => a - b).map((x) => x / 1e6);
  return { p50: percentile(s, 50), p99: percentile(s, 99), p999: percentile(s, 99.9), n: s.length };
}

export function progressBar(label: string, total: number, unit = 'items'): cliProgress.SingleBar {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label.padEnd(28)} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate}/s | ETA {eta}s`,
      hideCursor: true,
      // Progress goes to stderr: stdout stays clean for the result table.
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 5000,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { rate: '0' });
  const t0 = Date.now();
  const update = bar.update.bind(bar);
  bar.update = ((value: number) => {
    const s = (Date.now() - t0) / 1000;
    update(value, { rate: s > 0 ? Math.round(value / s).toLocaleString('en-US') : '0' });
  }) as typeof bar.update;
  return bar;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve(err ? '' : `${stdout}${stderr}`.trim());
    });
  });
}

export interface MachineFacts {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  freeMemoryGiB: number;
  node: string;
  java: string;
  kafka: string;
  registry: string;
  postgres: string;
  date: string;
  /** 1/5/15-minute load averages when the run started and when it ended: other work on the machine shows here. */
  loadAtStart: number[];
  loadAtEnd?: number[];
}

export function loadAverages(): number[] {
  return loadavg().map((x) => Math.round(x * 100) / 100);
}

/** The first "model name" of /proc/cpuinfo, and how many processors it lists. */
export function parseCpuinfo(text: string): { model: string | null; processors: number } {
  const model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? null;
  const processors = (text.match(/^processor\s*:/gm) ?? []).length;
  return { model, processors };
}

export async function machineFacts(env: BenchEnv): Promise<MachineFacts> {
  const c = new pg.Client({ connectionString: env.databaseUrl });
  await c.connect();
  const pgVersion =
    (await c.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]?.v ?? '?';
  await c.end();
  const java = (await run('java', ['-version'])).split('\n')[0] ?? '?';
  const cpu = parseCpuinfo(await readFile('/proc/cpuinfo', 'utf8').catch(() => ''));
  return {
    cores: cpu.processors || cpus().length,
    cpuModel: cpu.model ?? cpus()[0]?.model ?? '?',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    freeMemoryGiB: Math.round(freemem() / 2 ** 30),
    node: process.version,
    java,
    kafka: env.cfg.kafka.version,
    registry: `Apicurio ${env.cfg.registry.version}`,
    postgres: pgVersion,
    date: new Date().toISOString(),
    loadAtStart: loadAverages(),
  };
}

const fmt = (v: number) =>
  Number.isFinite(v)
    ? Math.abs(v) >= 100
      ? Math.round(v).toLocaleString('en-US')
      : v.toLocaleString('en-US', { maximumFractionDigits: 2 })
    : 'n/a';

/** Two decimals; three below 0.1, where two would hide a halving. */
export function fmtRatio(x: number): string {
  return Number.isFinite(x) ? x.toFixed(Math.abs(x) < 0.1 ? 3 : 2) : 'n/a';
}

/** Each figure with its limit beside it and the ratio (hub / limit for throughput, limit / hub for latency). */
export function ratioOf(f: Figure, all: readonly Figure[]): number | undefined {
  if (!f.limit) return undefined;
  // The median over interleaved pairs, when there are pairs: the pooled ratio mixes moments of the machine.
  if (f.ratioSpread && f.ratioSpread.n > 0) return f.ratioSpread.median;
  const lim = all.find((x) => x.name === f.limit);
  if (!lim || !Number.isFinite(lim.value) || !Number.isFinite(f.value) || f.value === 0) return undefined;
  return f.better === 'higher' ? f.value / lim.value : lim.value / f.value;
}

export function markdownReport(machine: MachineFacts, results: readonly ScenarioResult[]): string {
  const out: string[] = [];
  out.push(`# Benchmark results (${machine.date})`, '');
  out.push(
    `Machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB; Node ${machine.node}; ` +
      `${machine.java}; Kafka ${machine.kafka}; ${machine.registry}; PostgreSQL ${machine.postgres}. ` +
      `Load average (1/5/15 min) at start ${machine.loadAtStart.join(' / ')}` +
      (machine.loadAtEnd ? `, at end ${machine.loadAtEnd.join(' / ')}.` : '.'),
    '',
  );
  for (const r of results) {
    out.push(`## ${r.scenario}`, '', r.setup, '');
    out.push(
      '| figure | value | value IQR | unit | limit | ratio | ratio IQR | n |',
      '| --- | ---: | ---: | --- | --- | ---: | ---: | ---: |',
    );
    for (const f of r.figures) {
      const ratio = ratioOf(f, r.figures);
      const v = f.valueSpread;
      const q = f.ratioSpread;
      out.push(
        `| ${f.name} | ${fmt(f.value)} | ${v ? `${fmt(v.q1)}–${fmt(v.q3)}` : ''} | ${f.unit} | ${f.limit ?? ''} | ` +
          `${ratio === undefined ? '' : fmtRatio(ratio)} | ${q && f.limit ? `${fmtRatio(q.q1)}–${fmtRatio(q.q3)}` : ''} | ` +
          `${q?.n ?? v?.n ?? ''} |`,
      );
    }
    for (const n of r.notes ?? []) out.push('', `- ${n}`);
    out.push('');
  }
  return out.join('\n');
}
