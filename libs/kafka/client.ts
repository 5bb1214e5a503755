import { Kafka, logLevel, type KafkaConfig, type LogEntry } from 'kafkajs';
import type { Logger } from '../telemetry/logger.js';

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
}

export type KafkaClient = Kafka;

const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

export function createKafkaClient(opts: KafkaClientOptions): KafkaClient {
  const log = opts.logger.child({ component: 'kafkajs' });
  const config: KafkaConfig = {
    clientId: opts.clientId,
    brokers: opts.brokers,
    connectionTimeout: opts.connectionTimeoutMs ?? 3000,
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5000 },
    logLevel: logLevel.WARN,
    // kafkajs log entries carry broker and protocol details, not record
    // contents, so they are safe to forward.
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        log[levels[level] ?? 'info']({ ...rest, namespace: entry.namespace }, message);
      },
  };
  return new Kafka(config);
}
