// The stack's configuration: which ports, directories, versions and database
// the local Kafka, registry and PostgreSQL use, read once from the environment.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { HubError } from '../errors/index.js';

/**
 * dev: persistent, standard ports; test: wiped on every fresh start; secure:
 * persistent like dev, on its own ports and data dir, with Kafka on SASL_SSL
 * and ACLs (libs/stack/secure.ts), so it never collides with the other two.
 */
export type StackProfile = 'dev' | 'test' | 'secure';
export type Log = (msg: string) => void;
export type ComponentName = 'kafka' | 'registry';

/** One KRaft node of a multi-broker stack: broker and controller in one JVM (see kafka.ts). */
export interface KafkaNode {
  id: number;
  port: number;
  controllerPort: number;
}

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
    /** Set in the secure profile: where its CA, certificates and credentials live (mode 0700). */
    secureDir: string | null;
    /**
     * Set for a multi-broker stack (`hub infra up --brokers 3`): its KRaft nodes, each
     * with a data dir `<dataDir>/node-<id>`; port and controllerPort are then node 1's.
     * null: the single node above.
     */
    nodes: KafkaNode[] | null;
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
    /**
     * The project's own server (libs/stack/embedded-postgres.ts), started on host:port
     * when nothing answers there and DATABASE_URL is not set: `<repo>/.hub/postgres`.
     */
    embeddedDir: string;
  };
}

export const DEFAULT_KAFKA_VERSION = '4.1.1';
export const DEFAULT_APICURIO_VERSION = '3.0.9';

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
  HUB_SECURE_KAFKA_PORT: portSchema,
  HUB_SECURE_KAFKA_CONTROLLER_PORT: portSchema,
  HUB_SECURE_REGISTRY_PORT: portSchema,
  HUB_DATA_DIR: strSchema,
  // The multi-broker dev stack (--brokers 3): first node's ports; node i adds i - 1.
  HUB_CLUSTER_KAFKA_PORT: portSchema,
  HUB_CLUSTER_CONTROLLER_PORT: portSchema,
  HUB_CLUSTER_REGISTRY_PORT: portSchema,
  HUB_CLUSTER_DATA_DIR: strSchema,
  /** The secure profile's own data dir (CA, credentials, event store); never HUB_DATA_DIR. */
  HUB_SECURE_DATA_DIR: strSchema,
  /** The registry's own database (dev profile); lets a second stack keep its schemas apart. */
  HUB_REGISTRY_DATABASE: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, 'expected a lower-case SQL identifier')
      .optional(),
  ),
  HUB_CACHE_DIR: strSchema,
  /** Where the embedded PostgreSQL keeps its cluster, password and log; shared by every profile. */
  HUB_POSTGRES_DIR: strSchema,
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
type StackEnv = z.infer<typeof envSchema>;

/** Repository root: the nearest ancestor holding the Kafka pom, so this also works from dist/. */
function findRepoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'deploy', 'local', 'kafka-deps.pom.xml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir)
      throw new HubError(
        'HUB_INFRA_FAILED',
        'cannot locate the repository root (deploy/local/kafka-deps.pom.xml)',
      );
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

/** The variable that sets a port for a profile, for messages that tell the operator what to change. */
export function portVariable(
  profile: StackProfile,
  port: 'KAFKA_PORT' | 'KAFKA_CONTROLLER_PORT' | 'REGISTRY_PORT',
): string {
  return `HUB_${PORT_PREFIX[profile]}${port}`;
}

const PORT_PREFIX: Record<StackProfile, '' | 'TEST_' | 'SECURE_'> = {
  dev: '',
  test: 'TEST_',
  secure: 'SECURE_',
};
const DEFAULT_PORTS: Record<StackProfile, { kafka: number; controller: number; registry: number }> = {
  dev: { kafka: 9092, controller: 9093, registry: 8081 },
  test: { kafka: 29092, controller: 29093, registry: 28081 },
  secure: { kafka: 39092, controller: 39093, registry: 38081 },
};

/** The three JVM ports of a profile; the profiles' defaults never overlap. */
function stackPorts(
  e: StackEnv,
  profile: StackProfile,
): { kafka: number; controller: number; registry: number } {
  const p = PORT_PREFIX[profile];
  const d = DEFAULT_PORTS[profile];
  const kafka = e[`HUB_${p}KAFKA_PORT`] ?? d.kafka;
  const controller = e[`HUB_${p}KAFKA_CONTROLLER_PORT`] ?? d.controller;
  const registry = e[`HUB_${p}REGISTRY_PORT`] ?? d.registry;
  if (new Set([kafka, controller, registry]).size !== 3) {
    throw new HubError(
      'HUB_CONFIG_INVALID',
      `stack ports must differ (kafka ${kafka}, controller ${controller}, registry ${registry})`,
    );
  }
  return { kafka, controller, registry };
}

function postgresConfig(e: StackEnv, profile: StackProfile): Omit<StackConfig['postgres'], 'embeddedDir'> {
  // The secure profile is persistent like dev, with a database of its own.
  const dev = profile !== 'test';
  const appDb = { dev: 'hub', test: 'hub_test', secure: 'hub_secure' }[profile];
  let host: string, port: number, user: string, password: string, url: string;
  if (e.DATABASE_URL) {
    const u = new URL(e.DATABASE_URL);
    host = u.hostname || '127.0.0.1';
    port = u.port ? Number(u.port) : 5432;
    user = decodeURIComponent(u.username) || 'postgres';
    password = decodeURIComponent(u.password);
    // Tests always get hub_test, even when a dev DATABASE_URL is exported in the shell.
    url = dev ? e.DATABASE_URL : withDatabase(e.DATABASE_URL, appDb);
  } else {
    host = e.PG_HOST ?? '127.0.0.1';
    port = e.PG_PORT ?? 5432;
    user = e.PG_USER ?? 'postgres';
    password = e.PG_PASSWORD ?? '';
    url = pgUrl(user, password, host, port, appDb);
  }
  const database = decodeURIComponent(new URL(url).pathname.slice(1)) || appDb;
  return { host, port, user, password, database, url, external: e.DATABASE_URL !== undefined };
}

