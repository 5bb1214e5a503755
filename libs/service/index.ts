import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import { httpEnv, kafkaEnv, loadConfig, logEnv, portEnv, startEnv, topicNamer, z } from '../config/index.js';
import { createDb } from '../db/index.js';
import { isHubError, toHubError } from '../errors/index.js';
import { createEventCodec, type EventCodec } from '../events/codec.js';
import { EVENT_CONTRACTS, type EventType } from '../events/index.js';
import { createRegistryClient, registrySecurityFromEnv } from '../events/registry.js';
import { createKafkaClient, type KafkaClient } from '../kafka/client.js';
import { kafkaSecurityFromEnv } from '../kafka/security.js';
import type { EventProducer, ProducerOptions } from '../kafka/producer.js';
import { createChosenEventProducer } from '../kafka/producer-client.js';
import {
  installShutdown,
  shutdownBegun,
  startService,
  type Shutdown,
  type StartupStep,
} from '../lifecycle/index.js';
import { errorLabel } from '../lifecycle/startup.js';
import { createLogger, type Logger } from '../telemetry/logger.js';
import { createMetrics, producerMetricsHooks, type HubMetrics } from '../telemetry/metrics.js';
import { applyCpuPriority, applyHeapSettings, runtimeInEffect, runtimeEnv } from './runtime.js';

/**
 * The one composition root of every service. A main.ts declares what is its
 * own (variables, connections, how the app is built and started) and this
 * does the rest identically everywhere: the environment validated once with
 * every problem listed, logger, metrics, Kafka client, schema codec and
 * event producer, SIGTERM/SIGINT, the port listening first with /ready
 * saying what start-up waits for, bounded start-up retries, "<name> ready",
 * and exit codes (0 after a stop, 1 when start-up gives up, a stop step
 * fails or the service asks to exit on a fatal error).
 */

/** Variables every service reads, under the same names in every service, the local stack and compose.yaml. */
export const serviceEnv = {
  ...kafkaEnv,
  ...logEnv,
  ...startEnv,
  HTTP_HOST: httpEnv.HTTP_HOST,
  // Heap sizes and consumer fetch sizes (runtime.ts): what keeps a service within its memory limit;
  // CPU_NICE: which services yield the cores first on a shared host.
  ...runtimeEnv,
};

type BaseShape = typeof serviceEnv & { HTTP_PORT: ReturnType<typeof portEnv> };

/** The validated configuration of a service with its own variables `S`. */
export type ServiceConfig<S extends z.ZodRawShape> = z.infer<z.ZodObject<BaseShape & S>>;

/** The part every service has (TypeScript cannot see it through a generic `S`). */
type SharedConfig = z.infer<z.ZodObject<BaseShape>>;
const sharedPart = <S extends z.ZodRawShape>(config: ServiceConfig<S>) => config as unknown as SharedConfig;

/** A rule across variables (e.g. two that go together), reported like any other problem. */
export interface EnvCheck<C> {
  ok(config: C): boolean;
  /** The variable the problem is reported on. */
  path: string;
  message: string;
}

/** Producer options a service may set beyond the shared ones (client, codec, ack timeout). */
export type ProducerExtras = Partial<Omit<ProducerOptions, 'kafka' | 'codec'>>;

/** What the kit hands a service's connect and build: the shared clients, made once. */
export interface ServiceKit<C> {
  name: string;
  config: C;
  logger: Logger;
  metrics: HubMetrics;
  /** Catalog name → this deployment's topic name (HUB_TOPIC_SUFFIX). */
  topic(catalogName: string): string;
  /** Event type → this deployment's topic of it. */
  topicFor(type: EventType): string;
  kafka: KafkaClient;
  codec: EventCodec;
  /** Connected by the first start-up step, disconnected after the service's own stop. */
  producer: EventProducer;
  /** A Postgres pool, destroyed at stop. */
  database(url: string, opts?: { pool: { min: number; max: number } }): Knex;
  /** Registers a client to close at stop: after the service's own stop and the producer, in registration order. */
  closing<T>(client: T, close: (client: T) => Promise<void>): T;
  /** Stops the service and exits with `code`: for a failure it cannot recover from (a consumer that gave up). */
  exit: Shutdown;
}

