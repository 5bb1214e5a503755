import { CompressionTypes, type Message, type Producer, type TopicMessages } from 'kafkajs';
import type { HubError } from '../errors/index.js';
import { EVENT_CONTRACTS, type ClinicalEvent } from '../events/index.js';
import type { EventCodec } from '../events/codec.js';
import type { KafkaClient } from './client.js';
import { assertAllAnswered, trackingPartitioner } from './partitioner.js';
import { groupedTransactions } from './transaction-groups.js';
import { mapKafkaError, withDeliveryDeadline, type PublishedEvent, type RawRecord } from './producer.js';

/**
 * All-or-nothing writes across topics (a FHIR transaction Bundle): the
 * records of one call are committed in one Kafka transaction, or aborted.
 * Consumers that read committed records only (the kafkajs default, and the
 * hub's runner) never see part of an aborted call. One transaction at a
 * time per producer: calls made while one is in flight share the next
 * (transaction-groups.ts), each still all or nothing.
 */
export interface TransactionalProducer {
  connect(): Promise<void>;
  publishAtomically(
    events: readonly ClinicalEvent[],
    extra?: readonly RawRecord[],
  ): Promise<PublishedEvent[]>;
  /** As EventProducer.health: not ok while a transaction waits past the ack timeout or after a failed one. */
  health(): { ok: boolean; detail?: string };
  disconnect(): Promise<void>;
}

export interface TransactionalProducerOptions {
  kafka: KafkaClient;
  codec: EventCodec;
  /** Unique per producing process instance: a second instance with the same id fences the first. */
  transactionalId: string;
  topicFor?: (type: ClinicalEvent['type']) => string;
  /** Test hook: runs inside the transaction after the records are sent, before commit. */
  beforeCommit?: () => Promise<void>;
  /** KAFKA_ACK_TIMEOUT_MS: a call not committed by then is answered with HUB_KAFKA_UNAVAILABLE (it may still commit). */
  ackTimeoutMs?: number;
}

const mapError = (err: unknown): HubError => mapKafkaError(err, 'kafka transaction');

/** The records of one call, encoded, by topic in order, with the hub's headers. */
async function transactionMessages(
  codec: EventCodec,
  topicFor: (type: ClinicalEvent['type']) => string,
  events: readonly ClinicalEvent[],
  extra: readonly RawRecord[],
): Promise<TopicMessages[]> {
  const byTopic = new Map<string, Message[]>();
  const add = (topic: string, m: Message) => {
    let list = byTopic.get(topic);
    if (!list) byTopic.set(topic, (list = []));
    list.push(m);
  };
  for (const e of events) {
    const topic = topicFor(e.type);
    add(topic, {
      key: e.data.patientId,
      value: await codec.encode(e, topic),
      headers: {
        'hub-event-type': e.type,
        'hub-event-id': e.data.meta.eventId,
        'hub-source': e.data.meta.source.system,
      },
    });
  }
  for (const r of extra) add(r.topic, { key: r.key, value: r.value, headers: r.headers ?? {} });
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

export function createTransactionalProducer(opts: TransactionalProducerOptions): TransactionalProducer {
  const newProducer = () => {
    const { partitioner, chosen } = trackingPartitioner();
    const producer: Producer = opts.kafka.producer({
      createPartitioner: partitioner,
      transactionalId: opts.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 3000 },
    });
    return { producer, chosen };
  };
  let current = newProducer();
  /**
   * Set after a failed transaction. kafkajs rolls a partition's sequence back
   * on any error, also when the broker may have written the batch; aborting
   * does not reset the broker's memory of it, so the next transaction's batch,
   * sent under the same numbers, would be taken for a retry of it and dropped
   * while its commit succeeds (the loss the leader-kill fault test found in
   * the idempotent producer, producer.ts renewIfFailed). A new producer with
   * the same transactional id bumps the epoch, which starts sequences afresh,
   * fences the old one and aborts a transaction it left open.
   */
  let failed = false;
  async function renewIfFailed(): Promise<void> {
    if (!failed) return;
    // Not awaited: a producer that stopped answering may not answer its disconnect either.
    void current.producer.disconnect().catch(() => undefined);
    current = newProducer();
    await current.producer.connect();
    failed = false;
  }
  const topicFor = opts.topicFor ?? ((type: ClinicalEvent['type']) => EVENT_CONTRACTS[type].topic);
  const stallMs = opts.ackTimeoutMs ?? 5_000;
  let runningSince: number | null = null;
  let lastOkAt = 0;
  let lastFailAt = 0;

  async function tracked(events: readonly ClinicalEvent[], extra: readonly RawRecord[]) {
    runningSince = performance.now();
    try {
      // A transaction left unanswered would hold every later call behind it (producer.ts
      // DELIVERY_TIMEOUT_MS); past the deadline it counts as failed, and the next call's new
      // producer fences the old one, aborting its open transaction.
      const out = await withDeliveryDeadline(run(events, extra));
      lastOkAt = performance.now();
      return out;
    } catch (err) {
      failed = true;
      lastFailAt = performance.now();
      throw err;
    } finally {
      runningSince = null;
    }
  }

  async function run(
    events: readonly ClinicalEvent[],
    extra: readonly RawRecord[],
  ): Promise<PublishedEvent[]> {
    const topicMessages = await transactionMessages(opts.codec, topicFor, events, extra);
    let txn;
    try {
      await renewIfFailed();
      txn = await current.producer.transaction();
    } catch (err) {
      throw mapError(err);
    }
    try {
      const { chosen } = current;
      chosen.clear();
      const answered = await txn.sendBatch({ topicMessages, acks: -1, compression: CompressionTypes.None });
      // A partition kafkajs's retry skipped (partitioner.ts trackingPartitioner) must not commit without its records.
      assertAllAnswered(chosen, answered);
      await opts.beforeCommit?.();
      await txn.commit();
    } catch (err) {
      await txn.abort().catch(() => undefined);
      throw mapError(err);
    }
    return events.map((e) => ({ topic: topicFor(e.type), eventId: e.data.meta.eventId }));
  }

  const groups = groupedTransactions(tracked, { ackTimeoutMs: opts.ackTimeoutMs });

  return {
    async connect() {
      try {
        await current.producer.connect();
      } catch (err) {
        throw mapError(err);
      }
    },
    publishAtomically: groups.publish,
    health() {
      const waited = runningSince === null ? 0 : performance.now() - runningSince;
      if (waited > stallMs) {
        return { ok: false, detail: `a transaction has waited ${(waited / 1000).toFixed(1)}s for Kafka` };
      }
      if (lastFailAt > lastOkAt) return { ok: false, detail: 'last Kafka transaction failed' };
      return { ok: true };
    },
    async disconnect() {
      await groups.idle();
      await current.producer.disconnect();
    },
  };
}
