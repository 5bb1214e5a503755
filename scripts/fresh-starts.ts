/**
 * `npm run fresh-starts [-- --runs N]`: starts `hub up` N times (default 5),
 * each on a freshly formatted Kafka data directory, a new registry database
 * and a new app database, waits for "hub is up in", then Ctrl-Cs it and waits
 * for it to stop. One line per run and a summary; exits non-zero if any run
 * failed. Its own ports (Kafka 39092/39093, registry 38081) keep it apart
 * from the dev and test stacks; the services use the ports `hub up` always
 * uses (8091-8099, MLLP 2575), so those must be free.
 *
 * Options: --runs N, --timeout <seconds per start> (240), --no-build (skip
 * `npm run build`). Each run's output is kept in .hub/fresh-starts/run-N.log.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { stackConfig, stopStack } from '../libs/stack/index.js';
import { SERVICES } from '../libs/stack/services.js';
import { loggedError } from '../libs/stack/services-supervisor.js';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const PORTS = { kafka: 39092, controller: 39093, registry: 38081 };
const SERVICE_PORTS = [...SERVICES.map((s) => s.httpPort), 2575];
/** After Ctrl-C, hub up must have stopped within this long. */
const STOP_TIMEOUT_MS = 90_000;

interface RunResult {
  ok: boolean;
  upSeconds?: number;
  line: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** The `hub up` of the current run, which Ctrl-C of this script is passed on to. */
let current: ChildProcess | undefined;

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setTimeout(1000);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('timeout', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(false));
  });
}

async function busyPorts(): Promise<number[]> {
  const all = [PORTS.kafka, PORTS.controller, PORTS.registry, ...SERVICE_PORTS];
  const used = await Promise.all(all.map(portInUse));
  return all.filter((_, i) => used[i]);
}