/** What a service's build returns: its HTTP app, how it starts and how it stops. */
export interface ServiceParts {
  http: FastifyInstance;
  /** Start-up steps after the producer is connected, in order; each retried while its failure is transient. */
  steps: readonly StartupStep[];
  /** Stops serving and drains; the kit closes the producer and registered clients afterwards. */
  stop(): Promise<void>;
  /** Extra fields for the "<name> ready" log line. */
  readyFields?(): Record<string, unknown>;
}

export interface ServiceSpec<S extends z.ZodRawShape, X> {
  /** Logger name, Kafka client id, "<name> ready". */
  name: string;
  /** HTTP_PORT's default: the service's well-known port. */
  port: number;
  /** The service's own variables, validated together with the shared ones. */
  env: S;
  checks?: readonly EnvCheck<ServiceConfig<S>>[];
  /** Logged when stopping starts ('stopping' by default) and after a clean stop. */
  stoppingMessage?: string;
  stoppedMessage?: string;
  producer?(kit: Omit<ServiceKit<ServiceConfig<S>>, 'producer'>): ProducerExtras;
  /** The service's own connections and checks of its configuration files (Postgres, a key set, a site file). */
  connect(kit: ServiceKit<ServiceConfig<S>>): X | Promise<X>;
  build(kit: ServiceKit<ServiceConfig<S>>, connections: X): ServiceParts | Promise<ServiceParts>;
}

/** The schema of a service's environment: the shared variables, HTTP_PORT with its default, its own, its checks. */
export function serviceEnvSchema<S extends z.ZodRawShape>(
  spec: Pick<ServiceSpec<S, unknown>, 'port' | 'env' | 'checks'>,
): z.ZodType<ServiceConfig<S>> {
  let schema = z.object({
    ...serviceEnv,
    HTTP_PORT: portEnv(spec.port),
    ...spec.env,
  }) as unknown as z.ZodType<ServiceConfig<S>>;
  for (const c of spec.checks ?? []) {
    schema = schema.refine((cfg) => c.ok(cfg), { message: c.message, path: [c.path] });
  }
  return schema;
}

/**
 * The "<name> failed to start" line and exit code for a failure before
 * start-up steps run (configuration, a configuration file, a key set). The
 * message is the hub's own (a HubError's, which names variables, never their
 * values) or the error's label: never a foreign message, which can quote data.
 */
export function startFailure(
  name: string,
  err: unknown,
): { code: string; message: string; exitCode: number } {
  const h = toHubError(err);
  return {
    code: h.code,
    message: `${name} failed to start: ${isHubError(err) ? h.message : errorLabel(err)}`,
    exitCode: 1,
  };
}

/** The producer options of a service that publishes clinical events: its topics and publish metrics. */
export function eventPublisher(kit: Pick<ServiceKit<unknown>, 'topicFor' | 'metrics'>): ProducerExtras {
  return {
    topicFor: kit.topicFor,
    onPublished: (topic, type, n) => kit.metrics.eventsPublished.inc({ topic, type }, n),
    ...producerMetricsHooks(kit.metrics),
  };
}

type Closer = () => Promise<void>;

