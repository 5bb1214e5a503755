import { Kafka, logLevel, type KafkaConfig, type LogEntry } from 'kafkajs';
import type { TopicEnvironment } from '../config/index.js';
import type { Logger } from '../telemetry/logger.js';
// Stops kafkajs polling every 1 ms on idle connections (and Node 24's TimeoutNegativeWarning).
import './idle-timer-fix.js';
import {
  kafkajsSecurity,
  kafkaSecurityFromEnv,
  type KafkaSecurity,
  type KafkaSecurityEnv,
} from './security.js';

/**
 * The only module that constructs a kafkajs client; the rest of the hub sees
 * the small interfaces in this folder, so the client could be swapped.
 */
export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
  logger: Logger;
  /** How long to keep retrying a broker connection before giving up (ms). */
  connectionTimeoutMs?: number;
  /** TLS and SASL (libs/kafka/security.ts); plaintext and anonymous when absent. */
  security?: KafkaSecurity | undefined;
  /**
   * The replication environment of the cluster (KAFKA_TOPIC_ENV): topics
   * created through this client get its settings (libs/events/topic-settings.ts).
   */
  topicEnvironment?: TopicEnvironment | undefined;
  /**
   * How much one fetch of any consumer runner on this client may bring
   * (KAFKA_FETCH_MAX_BYTES, KAFKA_FETCH_PARTITION_MAX_BYTES); without them
   * each runner keeps its own sizes (libs/kafka/consumer.ts).
   */
  fetchLimits?: FetchLimits | undefined;
}

/**
 * A grouping consumer's fetch cap over all its partitions, when the client
 * sets none, and the default of every service's KAFKA_FETCH_MAX_BYTES
 * (libs/service/runtime.ts). The partitions of such a fetch are decoded
 * together and held until their transaction ends, so the cap bounds a
 * projector's memory in a catch-up. 2 MiB, not the earlier 4: in the memory
 * benchmark (scripts/bench-memory.ts, 8 runs alternated, 2-core VM) the
 * highest service of a run peaked at 215-220 MiB against 222-242 (portal
 * 202-210 against 211-242), and a 200,000-event replay was no slower
 * (scripts/bench-replay-paths.ts --compare fetch: events/s 1.00 portal,
 * 1.09 billing, 1.07 analytics; docs/benchmarks.md, issue 23, ninth session).
 */
export const GROUPED_FETCH_MAX_BYTES = 2 * 1024 * 1024;
/** Per partition of a fetch, likewise: above kafkajs' 1 MiB so that a replay commits fewer, larger transactions. */
export const FETCH_PARTITION_MAX_BYTES = 2 * 1024 * 1024;

/** How much one fetch may bring, over all its partitions and per partition. */
export interface FetchLimits {
  maxBytes: number;
  maxBytesPerPartition: number;
}

export type KafkaClient = Kafka;

const topicEnvironments = new WeakMap<KafkaClient, TopicEnvironment>();

/** The environment the client was configured with; undefined for a client built without one (tests: local). */
export function topicEnvironmentOf(kafka: KafkaClient): TopicEnvironment | undefined {
  return topicEnvironments.get(kafka);
}

const fetchLimitsByClient = new WeakMap<KafkaClient, FetchLimits>();

/** The fetch limits the client was configured with; undefined: each consumer runner's own. */
export function fetchLimitsOf(kafka: KafkaClient): FetchLimits | undefined {
  return fetchLimitsByClient.get(kafka);
}

const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * Fields of a kafkajs log entry that could carry a credential if a future
 * kafkajs logged its connection options: strings and objects under such
 * names are replaced; numbers and booleans (`apiKey: 36`, `sasl: true`) kept.
 */
const CREDENTIAL_FIELD = /sasl|ssl|password|secret|token|key|cert|auth/i;

export function redactLogFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    const couldHoldSecret = typeof v === 'string' || (typeof v === 'object' && v !== null);
    out[k] = CREDENTIAL_FIELD.test(k) && couldHoldSecret ? '[redacted]' : v;
  }
  return out;
}

export function createKafkaClient(opts: KafkaClientOptions): KafkaClient {
  const log = opts.logger.child({ component: 'kafkajs' });
  const config: KafkaConfig = {
    clientId: opts.clientId,
    brokers: opts.brokers,
    ...kafkajsSecurity(opts.security),
    connectionTimeout: opts.connectionTimeoutMs ?? 3000,
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5000 },
    logLevel: logLevel.WARN,
    // kafkajs log entries carry broker and protocol details, not record
    // contents; a failed batch handler's error (a driver's, which can quote
    // row values) is scrubbed by the hub logger (libs/telemetry/redact.ts)
    // in the entry and in its message; credential-like fields are
    // redacted all the same (kafkajs logs only `ssl: true, sasl: true`).
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        log[levels[level] ?? 'info']({ ...redactLogFields(rest), namespace: entry.namespace }, message);
      },
  };
  const client = new Kafka(config);
  if (opts.topicEnvironment) topicEnvironments.set(client, opts.topicEnvironment);
  if (opts.fetchLimits) fetchLimitsByClient.set(client, opts.fetchLimits);
  return client;
}

/** A client from the shared variables (KAFKA_BROKERS and the security ones): what commands and scripts use. */
export function createKafkaClientFromEnv(
  env: KafkaSecurityEnv & { KAFKA_BROKERS: string[]; KAFKA_TOPIC_ENV?: TopicEnvironment },
  opts: Omit<KafkaClientOptions, 'brokers' | 'security'>,
): KafkaClient {
  return createKafkaClient({
    topicEnvironment: env.KAFKA_TOPIC_ENV,
    ...opts,
    brokers: env.KAFKA_BROKERS,
    security: kafkaSecurityFromEnv(env),
  });
}
