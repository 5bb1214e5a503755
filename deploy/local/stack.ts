// Local infrastructure without Docker: a single-node KRaft Kafka broker and an
// Apicurio schema registry run as plain JVM processes from Maven Central jars,
// next to the host's PostgreSQL. Importing this module has no side effects.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, openSync, closeSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { get as httpGet } from 'node:http';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { z } from 'zod';

export type StackProfile = 'dev' | 'test';
export type Log = (msg: string) => void;
export type ComponentName = 'kafka' | 'registry';

export interface StackConfig {
  profile: StackProfile;
  repoDir: string;
  /** Holds pid files, logs and (for Kafka) the event store itself. */
  dataDir: string;
  cacheDir: string;
  kafka: {
    version: string;
    host: string;
    port: number;
    controllerPort: number;
    logDir: string;
    libsDir: string;
  };
  registry: {
    version: string;
    host: string;
    port: number;
    database: string;
    distDir: string;
    jar: string;
    /** Confluent-compatible API base, what Confluent-style clients are given. */
    url: string;
  };
  postgres: {
    host: string;
    port: number;
    user: string;
    password: string;
    /** App database name (hub / hub_test). */
    database: string;
    /** App database URL handed to the hub. */
    url: string;
    /** True when DATABASE_URL was supplied: that server is someone else's to start. */
    external: boolean;
  };
}

export interface StartOptions {
  log?: Log;
  /** Leave the JVMs running after this process exits (infra:up). */
  detached?: boolean;
}

export interface StackHandle {
  kafka: { brokers: string[] };
  /** Confluent-compatible base URL (…/apis/ccompat/v7). */
  registryUrl: string;
  databaseUrl: string;
  /** Components this call spawned; only these are stopped by stop(). */
  started: ComponentName[];
  stop(): Promise<void>;
}

export interface ComponentStatus {
  name: ComponentName | 'postgres';
  running: boolean;
  pid: number | null;
  port: number;
  url: string;
  detail: string;
}

const KAFKA_READY_MS = 60_000;
const REGISTRY_READY_MS = 120_000;
const STOP_GRACE_MS = 30_000;
const LOCK_WAIT_MS = 180_000;
const LOG_TAIL_LINES = 20;

// ---------------------------------------------------------------------------
// configuration

const emptyAsUndefined = (v: unknown): unknown => (v === '' ? undefined : v);
const portSchema = z.preprocess(emptyAsUndefined, z.coerce.number().int().min(1).max(65535).optional());
const strSchema = z.preprocess(emptyAsUndefined, z.string().optional());
const versionSchema = z.preprocess(
  emptyAsUndefined,
  z
    .string()
    .regex(/^\d+\.\d+\.\d+$/, 'expected a plain x.y.z version')
    .optional(),
);

const envSchema = z.object({
  // Dev and test read separate port variables on purpose: a HUB_KAFKA_PORT exported
  // for a dev shell must never point the test run at the dev event store.
  HUB_KAFKA_PORT: portSchema,
  HUB_KAFKA_CONTROLLER_PORT: portSchema,
  HUB_REGISTRY_PORT: portSchema,
  HUB_TEST_KAFKA_PORT: portSchema,
  HUB_TEST_KAFKA_CONTROLLER_PORT: portSchema,
  HUB_TEST_REGISTRY_PORT: portSchema,
  HUB_DATA_DIR: strSchema,
  /** The registry's own database (dev profile); lets a second stack keep its schemas apart. */
  HUB_REGISTRY_DATABASE: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, 'expected a lower-case SQL identifier')
      .optional(),
  ),
  HUB_CACHE_DIR: strSchema,
  KAFKA_VERSION: versionSchema,
  APICURIO_VERSION: versionSchema,
  PG_HOST: strSchema,
  PG_PORT: portSchema,
  PG_USER: strSchema,
  PG_PASSWORD: z.string().optional(),
  DATABASE_URL: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .refine((s) => /^postgres(ql)?:\/\//.test(s), 'expected a postgres:// URL')
      .optional(),
  ),
});

/** Repository root: the nearest ancestor holding the Kafka pom, so this also works from dist/. */
function findRepoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'deploy', 'local', 'kafka-deps.pom.xml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error('cannot locate the repository root (deploy/local/kafka-deps.pom.xml)');
    dir = parent;
  }
}

