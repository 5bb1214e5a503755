/**
 * One subscription's delivery: its own Kafka consumer (group
 * `hub.delivery.<id>`, offsets in the delivery schema), handing each
 * matching event to its channel in log order (so in order per patient: topics
 * are keyed by patient), waiting and retrying while the receiver cannot be
 * reached, dead-lettering what it refuses, recording an AuditEvent for every
 * delivery that carried a patient's data, and only then moving its offsets.
 * At-least-once: a crash between a receiver's answer and the checkpoint
 * delivers those events again, with the same idempotency keys and numbers.
 */
import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { buildDeliveryAuditEvent } from '../audit/event.js';
import type { AuditSink } from '../audit/topic.js';
import { toDbError } from '../db/index.js';
import { toHubError } from '../errors/index.js';
import type { EventCodec } from '../events/codec.js';
import { EVENT_CONTRACTS, EVENT_TYPES, type ClinicalEvent, type EventType } from '../events/index.js';
import type { KafkaClient } from '../kafka/client.js';
import {
  BatchFenced,
  createConsumerRunner,
  type ConsumerRunner,
  type DecodedRecord,
  type PartitionBatch,
} from '../kafka/consumer.js';
import type { EventProducer } from '../kafka/producer.js';
import type { Logger } from '../telemetry/logger.js';
import type { DeliveryMetrics } from './metrics.js';
import {
  RESOURCE_TYPE_OF,
  idempotencyKey,
  matches,
  type ChannelSender,
  type Outcome,
  type Subscription,
} from './model.js';
import {
  eventsCounted,
  markFailing,
  placeStart,
  storeCheckpoint,
  subscriptionOffsets,
  type PendingDeadLetter,
} from './progress.js';
import { claimPartition, storedOffsets } from '../kafka/stored-offsets.js';

export interface WorkerDeps {
  db: Knex;
  schema: string;
  kafka: KafkaClient;
  codec: EventCodec;
  producer: EventProducer;
  logger: Logger;
  metrics: DeliveryMetrics;
  audit: Pick<AuditSink, 'recordAll'>;
  /** Catalog topic name → this deployment's topic. */
  topic(catalogName: string): string;
  /** Dead-letter topic for records that cannot be decoded (the consumer's own DLQ). */
  dlqTopic: string;
  observer: string;
  now(): number;
  sleep?(ms: number): Promise<void>;
  onFatal?(subscriptionId: string, code: string): void;
}

/** Checkpoint at most this many deliveries apart: the redelivery a crash can cause. */
const CHUNK = 200;
/** A wait on a receiver is cut in slices this long, checking between them that the batch is still ours. */
const WAIT_SLICE_MS = 500;

/** The topics holding events the criteria can match. */
export function topicsOf(sub: Subscription, topic: (catalogName: string) => string): string[] {
  const c = sub.criteria;
  const types = EVENT_TYPES.filter(
    (t: EventType) =>
      (c.eventTypes.length === 0 || c.eventTypes.includes(t)) &&
      (c.resourceTypes.length === 0 || c.resourceTypes.includes(RESOURCE_TYPE_OF[t])) &&
      // Attachment bytes go only to who asks for them by name.
      (t !== 'AttachmentStored' || c.eventTypes.includes(t) || c.resourceTypes.includes('Binary')),
  );
  return [...new Set(types.map((t) => topic(EVENT_CONTRACTS[t].topic)))].sort();
}

export function deliveryGroupId(subscriptionId: string): string {
  return `hub.delivery.${subscriptionId}`;
}

/** The receiver's host and port, for the audit: never a path or a query. */
export function destinationOf(sub: Subscription): string {
  const c = sub.channel;
  if (c.type === 'mllp') return `${c.host}:${c.port}`;
  return new URL(c.endpoint).host;
}

export interface SubscriptionWorker {
  readonly subscription: Subscription;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Runs `fn` with the channel while no batch uses it (redrive, heartbeat). */
  withChannel<T>(fn: (sender: ChannelSender) => Promise<T>): Promise<T>;
  lastProgressAt(): number;
}

/** What one partition batch has done since its last checkpoint. */
interface Chunk {
  counted: number;
  deliveredAt: Date | null;
  audits: AuditEvent[];
  deadLetters: PendingDeadLetter[];
  lastOffset: bigint | null;
}

const emptyChunk = (): Chunk => ({
  counted: 0,
  deliveredAt: null,
  audits: [],
  deadLetters: [],
  lastOffset: null,
});