function pgAdminUrl(): string {
  return process.env['FRESH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

async function dropDatabases(names: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: pgAdminUrl(), connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    for (const n of names) await c.query(`DROP DATABASE IF EXISTS "${n}" WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

/** What this run's `hub up` gets: its own data dir, ports and databases. */
function runEnv(dataDir: string, appDb: string, registryDb: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HUB_DATA_DIR: dataDir,
    HUB_KAFKA_PORT: String(PORTS.kafka),
    HUB_KAFKA_CONTROLLER_PORT: String(PORTS.controller),
    HUB_REGISTRY_PORT: String(PORTS.registry),
    HUB_REGISTRY_DATABASE: registryDb,
    DATABASE_URL: new URL(`/${appDb}`, pgAdminUrl()).toString(),
  };
  // Settings of a dev shell that would point the services elsewhere.
  for (const k of ['HUB_TOPIC_SUFFIX', 'HUB_SERVICE_URLS', 'KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL'])
    delete env[k];
  return env;
}

/** Follows a `hub up`: the "hub is up in Xs" time, restarts, error lines (code and message only). */
class Watch {
  restarts: string[] = [];
  errors: string[] = [];
  private onUp: ((seconds: number) => void) | undefined;
  /** The X of "hub is up in Xs", once that line is printed. */
  readonly up = new Promise<number>((resolve) => (this.onUp = resolve));

  line(l: string): void {
    const up = /hub is up in ([\d.]+)s/.exec(l)?.[1];
    if (up) this.onUp?.(Number(up));
    const restart = /^(\S+): restarting in/.exec(l)?.[1];
    if (restart) this.restarts.push(restart);
    const sep = l.indexOf('| ');
    const err = sep > 0 ? loggedError(l.slice(sep + 2)) : undefined;
    if (err) this.errors.push(`${l.slice(0, sep).trim()}: ${[err.code, err.msg].filter(Boolean).join(' ')}`);
    if (/^hub: HUB_/.test(l) || / exited with code | was killed by /.test(l)) this.errors.push(l.trim());
  }
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function startHub(env: NodeJS.ProcessEnv, logPath: string, watch: Watch): ChildProcess {
  // Its own process group, so that a run that hangs can be killed with its services.
  const child = spawn(process.execPath, [join(repoDir, 'bin', 'hub.js'), 'up'], {
    cwd: repoDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const log = createWriteStream(logPath);
  for (const s of [child.stdout, child.stderr]) {
    createInterface({ input: s }).on('line', (l) => {
      log.write(`${l}\n`);
      watch.line(l);
    });
  }
  void exitOf(child).then(() => setTimeout(() => log.end(), 500));
  return child;
}

/** Only for a `hub up` that is still running (hung): it and the services it started. */
function killGroup(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

function failure(watch: Watch, why: string, logPath: string): RunResult {
  const seen = [...new Set(watch.errors)].slice(-6);
  const more = seen.length ? `\n      ${seen.join('\n      ')}` : '';
  return { ok: false, line: `FAILED: ${why} (log: ${logPath})${more}` };
}

/** One start and stop of `hub up` on a fresh stack; always cleans up after itself. */
async function oneRun(n: number, timeoutMs: number, logDir: string): Promise<RunResult> {
  const busy = await busyPorts();
  if (busy.length) return { ok: false, line: `FAILED: ports in use: ${busy.join(', ')}` };
  const tag = `${process.pid}_${n}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'hub-fresh-'));
  const [appDb, registryDb] = [`hub_fresh_${tag}`, `hub_registry_fresh_${tag}`];
  const env = runEnv(dataDir, appDb, registryDb);
  const logPath = join(logDir, `run-${n}.log`);
  const watch = new Watch();
  const t0 = Date.now();
  const child = startHub(env, logPath, watch);
  current = child;
  try {
    const exited = exitOf(child).then((code) => ({ exited: code }));
    const first = await Promise.race([watch.up, exited, sleep(timeoutMs)]);
    if (typeof first !== 'number') {
      const why = first
        ? `hub up exited with code ${first.exited} before it was up`
        : `not up after ${timeoutMs / 1000}s`;
      return failure(watch, why, logPath);
    }
    const upSeconds = first;
    const wall = (Date.now() - t0) / 1000;
    const t1 = Date.now();
    child.kill('SIGINT');
    const stopped = await Promise.race([exited, sleep(STOP_TIMEOUT_MS).then(() => null)]);
    if (!stopped)
      return failure(watch, `up, but not stopped ${STOP_TIMEOUT_MS / 1000}s after Ctrl-C`, logPath);
    if (stopped.exited !== 0)
      return failure(watch, `up, but exited with code ${stopped.exited} on Ctrl-C`, logPath);
    const restarts = watch.restarts.length ? `; restarts: ${watch.restarts.join(', ')}` : '';
    return {
      ok: true,
      upSeconds,
      line: `up in ${upSeconds} s (wall ${wall.toFixed(1)} s), stopped in ${((Date.now() - t1) / 1000).toFixed(1)} s${restarts}`,
    };
  } finally {
    current = undefined;
    killGroup(child);
    await stopStack(stackConfig('dev', env)).catch(() => undefined);
    await dropDatabases([appDb, registryDb]).catch((err: unknown) =>
      process.stderr.write(`cleanup: ${(err as Error).message}\n`),
    );
    await rm(dataDir, { recursive: true, force: true });
  }
}

function summary(results: RunResult[]): string {
  const times = results
    .flatMap((r) => (r.upSeconds === undefined ? [] : [r.upSeconds]))
    .sort((a, b) => a - b);
  const failed = results.filter((r) => !r.ok).length;
  const spread = times.length
    ? ` (min ${times[0]} s, median ${times[Math.floor(times.length / 2)]} s, max ${times.at(-1)} s)`
    : '';
  return `${results.length} runs: ${results.length - failed} up${spread}, ${failed} failed`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      timeout: { type: 'string', default: '240' },
      'no-build': { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const timeoutMs = Number(values.timeout) * 1000;
  if (!Number.isInteger(runs) || runs < 1 || !(timeoutMs > 0)) {
    process.stderr.write('usage: fresh-starts [--runs N] [--timeout seconds] [--no-build]\n');
    return 2;
  }
  if (!values['no-build']) {
    process.stdout.write('building (npm run build)...\n');
    const b = spawnSync('npm', ['run', 'build'], { cwd: repoDir, stdio: ['ignore', 'ignore', 'inherit'] });
    if (b.status !== 0) return 1;
  }
  const logDir = join(repoDir, '.hub', 'fresh-starts');
  await mkdir(logDir, { recursive: true });
  let interrupted = false;
  process.once('SIGINT', () => {
    interrupted = true;
    current?.kill('SIGINT');
  });
  const results: RunResult[] = [];
  for (let n = 1; n <= runs && !interrupted; n++) {
    const r = await oneRun(n, timeoutMs, logDir);
    results.push(r);
    process.stdout.write(`run ${n}: ${r.line}\n`);
  }
  process.stdout.write(`${summary(results)}\n`);
  return results.every((r) => r.ok) && !interrupted ? 0 : 1;
}

process.exit(await main());