function pgUrl(user: string, password: string, host: string, port: number, db: string): string {
  const auth = password
    ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}`
    : encodeURIComponent(user);
  return `postgres://${auth}@${host}:${port}/${db}`;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export function stackConfig(profile: StackProfile, env: NodeJS.ProcessEnv = process.env): StackConfig {
  if (profile !== 'dev' && profile !== 'test') throw new Error(`unknown profile "${String(profile)}"`);
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid stack environment: ${z.prettifyError(parsed.error)}`);
  const e = parsed.data;
  const repoDir = findRepoDir();
  const dev = profile === 'dev';

  const kafkaPort = (dev ? e.HUB_KAFKA_PORT : e.HUB_TEST_KAFKA_PORT) ?? (dev ? 9092 : 29092);
  const controllerPort =
    (dev ? e.HUB_KAFKA_CONTROLLER_PORT : e.HUB_TEST_KAFKA_CONTROLLER_PORT) ?? (dev ? 9093 : 29093);
  const registryPort = (dev ? e.HUB_REGISTRY_PORT : e.HUB_TEST_REGISTRY_PORT) ?? (dev ? 8081 : 28081);
  const ports = [kafkaPort, controllerPort, registryPort];
  if (new Set(ports).size !== ports.length) {
    throw new Error(
      `stack ports must differ (kafka ${kafkaPort}, controller ${controllerPort}, registry ${registryPort})`,
    );
  }

  // The test data dir is wiped on fresh starts, so it is never taken from the environment.
  const dataDir = dev && e.HUB_DATA_DIR ? resolve(e.HUB_DATA_DIR) : join(repoDir, '.hub', profile);
  const cacheDir = resolve(e.HUB_CACHE_DIR ?? join(homedir(), '.cache', 'clinical-hub'));
  const kafkaVersion = e.KAFKA_VERSION ?? '4.1.1';
  const apicurioVersion = e.APICURIO_VERSION ?? '3.0.9';
  const appDb = dev ? 'hub' : 'hub_test';

  let pgHost: string, pgPort: number, pgUser: string, pgPassword: string, appUrl: string;
  if (e.DATABASE_URL) {
    const u = new URL(e.DATABASE_URL);
    pgHost = u.hostname || '127.0.0.1';
    pgPort = u.port ? Number(u.port) : 5432;
    pgUser = decodeURIComponent(u.username) || 'postgres';
    pgPassword = decodeURIComponent(u.password);
    // Tests always get hub_test, even when a dev DATABASE_URL is exported in the shell.
    appUrl = dev ? e.DATABASE_URL : withDatabase(e.DATABASE_URL, appDb);
  } else {
    pgHost = e.PG_HOST ?? '127.0.0.1';
    pgPort = e.PG_PORT ?? 5432;
    pgUser = e.PG_USER ?? 'postgres';
    pgPassword = e.PG_PASSWORD ?? '';
    appUrl = pgUrl(pgUser, pgPassword, pgHost, pgPort, appDb);
  }
  const appDatabase = decodeURIComponent(new URL(appUrl).pathname.slice(1)) || appDb;

  const distDir = join(cacheDir, `apicurio-registry-${apicurioVersion}`, 'dist');
  return {
    profile,
    repoDir,
    dataDir,
    cacheDir,
    kafka: {
      version: kafkaVersion,
      host: '127.0.0.1',
      port: kafkaPort,
      controllerPort,
      logDir: join(dataDir, 'kafka'),
      libsDir: join(cacheDir, `kafka-${kafkaVersion}`, 'libs'),
    },
    registry: {
      version: apicurioVersion,
      host: '127.0.0.1',
      port: registryPort,
      database: dev ? (e.HUB_REGISTRY_DATABASE ?? 'hub_registry') : 'hub_registry_test',
      distDir,
      jar: join(distDir, `apicurio-registry-app-${apicurioVersion}-runner.jar`),
      url: `http://127.0.0.1:${registryPort}/apis/ccompat/v7`,
    },
    postgres: {
      host: pgHost,
      port: pgPort,
      user: pgUser,
      password: pgPassword,
      database: appDatabase,
      url: appUrl,
      external: e.DATABASE_URL !== undefined,
    },
  };
}

// ---------------------------------------------------------------------------
// small process / file helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const noop: Log = () => {};
const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 32 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolveRun({ stdout, stderr });
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          reject(new Error(`${cmd} not found on PATH`));
          return;
        }
        const out = `${stdout}\n${stderr}`.trim().split('\n').slice(-LOG_TAIL_LINES).join('\n');
        reject(new Error(`${cmd} ${args.join(' ')} failed (${err.message.split('\n')[0]}):\n${out}`));
      },
    );
  });
}

function javaBin(): string {
  const home = process.env['JAVA_HOME'];
  return home ? join(home, 'bin', 'java') : 'java';
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Alive and not a zombie: kill(0) alone succeeds for unreaped children. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errno(err) === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no procfs (macOS): trust kill(0)
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

async function commandLineOf(pid: number): Promise<string> {
  const fromProc = commandLine(pid);
  if (fromProc) return fromProc;
  try {
    return (await run('ps', ['-o', 'command=', '-p', String(pid)])).stdout;
  } catch {
    return '';
  }
}

async function readLogTail(path: string, lines = LOG_TAIL_LINES): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return '(no log file)';
  }
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const all = buf.toString('utf8').split('\n');
    if (all.at(-1) === '') all.pop();
    return all.slice(-lines).join('\n') || '(log is empty)';
  } finally {
    await fh.close();
  }
}