/** The subscription's own consumer: its group, its offsets and fences in the delivery schema. */
function subscriptionRunner(
  deps: WorkerDeps,
  sub: Subscription,
  log: Logger,
  topics: string[],
  handle: (batch: PartitionBatch) => Promise<void>,
  onClaim: (topic: string, partition: number, last: bigint | undefined) => Promise<void>,
): ConsumerRunner {
  const { db, schema } = deps;
  return createConsumerRunner({
    kafka: deps.kafka,
    codec: deps.codec,
    producer: deps.producer,
    groupId: deliveryGroupId(sub.id),
    topics,
    dlqTopic: deps.dlqTopic,
    logger: log,
    handle,
    storedOffsets: (topic, partitions) =>
      dbStep(() => storedOffsets(db, subscriptionOffsets(schema, sub.id), topic, partitions)),
    claim: (topic, partition) =>
      dbStep(async () => {
        const c = await claimPartition(db, subscriptionOffsets(schema, sub.id), topic, partition);
        await onClaim(topic, partition, c.last);
        return c;
      }),
    onBatch: (b) =>
      deps.metrics.lag.set({ subscription: sub.id, topic: b.topic, partition: String(b.partition) }, b.lag),
    onFatal: (err) => {
      log.error({ code: err.code }, 'subscription consumer gave up after its retries');
      deps.onFatal?.(sub.id, err.code);
    },
    commitGroupOffsets: true,
  });
}

function deadLetterOf(
  rec: DecodedRecord,
  outcome: Extract<Outcome, { kind: 'rejected' }>,
  eventNumber: number,
): PendingDeadLetter {
  return {
    topic: rec.topic,
    partition: rec.partition,
    offset: rec.offset,
    eventId: rec.event.data.meta.eventId,
    eventType: rec.event.type,
    patientId: rec.event.data.patientId,
    reason: outcome.reason,
    detail: outcome.detail,
    eventNumber,
  };
}

/**
 * A Postgres step as the consumer must see it: an unreachable database is
 * retriable (the consumer waits and retries, then restarts), never a reason
 * to isolate and dead-letter the batch's records; a fence stays a fence.
 */
async function dbStep<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof BatchFenced) throw err;
    throw toDbError(err);
  }
}

const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * Stores what a chunk of a partition batch did: its AuditEvents first
 * (acknowledged by Kafka before the offsets move past what they record), then
 * offsets, count and dead letters in one transaction. Answers the offset stored.
 */
async function storeChunk(
  deps: WorkerDeps,
  subscriptionId: string,
  batch: PartitionBatch,
  chunk: Chunk,
): Promise<bigint | null> {
  const offset = chunk.lastOffset;
  if (offset === null) return null;
  await deps.audit.recordAll(chunk.audits);
  const checkpoint = {
    topic: batch.topic,
    partition: batch.partition,
    fence: batch.fence,
    lastOffset: offset,
    counted: chunk.counted,
    deliveredAt: chunk.deliveredAt,
    deadLetters: chunk.deadLetters,
  };
  await dbStep(() => storeCheckpoint(deps.db, deps.schema, subscriptionId, checkpoint, new Date(deps.now())));
  return offset;
}

/** What a retry loop needs of its worker. */
export interface RetryContext {
  deps: WorkerDeps;
  sub: Subscription;
  log: Logger;
  withChannel<T>(fn: (s: ChannelSender) => Promise<T>): Promise<T>;
  sleep(ms: number): Promise<void>;
}

/**
 * The AuditEvent of one delivery, or null when it carried no patient's data
 * (an empty rest-hook notification names no patient and no resource).
 */
export function deliveryAudit(
  deps: Pick<WorkerDeps, 'now' | 'observer'>,
  sub: Subscription,
  event: ClinicalEvent,
  key: string,
): AuditEvent | null {
  if (sub.channel.type === 'rest-hook' && sub.channel.payload === 'empty') return null;
  return buildDeliveryAuditEvent({
    id: randomUUID(),
    recorded: deps.now(),
    subscriptionId: sub.id,
    subscriptionName: sub.name,
    channel: sub.channel.type,
    destination: destinationOf(sub),
    patientId: event.data.patientId,
    eventType: event.type,
    eventId: event.data.meta.eventId,
    idempotencyKey: key,
    observer: deps.observer,
  });
}

/** Delivers one event, waiting on an unreachable receiver with back-off up to the subscription's bound. */
export async function deliverWithRetry(
  r: RetryContext,
  batch: PartitionBatch,
  rec: DecodedRecord,
  eventNumber: number,
  key: string,
): Promise<Outcome> {
  const { deps, sub, log, withChannel, sleep } = r;
  const { db, schema } = deps;
  const labels = { subscription: sub.id };
  let firstFailure: number | null = null;
  for (let attempt = 0; ; attempt++) {
    const outcome = await withChannel((s) =>
      s.deliver({ subscription: sub, record: rec, eventNumber, idempotencyKey: key }),
    );
    if (outcome.kind !== 'unreachable') return outcome;
    deps.metrics.failures.inc({ ...labels, reason: outcome.reason });
    deps.metrics.failing.set(labels, 1);
    const now = deps.now();
    if (firstFailure === null) {
      firstFailure = now;
      log.warn({ reason: outcome.reason }, 'receiver unreachable; retrying with back-off');
      await markFailing(db, schema, sub.id, outcome.reason, new Date(now));
    }
    if (now - firstFailure >= sub.retry.giveUpAfterSeconds * 1000) {
      return { kind: 'rejected', reason: `gave-up-${outcome.reason}`, detail: null };
    }
    const backoff = Math.min(sub.retry.maxBackoffSeconds * 1000, 1000 * 2 ** Math.min(attempt, 20));
    for (let waited = 0; waited < backoff; waited += WAIT_SLICE_MS) {
      if (batch.keepAlive && !batch.keepAlive()) throw new BatchFenced(batch.topic, batch.partition);
      await sleep(Math.min(WAIT_SLICE_MS, backoff - waited));
    }
  }
}

