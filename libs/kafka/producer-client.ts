import type { KafkaSecurity } from './security.js';
import { createPlatformaticEventProducer } from './platformatic-producer.js';
import { createEventProducer, type EventProducer, type ProducerOptions } from './producer.js';

/**
 * Which Kafka client writes the hub's events (KAFKA_PRODUCER_CLIENT). Both
 * give the same EventProducer: same records, headers, partitions, acks=all
 * and ack deadline; they differ in cost. Measured with
 * scripts/bench/kafka-clients.ts (the HL7 mix, closed-loop writers, the two
 * interleaved): @platformatic/kafka 1.9x the messages/s of kafkajs at 32
 * writers and half the CPU per message; the adapter's integration tests and
 * the leader-kill fault test pass on it. kafkajs stays for everything else
 * (consumers, admin, transactions) and as the fallback.
 */
export const PRODUCER_CLIENTS = ['kafkajs', 'platformatic'] as const;
export type ProducerClient = (typeof PRODUCER_CLIENTS)[number];

/** The measured winner. */
export const DEFAULT_PRODUCER_CLIENT: ProducerClient = 'platformatic';

export interface ChosenProducerOptions extends ProducerOptions {
  client: ProducerClient;
  /** The same brokers, client id and security the kafkajs client was built with. */
  brokers: string[];
  clientId: string;
  security?: KafkaSecurity | undefined;
}

export function createChosenEventProducer(opts: ChosenProducerOptions): EventProducer {
  if (opts.client === 'kafkajs') return createEventProducer(opts);
  return createPlatformaticEventProducer(opts);
}
