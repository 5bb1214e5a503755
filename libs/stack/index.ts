// Local infrastructure without Docker: a single-node KRaft Kafka broker (or, with
// `hub infra up --brokers 3`, a 3-node cluster: cluster.ts) and an
// Apicurio schema registry run as plain JVM processes from Maven Central jars,
// next to the host's PostgreSQL or, where none answers, the project's embedded one. Importing this module has no side effects.
//
// This file composes the parts under stack/: config (environment), artifacts
// (Maven fetch), postgres, lock, kafka, registry, supervisor (pid files, start,
// stop) and status; importers use only what is exported here.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureArtifacts } from './artifacts.js';
import { components, type ComponentSpec } from './components.js';
import type { ComponentName, Log, StackConfig } from './config.js';
import { clusterBrokers, startCluster, stopNodes, type SpawnedNode } from './cluster.js';
import { startKafka } from './kafka.js';
import { acquireLock } from './lock.js';
import { ensureDatabase, ensurePostgres, type PostgresReady } from './postgres.js';
import { stopEmbedded, type EmbeddedServer } from './embedded-postgres.js';
import { isAlive, noop, signalGroup } from './process.js';
import { startRegistry } from './registry.js';
import {
  bootstrapSecureKafka,
  ensureSecureMaterial,
  writeClientEnvFiles,
  type ClientPrincipal,
  type SecureMaterial,
} from './secure.js';
import {
  presence,
  reuseOrStart,
  stopSpawned,
  stopStack as stopJvms,
  type Presence,
  type Spawned,
} from './supervisor.js';

export { stackConfig, withKafkaNodes } from './config.js';
export type { ComponentName, KafkaNode, Log, StackConfig, StackOptions, StackProfile } from './config.js';
export { nodePid, startNode, stopNode, waitForBrokers } from './cluster.js';
export { ensureArtifacts } from './artifacts.js';
export { stackStatus, type ComponentStatus } from './status.js';
export { clientSecurity, clientSecurityEnv, type ClientPrincipal, type SecureMaterial } from './secure.js';

export interface StartOptions {
  log?: Log;
  /** Leave the JVMs running after this process exits (infra:up). */
  detached?: boolean;
  /** Secure profile: the names of the topics created up front (a suffix for tests); the catalog's by default. */
  topicsFor?: (catalogName: string) => string;
}

/** What a client of the secure profile needs: the CA, the credentials and an env file per principal. */
export interface SecureAccess {
  material: SecureMaterial;
  /** `<data dir>/secure/credentials/<principal>.env`, mode 0600: the agreed KAFKA_* variables. */
  envFiles: Record<ClientPrincipal, string>;
}

/** A part of the stack a call can start: the JVMs, or the embedded PostgreSQL. */
export type StackPart = ComponentName | 'postgres';

export interface StackHandle {
  kafka: { brokers: string[] };
  /** Confluent-compatible base URL (…/apis/ccompat/v7). */
  registryUrl: string;
  databaseUrl: string;
  /** Set in the secure profile. */
  secure: SecureAccess | null;
  /** Components this call spawned; only these are stopped by stop(). */
  started: StackPart[];
  stop(): Promise<void>;
}

/** What one call started; `nodes` are a multi-broker stack's Kafka nodes. */
type SpawnedSet = Partial<Record<ComponentName, Spawned>> & {
  nodes?: SpawnedNode[];
  postgres?: EmbeddedServer;
};

/** A multi-broker stack's nodes are each probed and started by cluster.ts. */
const ABSENT: Presence = { kind: 'absent' };

/** Everything the JVMs need before they start: a clean test data dir, jars, Postgres and its databases. */
async function prepare(
  cfg: StackConfig,
  kafkaP: Presence,
  registryP: Presence,
  log: Log,
): Promise<PostgresReady> {
  const test = cfg.profile === 'test';
  if (test && kafkaP.kind === 'absent' && registryP.kind === 'absent') {
    // Fresh test stack: clear every leftover (old logs, pid files, Kafka data) but the lock we hold.
    for (const entry of await readdir(cfg.dataDir)) {
      if (entry !== 'stack.lock') await rm(join(cfg.dataDir, entry), { recursive: true, force: true });
    }
  }
  // The artifact fetch is skipped when both parts are already up.
  if (kafkaP.kind === 'absent' || registryP.kind === 'absent') await ensureArtifacts(cfg, log);
  // Before the JVMs start side by side: both read it, and two first runs would each make passwords.
  if (cfg.kafka.secureDir) await ensureSecureMaterial(cfg.kafka.secureDir);
  const pg = await ensurePostgres(cfg, log);
  const live = { ...cfg, postgres: pg.settings };
  await ensureDatabase(live, cfg.postgres.database, false, log);
  // The registry's own schema lives in its database; a clean test registry needs a clean DB.
  await ensureDatabase(live, cfg.registry.database, test && registryP.kind === 'absent', log);
  return pg;
}

