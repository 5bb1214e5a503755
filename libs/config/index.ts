import { z } from 'zod';
import { HubError } from '../errors/index.js';
import {
  crossVariableProblems,
  databaseSecurityEnv,
  kafkaSecurityEnv,
  registrySecurityEnv,
} from './security.js';

/**
 * Configuration is read once, in a service's main.ts, from the environment,
 * and validated here so that a typo fails at start with every problem listed,
 * not at 3 a.m. on the first message. Values are never echoed: some are secrets.
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  // Rules across variables (SASL needs credentials, a certificate its key),
  // for the shared groups the schema contains; here rather than as object
  // refinements so that every schema built from the shared shapes gets them,
  // `.extend()`ed ones included.
  const problems = result.success
    ? typeof result.data === 'object' && result.data !== null
      ? crossVariableProblems(result.data as Record<string, unknown>)
      : []
    : result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  if (result.success && problems.length === 0) return result.data;
  throw new HubError('HUB_CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`, {
    details: { problems },
  });
}

const csv = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port')).min(1));

/** The environments schemas/catalog.json defines topic replication for (KAFKA_TOPIC_ENV). */
export const TOPIC_ENVIRONMENTS = ['local', 'cluster', 'production'] as const;
export type TopicEnvironment = (typeof TOPIC_ENVIRONMENTS)[number];

/** Shared variable names: the same in every service, the local stack and compose.yaml. */
export const kafkaEnv = {
  KAFKA_BROKERS: csv.default(['127.0.0.1:9092']),
  KAFKA_CLIENT_ID: z.string().min(1).optional(),
  SCHEMA_REGISTRY_URL: z.url().default('http://127.0.0.1:8081/apis/ccompat/v7'),
  /**
   * Appended to every catalog topic name (`clinical.patient.v1.<suffix>`), and
   * so to every subject: isolated environments (a test run, a training
   * tenant) on one cluster without touching the real topics.
   */
  HUB_TOPIC_SUFFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .optional(),
  /**
   * How long a write may wait for the broker's acks=all before the caller is
   * answered with an error (HL7 AE, HTTP 503) and /ready turns not-ready. A
   * hung broker otherwise holds every sender until its own timeout. 5 s: far
   * above a healthy write here (p99 well under 0.5 s under load) and a
   * leader election, below the ACK timeouts senders are configured with.
   */
  KAFKA_ACK_TIMEOUT_MS: z.coerce.number().int().min(100).default(5_000),
  /**
   * The client that writes the hub's events: @platformatic/kafka by default
   * (measured about twice the messages/s of kafkajs at half the CPU per
   * message, libs/kafka/producer-client.ts); kafkajs is the fallback.
   * Consumers and admin stay on kafkajs.
   */
  KAFKA_PRODUCER_CLIENT: z.enum(['kafkajs', 'platformatic']).default('platformatic'),
  /**
   * Which environment's replication the topics the hub creates get
   * (schemas/catalog.json `environments`): local 1 copy, cluster and
   * production 3 copies with min.insync.replicas 2. `local` by default so the
   * one-broker laptop stack works; a production deployment sets `production`.
   */
  KAFKA_TOPIC_ENV: z.enum(TOPIC_ENVIRONMENTS).default('local'),
  /** TLS, SASL and registry authentication: docs/security.md. */
  ...kafkaSecurityEnv,
  ...registrySecurityEnv,
};

/** Shared by every service's main.ts: how long start-up may wait for its dependencies. */
export const startEnv = {
  HUB_START_BUDGET_MS: z.coerce.number().int().min(0).default(60_000),
};

export function topicNamer(suffix: string | undefined): (catalogName: string) => string {
  return (name) => (suffix ? `${name}.${suffix}` : name);
}

export const databaseEnv = {
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL')
    .default('postgres://postgres@127.0.0.1:5432/hub'),
  /** TLS goes in DATABASE_URL (`sslmode=verify-full&sslrootcert=<file>`); the password here: docs/security.md. */
  ...databaseSecurityEnv,
};

/** A TCP port (0: any free one), with the service's own default. */
export function portEnv(defaultPort: number) {
  return z.coerce.number().int().min(0).max(65535).default(defaultPort);
}

export const httpEnv = {
  HTTP_HOST: z.string().default('127.0.0.1'),
  HTTP_PORT: portEnv(8080),
};

/** A Postgres schema name a service owns (it is interpolated into SQL, hence the strict shape). */
export function schemaNameEnv(defaultName: string) {
  return z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/)
    .default(defaultName);
}

export const logEnv = {
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

export { z };
export { readSecret, secretOf, type Secret } from './security.js';
