/**
 * What most `hub` commands start from: the repository they run in, the
 * shared config (Kafka, registry, Postgres, log level) and a quiet Kafka
 * client. Each command reads its config when it runs, not at import, so that
 * `hub --help` works without any environment.
 */
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { databaseEnv, kafkaEnv, loadConfig, logEnv, z } from '../libs/config/index.js';
import { createDb, type Knex } from '../libs/db/index.js';
import { createRegistryClientFromEnv, type RegistryClient } from '../libs/events/registry.js';
import type { RegistrySecurityEnv } from '../libs/events/registry-security.js';
import { createKafkaClientFromEnv, type KafkaClient } from '../libs/kafka/client.js';
import type { KafkaSecurityEnv } from '../libs/kafka/security.js';
import { createLogger } from '../libs/telemetry/logger.js';

/** The repository root: schemas/, services/ and the git history `hub schemas check` reads. */
export const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Kafka, registry, Postgres and log level: commands that need more `.extend()` it. */
export const commonEnvSchema = z.object({ ...kafkaEnv, ...databaseEnv, ...logEnv });
export type CommonEnv = z.infer<typeof commonEnvSchema>;

export function commonEnv(): CommonEnv {
  return loadConfig(commonEnvSchema);
}

/**
 * A Kafka client that logs errors only: the command reports failures itself,
 * by code. TLS and SASL from the shared variables, as in every service.
 */
export function cliKafka(
  cfg: KafkaSecurityEnv & { KAFKA_BROKERS: string[] },
  clientId = 'hub-cli',
): KafkaClient {
  const logger = createLogger({ name: 'hub-cli', level: 'error' });
  return createKafkaClientFromEnv(cfg, { clientId, logger });
}

/** The schema registry, with its authentication and CA from the shared variables. */
export function cliRegistry(cfg: RegistrySecurityEnv & { SCHEMA_REGISTRY_URL: string }): RegistryClient {
  return createRegistryClientFromEnv(cfg);
}

/** Postgres at DATABASE_URL (TLS in the URL), the password from DATABASE_PASSWORD_FILE when set. */
export function cliDb(
  cfg: { DATABASE_URL: string; DATABASE_PASSWORD_FILE?: string | undefined },
  pool?: { min: number; max: number },
): Knex {
  return createDb(cfg.DATABASE_URL, { pool, passwordFile: cfg.DATABASE_PASSWORD_FILE });
}

/**
 * Who is acting, for the operator AuditEvents of commands that change or show data
 * (HUB_OPERATOR, else the OS user), and the audit topic they go to (AUDIT_TOPIC, else
 * hub.audit.v1 with the topic suffix): `.extend()` a command's schema with it.
 */
export const operatorEnv = {
  HUB_OPERATOR: z.string().min(1).optional(),
  AUDIT_TOPIC: z.string().optional(),
};

/** HUB_OPERATOR, else the OS user ('unknown' where the OS has none for this uid). */
export function operatorName(cfg: { HUB_OPERATOR?: string | undefined }): string {
  if (cfg.HUB_OPERATOR) return cfg.HUB_OPERATOR;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