export function createSubscriptionWorker(
  deps: WorkerDeps,
  sub: Subscription,
  sender: ChannelSender,
): SubscriptionWorker {
  const { db, schema } = deps;
  const log = deps.logger.child({ subscription: sub.id });
  const topics = topicsOf(sub, deps.topic);
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let counted = 0;
  /** One user of the channel at a time: batches, redrives and heartbeats. */
  let channelTail: Promise<unknown> = Promise.resolve();
  const withChannel = <T>(fn: (s: ChannelSender) => Promise<T>): Promise<T> => {
    const run = channelTail.then(() => fn(sender));
    channelTail = run.catch(() => undefined);
    return run;
  };
  const labels = { subscription: sub.id };
  const retry: RetryContext = { deps, sub, log, withChannel, sleep };
  /** Last offset stored per partition: from the claim, then from each checkpoint. */
  const done = new Map<string, bigint>();

  const flush = async (batch: PartitionBatch, chunk: Chunk): Promise<void> => {
    const offset = await storeChunk(deps, sub.id, batch, chunk);
    if (offset !== null) done.set(partitionKey(batch.topic, batch.partition), offset);
  };

  function recordDelivered(chunk: Chunk, rec: DecodedRecord, key: string): void {
    const now = deps.now();
    chunk.deliveredAt = new Date(now);
    deps.metrics.delivered.inc({ ...labels, channel: sub.channel.type });
    deps.metrics.latency.observe(
      { ...labels, channel: sub.channel.type },
      Math.max(0, now - rec.event.data.meta.recordedAt) / 1000,
    );
    deps.metrics.lastSuccess.set(labels, now / 1000);
    deps.metrics.failing.set(labels, 0);
    const audit = deliveryAudit(deps, sub, rec.event, key);
    if (audit) chunk.audits.push(audit);
  }

  async function handle(batch: PartitionBatch): Promise<void> {
    const key = partitionKey(batch.topic, batch.partition);
    // A fetch can start before the seek to the stored offsets takes effect
    // (a new group reads from the beginning): what is done is passed over.
    const last = done.get(key) ?? -1n;
    let chunk = emptyChunk();
    for (const rec of batch.records) {
      if (rec.offset <= last) continue;
      if (matches(sub.criteria, rec.event) && !(sender.skips?.(rec.event) ?? false)) {
        const eventNumber = counted + chunk.counted + 1;
        const deliveryKey = idempotencyKey(sub.id, rec.event.data.meta.eventId);
        const outcome = await deliverWithRetry(retry, batch, rec, eventNumber, deliveryKey);
        chunk.counted++;
        if (outcome.kind === 'delivered') {
          recordDelivered(chunk, rec, deliveryKey);
        } else if (outcome.kind === 'rejected') {
          deps.metrics.deadLetters.inc({ ...labels, reason: outcome.reason });
          log.warn({ reason: outcome.reason, eventNumber }, 'event dead-lettered for this subscription');
          chunk.deadLetters.push(deadLetterOf(rec, outcome, eventNumber));
        }
      }
      chunk.lastOffset = rec.offset;
      if (chunk.counted >= CHUNK) {
        await flush(batch, chunk);
        counted += chunk.counted;
        chunk = emptyChunk();
      }
    }
    chunk.lastOffset = batch.lastOffset > last ? batch.lastOffset : last;
    await flush(batch, chunk);
    counted += chunk.counted;
  }

  let runner: ConsumerRunner | null = null;
  return {
    subscription: sub,
    withChannel,
    lastProgressAt: () => runner?.lastProgressAt() ?? Date.now(),
    async start() {
      await placeStart(db, schema, deps.kafka, sub, topics);
      counted = await eventsCounted(db, schema, sub.id);
      runner = subscriptionRunner(deps, sub, log, topics, handle, async (topic, partition, last) => {
        if (last !== undefined) done.set(partitionKey(topic, partition), last);
        // Another member may have counted events meanwhile: numbers continue from the store.
        counted = await eventsCounted(db, schema, sub.id);
      });
      try {
        await runner.start();
      } catch (err) {
        await runner.stop().catch(() => undefined);
        runner = null;
        throw toHubError(err);
      }
    },
    async stop() {
      const r = runner;
      runner = null;
      await r?.stop();
      await sender.close();
    },
  };
}