/** Runs a service as the module comment says; resolves once it is ready (a failed start exits instead). */
export async function runService<S extends z.ZodRawShape, X>(spec: ServiceSpec<S, X>): Promise<void> {
  let config: ServiceConfig<S>;
  try {
    config = loadConfig(serviceEnvSchema(spec));
  } catch (err) {
    // No level configured yet: the default one, so that the reason is always shown.
    return giveUp(createLogger({ name: spec.name }), spec.name, err);
  }
  const shared = sharedPart(config);
  const logger = createLogger({ name: spec.name, level: shared.LOG_LEVEL });
  // Before any connection: the process may be replaced by one with these heap flags.
  applyHeapSettings(shared, logger);
  applyCpuPriority(shared, logger);
  const closers: Closer[] = [];
  let parts: ServiceParts | undefined;
  const shutdown = installShutdown({
    logger,
    ...(spec.stoppingMessage ? { stoppingMessage: spec.stoppingMessage } : {}),
    ...(spec.stoppedMessage ? { stoppedMessage: spec.stoppedMessage } : {}),
    async stop() {
      if (parts) await parts.stop();
      for (const close of closers) await close();
    },
  });
  const kit = createKit(spec, config, logger, closers, shutdown);
  try {
    parts = await spec.build(kit, await spec.connect(kit));
  } catch (err) {
    // SIGTERM while connecting: the stop closed what connect was using; its exit (0) stands.
    if (shutdownBegun()) return;
    return giveUp(logger, spec.name, err);
  }
  if (shutdownBegun()) return;
  await startService({
    name: spec.name,
    logger,
    http: parts.http,
    config: shared,
    producer: kit.producer,
    steps: parts.steps,
    readyFields: () => ({ ...runtimeInEffect(), ...parts?.readyFields?.() }),
  });
}

function giveUp(logger: Logger, name: string, err: unknown): never {
  const f = startFailure(name, err);
  logger.fatal({ code: f.code }, f.message);
  process.exit(f.exitCode);
}

function createKit<S extends z.ZodRawShape, X>(
  spec: ServiceSpec<S, X>,
  config: ServiceConfig<S>,
  logger: Logger,
  closers: Closer[],
  exit: Shutdown,
): ServiceKit<ServiceConfig<S>> {
  const shared = sharedPart(config);
  const topic = topicNamer(shared.HUB_TOPIC_SUFFIX);
  const metrics = createMetrics();
  // TLS, SASL and registry authentication from the shared variables: no
  // service has code of its own for them (docs/security.md).
  const kafka = createKafkaClient({
    brokers: shared.KAFKA_BROKERS,
    clientId: shared.KAFKA_CLIENT_ID ?? spec.name,
    logger,
    security: kafkaSecurityFromEnv(shared),
    topicEnvironment: shared.KAFKA_TOPIC_ENV,
    fetchLimits: {
      maxBytes: shared.KAFKA_FETCH_MAX_BYTES,
      maxBytesPerPartition: shared.KAFKA_FETCH_PARTITION_MAX_BYTES,
    },
  });
  const codec = createEventCodec(
    createRegistryClient(shared.SCHEMA_REGISTRY_URL, registrySecurityFromEnv(shared)),
  );
  // A service that reads DATABASE_URL (databaseEnv) may have its password in a file.
  const passwordFile = (config as { DATABASE_PASSWORD_FILE?: string }).DATABASE_PASSWORD_FILE;
  const closing = <T>(client: T, close: (client: T) => Promise<void>): T => {
    closers.push(() => close(client));
    return client;
  };
  const base = {
    name: spec.name,
    config,
    logger,
    metrics,
    topic,
    topicFor: (type: EventType) => topic(EVENT_CONTRACTS[type].topic),
    kafka,
    codec,
    closing,
    database: (url: string, opts?: { pool: { min: number; max: number } }) =>
      closing(createDb(url, { ...opts, passwordFile }), (db) => db.destroy()),
    exit,
  };
  const producer = createChosenEventProducer({
    client: shared.KAFKA_PRODUCER_CLIENT,
    brokers: shared.KAFKA_BROKERS,
    clientId: shared.KAFKA_CLIENT_ID ?? spec.name,
    security: kafkaSecurityFromEnv(shared),
    kafka,
    codec,
    ackTimeoutMs: shared.KAFKA_ACK_TIMEOUT_MS,
    ...spec.producer?.(base),
  });
  // Registered before connect runs: closed first, before the service's own clients.
  closers.push(() => producer.disconnect());
  return { ...base, producer };
}