async function failure(name: string, what: string, logPath: string): Promise<Error> {
  const tail = await readLogTail(logPath);
  return new Error(`${name}: ${what}; last ${LOG_TAIL_LINES} lines of ${logPath}:\n${tail}`);
}

// ---------------------------------------------------------------------------
// readiness probes

function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * A Kafka ApiVersions v0 round trip. The broker binds its listener long before it
 * serves requests, so an open port alone is not readiness; it also tells a Kafka
 * broker apart from an unrelated process squatting on the port.
 */
function kafkaAnswers(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((res) => {
    const clientId = Buffer.from('hub-stack');
    const correlationId = 0x48554221;
    const req = Buffer.alloc(4 + 10 + clientId.length);
    req.writeInt32BE(10 + clientId.length, 0);
    req.writeInt16BE(18, 4); // ApiVersions
    req.writeInt16BE(0, 6);
    req.writeInt32BE(correlationId, 8);
    req.writeInt16BE(clientId.length, 12);
    clientId.copy(req, 14);

    const sock = connect({ host, port });
    let got = Buffer.alloc(0);
    const done = (ok: boolean) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write(req));
    sock.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 10) return;
      const errorCode = got.readInt16BE(8);
      // 35 = UNSUPPORTED_VERSION: still a live broker that would negotiate up.
      done(got.readInt32BE(4) === correlationId && (errorCode === 0 || errorCode === 35));
    });
  });
}

/** node:http rather than fetch: no pooled keep-alive socket outlives the probe and holds the caller's loop. */
function httpOk(url: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((res) => {
    const req = httpGet(url, { agent: false, timeout: timeoutMs }, (r) => {
      r.resume();
      r.once('end', () => res((r.statusCode ?? 0) >= 200 && (r.statusCode ?? 0) < 300));
      r.once('error', () => res(false));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => res(false));
  });
}

/** Ready and also the Confluent-compatible API we hand out (a Confluent registry on 8081 is not). */
async function registryAnswers(cfg: StackConfig): Promise<boolean> {
  const base = `http://${cfg.registry.host}:${cfg.registry.port}`;
  return (await httpOk(`${base}/health/ready`)) && (await httpOk(`${cfg.registry.url}/subjects`));
}

// ---------------------------------------------------------------------------
// components

interface ComponentSpec {
  name: ComponentName;
  port: number;
  host: string;
  /** Substring of the JVM command line, to tell our process from a recycled pid. */
  cmdlineMarker: string;
  readyMs: number;
  answers(): Promise<boolean>;
}

function components(cfg: StackConfig): Record<ComponentName, ComponentSpec> {
  return {
    kafka: {
      name: 'kafka',
      port: cfg.kafka.port,
      host: cfg.kafka.host,
      cmdlineMarker: 'kafka.Kafka',
      readyMs: KAFKA_READY_MS,
      answers: () => kafkaAnswers(cfg.kafka.host, cfg.kafka.port),
    },
    registry: {
      name: 'registry',
      port: cfg.registry.port,
      host: cfg.registry.host,
      cmdlineMarker: 'apicurio-registry-app',
      readyMs: REGISTRY_READY_MS,
      answers: () => registryAnswers(cfg),
    },
  };
}

const pidFile = (cfg: StackConfig, name: ComponentName) => join(cfg.dataDir, `${name}.pid`);
const logFile = (cfg: StackConfig, name: ComponentName) => join(cfg.dataDir, 'logs', `${name}.log`);

/** The pid recorded for a component, if that process is alive and still ours. */
async function livePid(cfg: StackConfig, spec: ComponentSpec): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(pidFile(cfg, spec.name), 'utf8');
  } catch {
    return null;
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 1) return null;
  if (!isAlive(pid)) return null;
  // After a reboot the number may belong to anything; never signal a stranger.
  const cmd = await commandLineOf(pid);
  if (cmd && !cmd.includes(spec.cmdlineMarker)) return null;
  return pid;
}

async function removePidFile(cfg: StackConfig, name: ComponentName, onlyIfPid?: number): Promise<void> {
  const path = pidFile(cfg, name);
  if (onlyIfPid !== undefined) {
    const text = await readFile(path, 'utf8').catch(() => '');
    if (text.trim() !== String(onlyIfPid)) return;
  }
  await rm(path, { force: true });
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  // Each JVM leads its own process group; signalling the group also reaches anything it forked.
  try {
    process.kill(-pid, sig);
    return;
  } catch {
    /* not a group leader (or already gone): fall back to the pid */
  }
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(100);
  }
  return !isAlive(pid);
}

