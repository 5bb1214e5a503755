/**
 * What most `hub` commands start from: the repository they run in, the
 * shared config (Kafka, registry, Postgres, log level) and a quiet Kafka
 * client. Each command reads its config when it runs, not at import, so that
 * `hub --help` works without any environment.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { databaseEnv, kafkaEnv, loadConfig, logEnv, z } from '../libs/config/index.js';
import { createKafkaClient, type KafkaClient } from '../libs/kafka/client.js';
import { createLogger } from '../libs/telemetry/logger.js';

/** The repository root: schemas/, services/ and the git history `hub schemas check` reads. */
export const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Kafka, registry, Postgres and log level: commands that need more `.extend()` it. */
export const commonEnvSchema = z.object({ ...kafkaEnv, ...databaseEnv, ...logEnv });
export type CommonEnv = z.infer<typeof commonEnvSchema>;

export function commonEnv(): CommonEnv {
  return loadConfig(commonEnvSchema);
}

/** A Kafka client that logs errors only: the command reports failures itself, by code. */
export function cliKafka(brokers: string[], clientId = 'hub-cli'): KafkaClient {
  const logger = createLogger({ name: 'hub-cli', level: 'error' });
  return createKafkaClient({ brokers, clientId, logger });
}