/** Options beyond the environment: `brokers` > 1 asks for the multi-broker dev stack. */
export interface StackOptions {
  brokers?: number;
}

export function stackConfig(
  profile: StackProfile,
  env: NodeJS.ProcessEnv = process.env,
  opts: StackOptions = {},
): StackConfig {
  if (profile !== 'dev' && profile !== 'test' && profile !== 'secure')
    throw new HubError('HUB_CONFIG_INVALID', `unknown profile "${String(profile)}"`);
  const parsed = envSchema.safeParse(env);
  if (!parsed.success)
    throw new HubError('HUB_CONFIG_INVALID', `invalid stack environment: ${z.prettifyError(parsed.error)}`);
  const e = parsed.data;
  const repoDir = findRepoDir();
  const dev = profile === 'dev';
  const ports = stackPorts(e, profile);

  // The test data dir is wiped on fresh starts, so it is never taken from the environment.
  const ownDir = { dev: e.HUB_DATA_DIR, test: undefined, secure: e.HUB_SECURE_DATA_DIR }[profile];
  const dataDir = ownDir ? resolve(ownDir) : join(repoDir, '.hub', profile);
  const cacheDir = resolve(e.HUB_CACHE_DIR ?? join(homedir(), '.cache', 'clinical-hub'));
  const kafkaVersion = e.KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION;
  const apicurioVersion = e.APICURIO_VERSION ?? DEFAULT_APICURIO_VERSION;
  const distDir = join(cacheDir, `apicurio-registry-${apicurioVersion}`, 'dist');
  const cfg: StackConfig = {
    profile,
    repoDir,
    dataDir,
    cacheDir,
    kafka: {
      version: kafkaVersion,
      host: '127.0.0.1',
      port: ports.kafka,
      controllerPort: ports.controller,
      logDir: join(dataDir, 'kafka'),
      libsDir: join(cacheDir, `kafka-${kafkaVersion}`, 'libs'),
      secureDir: profile === 'secure' ? join(dataDir, 'secure') : null,
      nodes: null,
    },
    registry: {
      version: apicurioVersion,
      host: '127.0.0.1',
      port: ports.registry,
      database: dev
        ? (e.HUB_REGISTRY_DATABASE ?? 'hub_registry')
        : profile === 'secure'
          ? 'hub_registry_secure'
          : 'hub_registry_test',
      distDir,
      jar: join(distDir, `apicurio-registry-app-${apicurioVersion}-runner.jar`),
      url: `http://127.0.0.1:${ports.registry}/apis/ccompat/v7`,
    },
    postgres: {
      ...postgresConfig(e, profile),
      embeddedDir: resolve(e.HUB_POSTGRES_DIR ?? join(repoDir, '.hub', 'postgres')),
    },
  };
  return opts.brokers && opts.brokers > 1 ? clusterConfig(cfg, e, opts.brokers) : cfg;
}

/**
 * The multi-broker stack: the dev profile on ports, a data dir and databases of its
 * own (suffix "cluster"), so it runs beside the single-node dev and test stacks.
 */
function clusterConfig(cfg: StackConfig, e: StackEnv, brokers: number): StackConfig {
  if (cfg.profile !== 'dev' || brokers !== 3)
    throw new HubError('HUB_CONFIG_INVALID', 'a multi-broker stack is the dev profile with 3 brokers');
  const port = e.HUB_CLUSTER_KAFKA_PORT ?? 19092;
  const controller = e.HUB_CLUSTER_CONTROLLER_PORT ?? 19192;
  const registry = e.HUB_CLUSTER_REGISTRY_PORT ?? 18081;
  const nodes = Array.from({ length: brokers }, (_, i) => ({
    id: i + 1,
    port: port + i,
    controllerPort: controller + i,
  }));
  const all = [...nodes.flatMap((n) => [n.port, n.controllerPort]), registry];
  if (new Set(all).size !== all.length)
    throw new HubError('HUB_CONFIG_INVALID', `cluster ports must differ (${all.join(', ')})`);
  const dataDir = resolve(e.HUB_CLUSTER_DATA_DIR ?? join(cfg.repoDir, '.hub', 'cluster'));
  const pg = cfg.postgres;
  // Its own database on the same server, like hub_test: checkpoints name this cluster's offsets.
  const url = withDatabase(pg.url, 'hub_cluster');
  return withKafkaNodes(
    {
      ...cfg,
      dataDir,
      kafka: { ...cfg.kafka, logDir: join(dataDir, 'kafka') },
      registry: {
        ...cfg.registry,
        port: registry,
        database: 'hub_registry_cluster',
        url: `http://127.0.0.1:${registry}/apis/ccompat/v7`,
      },
      postgres: { ...pg, url, database: decodeURIComponent(new URL(url).pathname.slice(1)) },
    },
    nodes,
  );
}

/** The config with these KRaft nodes (tests pick free ports); node 1 gives kafka.port. */
export function withKafkaNodes(cfg: StackConfig, nodes: KafkaNode[]): StackConfig {
  const first = nodes[0];
  if (!first) throw new HubError('HUB_CONFIG_INVALID', 'a cluster needs at least one node');
  return {
    ...cfg,
    kafka: { ...cfg.kafka, port: first.port, controllerPort: first.controllerPort, nodes },
  };
}