async function terminate(name: string, pid: number, log: Log): Promise<void> {
  if (!isAlive(pid)) return;
  const t0 = Date.now();
  signalGroup(pid, 'SIGTERM');
  if (await waitForExit(pid, STOP_GRACE_MS)) {
    log(`${name}: stopped (pid ${pid}) in ${secs(Date.now() - t0)}`);
    return;
  }
  log(`${name}: no exit ${STOP_GRACE_MS / 1000}s after SIGTERM, sending SIGKILL (pid ${pid})`);
  signalGroup(pid, 'SIGKILL');
  if (!(await waitForExit(pid, 5_000))) throw new Error(`${name}: pid ${pid} survived SIGKILL`);
}

interface Spawned {
  child: ChildProcess;
  pid: number;
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
}

async function spawnJvm(
  cfg: StackConfig,
  name: ComponentName,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<Spawned> {
  const logPath = logFile(cfg, name);
  await mkdir(dirname(logPath), { recursive: true });
  // Keep the previous run's log for post-mortems, and start clean so readiness
  // markers and failure tails can only come from this run.
  await rename(logPath, `${logPath}.1`).catch(() => undefined);
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(javaBin(), args, { cwd: cfg.dataDir, env, detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const pid = await new Promise<number>((res, rej) => {
    child.once('spawn', () => res(child.pid as number));
    child.once('error', (err) => {
      rej(
        errno(err) === 'ENOENT'
          ? new Error(`${name}: ${javaBin()} not found; install a JDK 17+ or set JAVA_HOME`)
          : new Error(`${name}: cannot start java: ${err.message}`),
      );
    });
  });
  const s: Spawned = { child, pid, exited: null };
  child.once('exit', (code, signal) => {
    s.exited = { code, signal };
  });
  // Never let a running JVM keep the caller's event loop alive; lifetime is managed explicitly.
  child.unref();
  await writeFile(pidFile(cfg, name), `${pid}\n`);
  return s;
}

async function waitReady(
  cfg: StackConfig,
  spec: ComponentSpec,
  startedAt: number,
  opts: { spawned?: Spawned; pid?: number | null; extra?: () => Promise<boolean>; ms?: number },
): Promise<void> {
  const logPath = logFile(cfg, spec.name);
  const deadline = startedAt + (opts.ms ?? spec.readyMs);
  for (;;) {
    const exited = opts.spawned?.exited;
    if (exited) {
      const how = exited.signal ? `signal ${exited.signal}` : `code ${exited.code}`;
      throw await failure(spec.name, `java exited with ${how} during startup`, logPath);
    }
    if (!opts.spawned && opts.pid && !isAlive(opts.pid)) {
      throw await failure(spec.name, `process ${opts.pid} exited during startup`, logPath);
    }
    if ((await spec.answers()) && (!opts.extra || (await opts.extra()))) return;
    if (Date.now() >= deadline) {
      const s = Math.round((opts.ms ?? spec.readyMs) / 1000);
      throw await failure(spec.name, `not ready on ${spec.host}:${spec.port} after ${s}s`, logPath);
    }
    await sleep(250);
  }
}

async function logContains(path: string, needle: string): Promise<boolean> {
  try {
    return (await readFile(path, 'utf8')).includes(needle);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// artifacts

async function fetchAtomically(
  finalDir: string,
  cacheDir: string,
  fill: (tmpDir: string) => Promise<void>,
): Promise<void> {
  const marker = join(finalDir, '.complete');
  if (existsSync(marker)) return;
  await mkdir(cacheDir, { recursive: true });
  // A directory without the marker is a leftover of an interrupted or hand-made fetch.
  // (Re-checked right here: a concurrent fetch may have just completed it.)
  if (existsSync(finalDir) && !existsSync(marker)) await rm(finalDir, { recursive: true, force: true });
  const tmp = join(cacheDir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
    await writeFile(join(tmp, '.complete'), `${new Date().toISOString()}\n`);
    try {
      await rename(tmp, finalDir);
    } catch (err) {
      // A concurrent fetch may have won the rename; its result is as good as ours.
      if (!existsSync(marker)) throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export async function ensureArtifacts(cfg: StackConfig, log: Log = noop): Promise<void> {
  const kafkaDir = dirname(cfg.kafka.libsDir);
  const apicurioDir = dirname(cfg.registry.distDir);
  const pom = join(cfg.repoDir, 'deploy', 'local', 'kafka-deps.pom.xml');
  const mvnHint = (err: unknown) =>
    new Error(
      `${(err as Error).message}\n(artifacts come from Maven Central via mvn; install Maven or ` +
        `pre-populate ${cfg.cacheDir})`,
    );

  if (!existsSync(join(kafkaDir, '.complete'))) {
    const t0 = Date.now();
    log(`artifacts: fetching Kafka ${cfg.kafka.version} jars into ${kafkaDir}`);
    await fetchAtomically(kafkaDir, cfg.cacheDir, async (tmp) => {
      await run('mvn', [
        '-q',
        '-B',
        '-f',
        pom,
        'dependency:copy-dependencies',
        '-DincludeScope=runtime',
        `-Dkafka.version=${cfg.kafka.version}`,
        `-DoutputDirectory=${join(tmp, 'libs')}`,
      ]).catch((err: unknown) => {
        throw mvnHint(err);
      });
      const jar = join(tmp, 'libs', `kafka_2.13-${cfg.kafka.version}.jar`);
      if (!existsSync(jar)) throw new Error(`artifacts: mvn finished but ${jar} is missing`);
    });
    log(`artifacts: Kafka ready in ${secs(Date.now() - t0)}`);
  }

  if (!existsSync(join(apicurioDir, '.complete'))) {
    const t0 = Date.now();
    const v = cfg.registry.version;
    log(`artifacts: fetching Apicurio Registry ${v} into ${apicurioDir}`);
    await fetchAtomically(apicurioDir, cfg.cacheDir, async (tmp) => {
      // Run from the temp dir: dependency:copy must not pick up a project pom from the cwd.
      await run(
        'mvn',
        [
          '-q',
          '-B',
          'dependency:copy',
          `-Dartifact=io.apicurio:apicurio-registry-app:${v}:zip:all`,
          `-DoutputDirectory=${tmp}`,
        ],
        { cwd: tmp },
      ).catch((err: unknown) => {
        throw mvnHint(err);
      });
      const zip = join(tmp, `apicurio-registry-app-${v}-all.zip`);
      const dist = join(tmp, 'dist');
      await mkdir(dist);
      try {
        await run('unzip', ['-q', zip, '-d', dist]);
      } catch (err) {
        if (!(err as Error).message.includes('not found on PATH')) throw err;
        // The JDK's jar tool is always there when java is.
        await run(join(dirname(javaBin()), 'jar'), ['xf', zip], { cwd: dist });
      }
      await rm(zip, { force: true });
      const jar = join(dist, `apicurio-registry-app-${v}-runner.jar`);
      if (!existsSync(jar)) throw new Error(`artifacts: ${jar} missing after unpacking ${zip}`);
    });
    log(`artifacts: Apicurio ready in ${secs(Date.now() - t0)}`);
  }
}

// ---------------------------------------------------------------------------
// postgres

function pgClient(cfg: StackConfig, database: string): pg.Client {
  return new pg.Client({
    host: cfg.postgres.host,
    port: cfg.postgres.port,
    user: cfg.postgres.user,
    password: cfg.postgres.password,
    database,
    connectionTimeoutMillis: 3000,
  });
}

async function pgReachable(cfg: StackConfig): Promise<Error | null> {
  const c = pgClient(cfg, 'postgres');
  try {
    await c.connect();
    await c.query('select 1');
    return null;
  } catch (err) {
    return err as Error;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function ensurePostgres(cfg: StackConfig, log: Log): Promise<void> {
  const first = await pgReachable(cfg);
  if (!first) return;
  const where = `${cfg.postgres.host}:${cfg.postgres.port}`;
  const local = ['127.0.0.1', 'localhost', '::1'].includes(cfg.postgres.host);
  const refused = errno(first) === 'ECONNREFUSED' || /ECONNREFUSED|connect/.test(first.message);
  if (cfg.postgres.external || !local || !refused) {
    throw new Error(
      `postgres: cannot connect to ${where} as ${cfg.postgres.user}: ${first.message}` +
        (cfg.postgres.external
          ? ' (check DATABASE_URL)'
          : ' (start PostgreSQL or set PG_HOST/PG_PORT/DATABASE_URL)'),
    );
  }
  // The Debian cluster wrapper is the one start method that needs neither systemd nor a password.
  let versions: string[] = [];
  try {
    versions = (await readdir('/etc/postgresql'))
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a));
  } catch {
    /* not a Debian-style install */
  }
  const version = versions[0];
  const manual =
    'start it (e.g. `pg_ctlcluster <version> main start` or `service postgresql start`) ' +
    'or point PG_HOST/PG_PORT/DATABASE_URL at a running server';
  if (!version) throw new Error(`postgres: nothing listening on ${where}; ${manual}`);
  log(`postgres: not reachable on ${where}, starting cluster ${version}/main`);
  try {
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], {
      timeoutMs: 60_000,
    });
  } catch (err) {
    throw new Error(
      `postgres: nothing listening on ${where} and pg_ctlcluster failed: ${(err as Error).message}; ${manual}`,
    );
  }
  const deadline = Date.now() + 30_000;
  for (;;) {
    const err = await pgReachable(cfg);
    if (!err) {
      log('postgres: started');
      return;
    }
    if (Date.now() > deadline)
      throw new Error(`postgres: still unreachable on ${where} after start: ${err.message}; ${manual}`);
    await sleep(500);
  }
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

async function ensureDatabase(cfg: StackConfig, db: string, recreate: boolean, log: Log): Promise<void> {
  const c = pgClient(cfg, 'postgres');
  await c.connect();
  try {
    if (recreate) {
      // FORCE: a registry killed without cleanup can leave sessions that would block the drop.
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`);
    }
    const { rowCount } = await c.query('select 1 from pg_database where datname = $1', [db]);
    if (rowCount) return;
    try {
      await c.query(`CREATE DATABASE ${quoteIdent(db)}`);
      log(`postgres: ${recreate ? 'recreated' : 'created'} database ${db}`);
    } catch (err) {
      // 42P04 duplicate_database / 23505: a concurrent start created it first.
      const code = (err as { code?: string }).code;
      if (code !== '42P04' && code !== '23505') throw err;
    }
  } finally {
    await c.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------
// start / stop

/** Serialises concurrent startStack calls on one data dir (e.g. infra:up racing a test run). */
async function acquireLock(cfg: StackConfig, log: Log): Promise<() => Promise<void>> {
  const path = join(cfg.dataDir, 'stack.lock');
  await mkdir(cfg.dataDir, { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  let announced = false;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => unlink(path).catch(() => undefined);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt((await readFile(path, 'utf8').catch(() => '')).trim(), 10);
    if (!Number.isInteger(holder) || holder === process.pid || !isAlive(holder)) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`stack: ${path} held by pid ${holder} for over ${LOCK_WAIT_MS / 1000}s`);
    if (!announced) log(`stack: waiting for another start (pid ${holder}) to finish`);
    announced = true;
    await sleep(250);
  }
}

function kafkaServerProperties(cfg: StackConfig): string {
  const k = cfg.kafka;
  return [
    '# generated by deploy/local/stack.ts on every start; edits are overwritten',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@${k.host}:${k.controllerPort}`,
    `listeners=PLAINTEXT://${k.host}:${k.port},CONTROLLER://${k.host}:${k.controllerPort}`,
    `advertised.listeners=PLAINTEXT://${k.host}:${k.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${k.logDir}`,
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // Topics are created deliberately by the hub, so a typo cannot silently create a new stream.
    'auto.create.topics.enable=false',
    'num.partitions=6',
    '',
  ].join('\n');
}

const KAFKA_LOG4J2 = `Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
`;

/** Kafka's cluster id format (base64url of a v4 UUID), made here to save one JVM launch. */
function kafkaClusterId(): string {
  for (;;) {
    const b = randomBytes(16);
    b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
    b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
    const id = b.toString('base64url');
    if (!id.startsWith('-')) return id; // Kafka rejects ids that look like CLI flags
  }
}

async function startKafka(cfg: StackConfig, spec: ComponentSpec, log: Log, fresh: boolean): Promise<Spawned> {
  if (await tcpOpen(cfg.kafka.host, cfg.kafka.controllerPort)) {
    throw new Error(
      `kafka: controller port ${cfg.kafka.controllerPort} is already in use` +
        ` (set HUB_${cfg.profile === 'test' ? 'TEST_' : ''}KAFKA_CONTROLLER_PORT)`,
    );
  }
  if (fresh) await rm(cfg.kafka.logDir, { recursive: true, force: true });
  await mkdir(cfg.kafka.logDir, { recursive: true });
  const props = join(cfg.dataDir, 'kafka-server.properties');
  const log4j = join(cfg.dataDir, 'kafka-log4j2.yaml');
  await writeFile(props, kafkaServerProperties(cfg));
  await writeFile(log4j, KAFKA_LOG4J2);
  const cp = `${cfg.kafka.libsDir}/*`;
  const logOpt = `-Dlog4j2.configurationFile=${log4j}`;

  // Formatting twice would be refused, and re-formatting would orphan the event store.
  if (!existsSync(join(cfg.kafka.logDir, 'meta.properties'))) {
    log(`kafka: formatting ${cfg.kafka.logDir}`);
    const id = kafkaClusterId();
    await run(javaBin(), [logOpt, '-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', id, '-c', props], {
      timeoutMs: 120_000,
    }).catch((err: unknown) => {
      throw new Error(`kafka: storage format failed: ${(err as Error).message}`);
    });
  }

  log(`kafka: starting on ${cfg.kafka.host}:${cfg.kafka.port}`);
  const t0 = Date.now();
  const s = await spawnJvm(
    cfg,
    'kafka',
    [
      '-Xms256m',
      '-Xmx1g',
      // kafka-run-class.sh's default performance options: the JVM's own G1
      // default aims at 200 ms pauses, which lands in produce tails (acks=all).
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-XX:InitiatingHeapOccupancyPercent=35',
      '-XX:+ExplicitGCInvokesConcurrent',
      '-Djava.awt.headless=true',
      logOpt,
      '-cp',
      cp,
      'kafka.Kafka',
      props,
    ],
    process.env,
  );
  try {
    await waitReady(cfg, spec, t0, {
      spawned: s,
      extra: () => logContains(logFile(cfg, 'kafka'), 'Kafka Server started'),
    });
  } catch (err) {
    await terminate('kafka', s.pid, noop).catch(() => undefined);
    await removePidFile(cfg, 'kafka', s.pid);
    throw err;
  }
  log(`kafka: ready in ${secs(Date.now() - t0)} (pid ${s.pid})`);
  return s;
}

async function startRegistry(cfg: StackConfig, spec: ComponentSpec, log: Log): Promise<Spawned> {
  const r = cfg.registry;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    APICURIO_STORAGE_KIND: 'sql',
    APICURIO_STORAGE_SQL_KIND: 'postgresql',
    APICURIO_DATASOURCE_URL: `jdbc:postgresql://${cfg.postgres.host}:${cfg.postgres.port}/${r.database}`,
    APICURIO_DATASOURCE_USERNAME: cfg.postgres.user,
    APICURIO_DATASOURCE_PASSWORD: cfg.postgres.password,
    // Confluent's registry allows DELETE of subjects/versions; Apicurio 3 refuses unless enabled.
    APICURIO_REST_DELETION_ARTIFACT_ENABLED: 'true',
    APICURIO_REST_DELETION_ARTIFACT_VERSION_ENABLED: 'true',
    APICURIO_REST_DELETION_GROUP_ENABLED: 'true',
    QUARKUS_HTTP_PORT: String(r.port),
    QUARKUS_HTTP_HOST: r.host,
  };
  log(`registry: starting on ${r.host}:${r.port}`);
  const t0 = Date.now();
  const s = await spawnJvm(cfg, 'registry', ['-Xmx512m', '-jar', r.jar], env);
  try {
    await waitReady(cfg, spec, t0, { spawned: s });
  } catch (err) {
    await terminate('registry', s.pid, noop).catch(() => undefined);
    await removePidFile(cfg, 'registry', s.pid);
    throw err;
  }
  log(`registry: ready in ${secs(Date.now() - t0)} (pid ${s.pid})`);
  return s;
}

type Presence =
  { kind: 'ready'; pid: number | null } | { kind: 'starting'; pid: number } | { kind: 'absent' };

async function presence(cfg: StackConfig, spec: ComponentSpec): Promise<Presence> {
  const pid = await livePid(cfg, spec);
  if (await spec.answers()) return { kind: 'ready', pid };
  if (pid !== null) return { kind: 'starting', pid };
  if (await tcpOpen(spec.host, spec.port)) {
    // Something holds the port without speaking the protocol; give a foreign instance
    // that is mid-startup a short chance before calling it a conflict.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      await sleep(500);
      if (await spec.answers()) return { kind: 'ready', pid: null };
    }
    throw new Error(
      `${spec.name}: port ${spec.port} is in use by a process that is not ${spec.name === 'kafka' ? 'a Kafka broker' : 'an Apicurio registry'}` +
        ` (free it or set HUB_${cfg.profile === 'test' ? 'TEST_' : ''}${spec.name === 'kafka' ? 'KAFKA' : 'REGISTRY'}_PORT)`,
    );
  }
  await removePidFile(cfg, spec.name);
  return { kind: 'absent' };
}

async function reuseOrStart(
  cfg: StackConfig,
  spec: ComponentSpec,
  p: Presence,
  start: () => Promise<Spawned>,
  log: Log,
): Promise<Spawned | null> {
  switch (p.kind) {
    case 'ready':
      log(
        `${spec.name}: already running${p.pid ? ` (pid ${p.pid})` : ''} on ${spec.host}:${spec.port}, reusing`,
      );
      return null;
    case 'starting': {
      log(`${spec.name}: pid ${p.pid} is still starting, waiting for it`);
      await waitReady(cfg, spec, Date.now(), { pid: p.pid });
      log(`${spec.name}: ready (pid ${p.pid}), reusing`);
      return null;
    }
    case 'absent':
      return start();
  }
}

export async function startStack(cfg: StackConfig, opts: StartOptions = {}): Promise<StackHandle> {
  const log = opts.log ?? noop;
  const specs = components(cfg);
  await mkdir(cfg.dataDir, { recursive: true });
  const release = await acquireLock(cfg, log);
  const spawned: Partial<Record<ComponentName, Spawned>> = {};
  try {
    // Probes first: the artifact fetch and DB work are skipped for parts already up.
    const kafkaP = await presence(cfg, specs.kafka);
    const registryP = await presence(cfg, specs.registry);
    const test = cfg.profile === 'test';

    if (test && kafkaP.kind === 'absent' && registryP.kind === 'absent') {
      // Fresh test stack: clear every leftover (old logs, pid files, Kafka data) but the lock we hold.
      for (const entry of await readdir(cfg.dataDir)) {
        if (entry !== 'stack.lock') await rm(join(cfg.dataDir, entry), { recursive: true, force: true });
      }
    }

    if (kafkaP.kind === 'absent' || registryP.kind === 'absent') await ensureArtifacts(cfg, log);

    await ensurePostgres(cfg, log);
    await ensureDatabase(cfg, cfg.postgres.database, false, log);
    // The registry's own schema lives in its database; a clean test registry needs a clean DB.
    await ensureDatabase(cfg, cfg.registry.database, test && registryP.kind === 'absent', log);

    // Independent JVMs: starting them side by side halves the wait.
    const [k, r] = await Promise.allSettled([
      reuseOrStart(cfg, specs.kafka, kafkaP, () => startKafka(cfg, specs.kafka, log, test), log),
      reuseOrStart(cfg, specs.registry, registryP, () => startRegistry(cfg, specs.registry, log), log),
    ]);
    if (k.status === 'fulfilled' && k.value) spawned.kafka = k.value;
    if (r.status === 'fulfilled' && r.value) spawned.registry = r.value;
    const failed = [k, r].find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    // Leave nothing half-up behind: whatever this call managed to start goes down again.
    await stopSpawned(cfg, spawned, noop).catch(() => undefined);
    throw err;
  } finally {
    await release();
  }

  const started = (['kafka', 'registry'] as const).filter((n) => spawned[n] !== undefined);
  // Without detached, JVMs must not outlive the caller; 'exit' handlers are synchronous, so
  // SIGTERM is all that can be sent and each JVM then shuts itself down cleanly.
  const onExit = () => {
    for (const n of started) {
      const s = spawned[n];
      if (s && isAlive(s.pid)) signalGroup(s.pid, 'SIGTERM');
    }
  };
  if (!opts.detached && started.length) process.once('exit', onExit);

  let stopping: Promise<void> | null = null;
  return {
    kafka: { brokers: [`${cfg.kafka.host}:${cfg.kafka.port}`] },
    registryUrl: cfg.registry.url,
    databaseUrl: cfg.postgres.url,
    started: [...started],
    stop() {
      stopping ??= (async () => {
        process.removeListener('exit', onExit);
        await stopSpawned(cfg, spawned, log);
      })();
      return stopping;
    },
  };
}

async function stopSpawned(
  cfg: StackConfig,
  spawned: Partial<Record<ComponentName, Spawned>>,
  log: Log,
): Promise<void> {
  // Registry first: it is a client of nothing here, but stopping consumers before the
  // broker is the order that never produces spurious connection errors.
  for (const n of ['registry', 'kafka'] as const) {
    const s = spawned[n];
    if (!s) continue;
    await terminate(n, s.pid, log);
    await removePidFile(cfg, n, s.pid);
    delete spawned[n];
  }
}

/** Stops whatever the pid files name (infra:down). Idempotent. Returns the components it stopped. */
export async function stopStack(cfg: StackConfig, log: Log = noop): Promise<ComponentName[]> {
  const specs = components(cfg);
  const stopped: ComponentName[] = [];
  for (const n of ['registry', 'kafka'] as const) {
    const spec = specs[n];
    const pid = await livePid(cfg, spec);
    if (pid === null) {
      await removePidFile(cfg, n);
      const foreign = await tcpOpen(spec.host, spec.port);
      log(
        `${n}: not running${foreign ? ` (but port ${spec.port} answers; not started by this tool, left alone)` : ''}`,
      );
      continue;
    }
    await terminate(n, pid, log);
    await removePidFile(cfg, n, pid);
    stopped.push(n);
  }
  return stopped;
}

export async function stackStatus(cfg: StackConfig): Promise<ComponentStatus[]> {
  const specs = components(cfg);
  const out: ComponentStatus[] = [];
  for (const n of ['kafka', 'registry'] as const) {
    const spec = specs[n];
    const [pid, answers] = await Promise.all([livePid(cfg, spec), spec.answers()]);
    const url = n === 'kafka' ? `${cfg.kafka.host}:${cfg.kafka.port}` : cfg.registry.url;
    const detail = answers
      ? pid === null
        ? 'answering, not started by this tool'
        : 'ready'
      : pid === null
        ? 'stopped'
        : 'process alive, not answering';
    out.push({ name: n, running: answers, pid, port: spec.port, url, detail });
  }
  const pgErr = await pgReachable(cfg);
  out.push({
    name: 'postgres',
    running: pgErr === null,
    pid: null,
    port: cfg.postgres.port,
    url: cfg.postgres.url,
    detail: pgErr ? pgErr.message : 'reachable',
  });
  return out;
}