/** Starts (or adopts) both JVMs side by side; records in `spawned` whatever this call started. */
async function startComponents(
  cfg: StackConfig,
  specs: Record<ComponentName, ComponentSpec>,
  found: Record<ComponentName, Presence>,
  spawned: SpawnedSet,
  log: Log,
): Promise<void> {
  const fresh = cfg.profile === 'test';
  const kafka = async () => {
    if (!cfg.kafka.nodes)
      return reuseOrStart(cfg, specs.kafka, found.kafka, () => startKafka(cfg, specs.kafka, log, fresh), log);
    spawned.nodes = await startCluster(cfg, log);
    return null;
  };
  // Independent JVMs: starting them side by side halves the wait.
  const [k, r] = await Promise.allSettled([
    kafka(),
    reuseOrStart(cfg, specs.registry, found.registry, () => startRegistry(cfg, specs.registry, log), log),
  ]);
  if (k.status === 'fulfilled' && k.value) spawned.kafka = k.value;
  if (r.status === 'fulfilled' && r.value) spawned.registry = r.value;
  const failed = [k, r].find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed) throw failed.reason;
}

function stackHandle(
  cfg: StackConfig,
  spawned: SpawnedSet,
  opts: StartOptions,
  log: Log,
  secure: SecureAccess | null,
): StackHandle {
  const started = (['kafka', 'registry'] as const).filter(
    (n) => spawned[n] !== undefined || (n === 'kafka' && Boolean(spawned.nodes?.length)),
  );
  const pids = () =>
    [spawned.kafka, spawned.registry, ...(spawned.nodes ?? [])].flatMap((s) => (s ? [s.pid] : []));
  // Without detached, JVMs must not outlive the caller; 'exit' handlers are synchronous, so
  // SIGTERM is all that can be sent and each JVM then shuts itself down cleanly.
  const onExit = () => {
    for (const pid of pids()) if (isAlive(pid)) signalGroup(pid, 'SIGTERM');
  };
  if (!opts.detached && started.length) process.once('exit', onExit);

  let stopping: Promise<void> | null = null;
  return {
    kafka: { brokers: cfg.kafka.nodes ? clusterBrokers(cfg) : [`${cfg.kafka.host}:${cfg.kafka.port}`] },
    registryUrl: cfg.registry.url,
    databaseUrl: cfg.postgres.url,
    secure,
    started: [...started, ...(spawned.postgres ? (['postgres'] as const) : [])],
    stop() {
      stopping ??= (async () => {
        process.removeListener('exit', onExit);
        await stopAll(cfg, spawned, log);
      })();
      return stopping;
    },
  };
}

/** Stops what one call started: the registry, then the broker or the cluster's nodes. */
async function stopAll(cfg: StackConfig, spawned: SpawnedSet, log: Log): Promise<void> {
  await stopSpawned(cfg, spawned, log);
  if (spawned.nodes) await stopNodes(cfg, spawned.nodes, log);
  // Last: the registry was its client. Shared by every profile, so left up while others use it.
  if (spawned.postgres) await stopEmbedded(cfg, log);
  delete spawned.postgres;
}

/** Stops whatever the pid files name (infra:down), then the embedded PostgreSQL unless others still use it. */
export async function stopStack(cfg: StackConfig, log: Log = noop): Promise<StackPart[]> {
  const stopped: StackPart[] = await stopJvms(cfg, log);
  if (await stopEmbedded(cfg, log)) stopped.push('postgres');
  return stopped;
}

/**
 * Brings the stack up, reusing whatever of it already runs. Only what this call
 * started is stopped by the handle's stop() (and at process exit unless detached).
 */
export async function startStack(cfg: StackConfig, opts: StartOptions = {}): Promise<StackHandle> {
  const log = opts.log ?? noop;
  const specs = components(cfg);
  await mkdir(cfg.dataDir, { recursive: true });
  const release = await acquireLock(cfg.dataDir, log);
  const spawned: SpawnedSet = {};
  let secure: SecureAccess | null = null;
  try {
    // Probes first: the artifact fetch and DB work are skipped for parts already up.
    const found = {
      kafka: cfg.kafka.nodes ? ABSENT : await presence(cfg, specs.kafka),
      registry: await presence(cfg, specs.registry),
    };
    const pg = await prepare(cfg, found.kafka, found.registry, log);
    if (pg.started) spawned.postgres = pg.started;
    // From here on the settings that connect: the embedded server's carry its user and password.
    cfg = { ...cfg, postgres: pg.settings };
    await startComponents(cfg, specs, found, spawned, log);
    if (cfg.kafka.secureDir) secure = await secureAccess(cfg, cfg.kafka.secureDir, opts, log);
  } catch (err) {
    // Leave nothing half-up behind: whatever this call managed to start goes down again.
    await stopAll(cfg, spawned, noop).catch(() => undefined);
    throw err;
  } finally {
    await release();
  }
  return stackHandle(cfg, spawned, opts, log, secure);
}

/** ACLs and topics on the secure broker, and each principal's env file. */
async function secureAccess(
  cfg: StackConfig,
  dir: string,
  opts: StartOptions,
  log: Log,
): Promise<SecureAccess> {
  const material = await ensureSecureMaterial(dir);
  const brokers = [`${cfg.kafka.host}:${cfg.kafka.port}`];
  await bootstrapSecureKafka(brokers, material, log, opts.topicsFor ? { topicsFor: opts.topicsFor } : {});
  const envFiles = await writeClientEnvFiles(material, {
    KAFKA_BROKERS: brokers.join(','),
    SCHEMA_REGISTRY_URL: cfg.registry.url,
    DATABASE_URL: cfg.postgres.url,
  });
  return { material, envFiles };
}
