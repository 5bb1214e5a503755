// Starting, adopting and stopping the component JVMs through their pid files:
// a JVM started by an earlier `up` is found again, a recycled pid is never signalled.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HubError } from '../errors/index.js';
import { portVariable, type ComponentName, type Log, type StackConfig } from './config.js';
import { components, logFile, nodeConfig, pidFile, type ComponentSpec } from './components.js';
import { tcpOpen } from './probes.js';
import { commandLineOf, errno, failure, isAlive, javaBin, noop, secs, sleep, terminate } from './process.js';

export interface Spawned {
  child: ChildProcess;
  pid: number;
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
}

/** The pid recorded for a component, if that process is alive and still ours. */
export async function livePid(cfg: StackConfig, spec: ComponentSpec): Promise<number | null> {
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

export async function removePidFile(
  cfg: StackConfig,
  name: ComponentName,
  onlyIfPid?: number,
): Promise<void> {
  const path = pidFile(cfg, name);
  if (onlyIfPid !== undefined) {
    const text = await readFile(path, 'utf8').catch(() => '');
    if (text.trim() !== String(onlyIfPid)) return;
  }
  await rm(path, { force: true });
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
          ? new HubError(
              'HUB_INFRA_FAILED',
              `${name}: ${javaBin()} not found; install a JDK 17+ or set JAVA_HOME`,
              { cause: err },
            )
          : new HubError('HUB_INFRA_FAILED', `${name}: cannot start java: ${err.message}`, { cause: err }),
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

/**
 * Spawns a component's JVM and waits until it answers (and `extra` holds);
 * a JVM that does not get there is stopped again, so no half-started one is left.
 */
export async function launch(
  cfg: StackConfig,
  spec: ComponentSpec,
  jvm: { args: string[]; env: NodeJS.ProcessEnv; extra?: () => Promise<boolean> },
  log: Log,
): Promise<Spawned> {
  const t0 = Date.now();
  const s = await spawnJvm(cfg, spec.name, jvm.args, jvm.env);
  try {
    await waitReady(cfg, spec, t0, { spawned: s, ...(jvm.extra ? { extra: jvm.extra } : {}) });
  } catch (err) {
    await terminate(spec.name, s.pid, noop).catch(() => undefined);
    await removePidFile(cfg, spec.name, s.pid);
    throw err;
  }
  log(`${spec.name}: ready in ${secs(Date.now() - t0)} (pid ${s.pid})`);
  return s;
}

export type Presence =
  { kind: 'ready'; pid: number | null } | { kind: 'starting'; pid: number } | { kind: 'absent' };

/** What holds a component's port now: our JVM (ready or starting), nothing, or a stranger (an error). */
export async function presence(cfg: StackConfig, spec: ComponentSpec): Promise<Presence> {
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
    const kafka = spec.name === 'kafka';
    throw new HubError(
      'HUB_INFRA_FAILED',
      `${spec.name}: port ${spec.port} is in use by a process that is not ${kafka ? 'a Kafka broker' : 'an Apicurio registry'}` +
        ` (free it or set ${portVariable(cfg.profile, kafka ? 'KAFKA_PORT' : 'REGISTRY_PORT')})`,
    );
  }
  await removePidFile(cfg, spec.name);
  return { kind: 'absent' };
}

/** Adopts a running or starting component; starts one only where there is none. */
export async function reuseOrStart(
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

/** Stops the JVMs one call started, registry before broker. */
export async function stopSpawned(
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
  // A multi-broker stack's nodes each have a config (and pid file) of their own.
  const kafkaUnits = cfg.kafka.nodes
    ? cfg.kafka.nodes.map((n) => ({ label: `kafka-${n.id}`, c: nodeConfig(cfg, n.id) }))
    : [{ label: 'kafka', c: cfg }];
  const units = [
    { label: 'registry', c: cfg, n: 'registry' as const },
    ...kafkaUnits.map((u) => ({ ...u, n: 'kafka' as const })),
  ];
  const stopUnit = async ({ label, c, n }: (typeof units)[number]) => {
    const spec = c === cfg ? specs[n] : components(c)[n];
    const pid = await livePid(c, spec);
    if (pid === null) {
      await removePidFile(c, n);
      const foreign = await tcpOpen(spec.host, spec.port);
      log(
        `${label}: not running${foreign ? ` (but port ${spec.port} answers; not started by this tool, left alone)` : ''}`,
      );
      return;
    }
    await terminate(label, pid, log);
    await removePidFile(c, n, pid);
    if (!stopped.includes(n)) stopped.push(n);
  };
  const [registry, ...kafka] = units;
  if (registry) await stopUnit(registry);
  // A cluster's nodes all at once: stopped one by one, the last would lose its quorum and
  // wait in its controlled shutdown for a controller that is gone, until SIGKILL.
  await Promise.all(kafka.map(stopUnit));
  return stopped;
}
