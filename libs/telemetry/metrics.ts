import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchObservation } from '../kafka/consumer.js';

/**
 * One metrics registry per process. Labels carry codes and names of topics,
 * consumers and sources, never identifiers or values from messages (PHI).
 */
export interface HubMetrics {
  registry: Registry;
  deadLetters: Counter<'consumer' | 'reason'>;
  eventsApplied: Counter<'consumer' | 'topic'>;
  /** Projection transactions by write path: `bulk` (binary COPY, catching up) or `per-event` (statements). */
  projectionTransactions: Counter<'consumer' | 'path'>;
  eventsPublished: Counter<'topic' | 'type'>;
  /** HL7 adapter. `source` is a bounded, sanitised MSH-3; `type` is MSH-9.1_MSH-9.2. */
  hl7Received: Counter<'source' | 'type'>;
  hl7Acked: Counter<'source' | 'type' | 'code'>;
  hl7Rejected: Counter<'reason'>;
  hl7AckSeconds: Histogram<'code'>;
  /** Ops (issue 7). Records behind the partition's high watermark after a batch, per consumer group. */
  consumerLag: Gauge<'consumer' | 'topic' | 'partition'>;
  /** Broker time of the last batch a consumer finished: progress, as opposed to idle polling. */
  consumerLastBatch: Gauge<'consumer'>;
  batchSeconds: Histogram<'consumer'>;
  /** Scale-out (issue 19): assignments a member received, batches of a stale assignment its store refused. */
  consumerAssignments: Counter<'consumer'>;
  consumerFencedBatches: Counter<'consumer'>;
  /** 1 while a consumer waits for an unreachable schema registry; the seconds it waited. */
  consumerPaused: Gauge<'consumer'>;
  consumerPausedSeconds: Counter<'consumer' | 'reason'>;
  /** From handing records to the producer until acks=all, per topic. */
  produceSeconds: Histogram<'topic'>;
  /** Newest event published per source system (meta.source.system): "interface silent" alerts. */
  sourceLastMessage: Gauge<'source'>;
  sourceMessages: Counter<'source'>;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): HubMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    deadLetters: new Counter({
      name: 'hub_dead_letters_total',
      help: 'Records sent to a dead-letter topic, by consumer and reason code',
      labelNames: ['consumer', 'reason'],
      registers: [registry],
    }),
    eventsApplied: new Counter({
      name: 'hub_events_applied_total',
      help: 'Events applied by a consumer (after de-duplication)',
      labelNames: ['consumer', 'topic'],
      registers: [registry],
    }),
    projectionTransactions: new Counter({
      name: 'hub_projection_transactions_total',
      help: 'Committed projection transactions by write path: bulk (binary COPY while catching up) or per-event',
      labelNames: ['consumer', 'path'],
      registers: [registry],
    }),
    eventsPublished: new Counter({
      name: 'hub_events_published_total',
      help: 'Events acknowledged by Kafka (acks=all)',
      labelNames: ['topic', 'type'],
      registers: [registry],
    }),
    hl7Received: new Counter({
      name: 'hub_hl7_messages_received_total',
      help: 'HL7 messages received over MLLP, by sending application and message type',
      labelNames: ['source', 'type'],
      registers: [registry],
    }),
    hl7Acked: new Counter({
      name: 'hub_hl7_messages_acked_total',
      help: 'HL7 acknowledgements sent, by sending application, message type and ACK code',
      labelNames: ['source', 'type', 'code'],
      registers: [registry],
    }),
    hl7Rejected: new Counter({
      name: 'hub_hl7_rejected_total',
      help: 'HL7 input refused (AE/AR/framing), by reason code',
      labelNames: ['reason'],
      registers: [registry],
    }),
    hl7AckSeconds: new Histogram({
      name: 'hub_hl7_ack_seconds',
      help: 'Time from a complete MLLP frame to its ACK, by ACK code',
      labelNames: ['code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    consumerLag: new Gauge({
      name: 'hub_consumer_lag_records',
      help: 'Records between a consumer group position and the partition high watermark, after its last batch',
      labelNames: ['consumer', 'topic', 'partition'],
      registers: [registry],
    }),
    consumerLastBatch: new Gauge({
      name: 'hub_consumer_last_batch_timestamp_seconds',
      help: 'Unix time a consumer last finished a non-empty batch',
      labelNames: ['consumer'],
      registers: [registry],
    }),
    consumerAssignments: new Counter({
      name: 'hub_consumer_assignments_total',
      help: 'Partition assignments (rebalances) this consumer group member received',
      labelNames: ['consumer'],
      registers: [registry],
    }),
    consumerFencedBatches: new Counter({
      name: 'hub_consumer_fenced_batches_total',
      help: 'Batches of a stale assignment refused by the store (their partition was assigned anew)',
      labelNames: ['consumer'],
      registers: [registry],
    }),
    consumerPaused: new Gauge({
      name: 'hub_consumer_paused',
      help: '1 while a consumer waits for an unreachable schema registry, else 0',
      labelNames: ['consumer'],
      registers: [registry],
    }),
    consumerPausedSeconds: new Counter({
      name: 'hub_consumer_paused_seconds_total',
      help: 'Seconds consumers waited for an unreachable schema registry (batches waiting side by side each count)',
      labelNames: ['consumer', 'reason'],
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: 'hub_consumer_batch_seconds',
      help: 'Time to handle one topic-partition batch (apply and checkpoint), per consumer group',
      labelNames: ['consumer'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    produceSeconds: new Histogram({
      name: 'hub_produce_seconds',
      help: 'Produce latency until acks=all, per topic',
      labelNames: ['topic'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    sourceLastMessage: new Gauge({
      name: 'hub_source_last_message_timestamp_seconds',
      help: 'Unix time of the newest event published for a source system',
      labelNames: ['source'],
      registers: [registry],
    }),
    sourceMessages: new Counter({
      name: 'hub_source_events_total',
      help: 'Events published per source system',
      labelNames: ['source'],
      registers: [registry],
    }),
  };
}

/** Source system names become label values: bounded and plain, whatever a sender puts in MSH-3. */
export function sourceLabel(system: string): string {
  const s = system.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 64);
  return s || 'unknown';
}

/** Hooks for createEventProducer: produce latency and per-source last-message time. */
export function producerMetricsHooks(m: HubMetrics): {
  onProduced: (topic: string, seconds: number) => void;
  onSources: (counts: ReadonlyMap<string, number>, atMs: number) => void;
} {
  return {
    onProduced: (topic, seconds) => m.produceSeconds.observe({ topic }, seconds),
    onSources: (counts, atMs) => {
      for (const [system, n] of counts) {
        const source = sourceLabel(system);
        m.sourceLastMessage.set({ source }, atMs / 1000);
        m.sourceMessages.inc({ source }, n);
      }
    },
  };
}

/** Hook for the consumer runner: lag per partition, batch duration and progress time. */
export function consumerMetricsHook(m: HubMetrics): (b: BatchObservation) => void {
  return (b) => {
    m.consumerLag.set({ consumer: b.consumer, topic: b.topic, partition: String(b.partition) }, b.lag);
    if (b.phase === 'done') {
      m.batchSeconds.observe({ consumer: b.consumer }, b.seconds);
      m.consumerLastBatch.set({ consumer: b.consumer }, Date.now() / 1000);
    }
  };
}
