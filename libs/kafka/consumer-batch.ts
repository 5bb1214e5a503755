/**
 * What lands from one fetched batch: decoding, retries, grouping with other
 * partitions' batches, isolating a poison record and dead-lettering it. The
 * runner (consumer.ts) owns the group membership around it: when a batch
 * starts, and what is committed once it is done.
 */
import type { Batch, EachBatchPayload, IHeaders, KafkaMessage } from 'kafkajs';
import { HubError, isRetriable, toHubError } from '../errors/index.js';
import type { ClinicalEvent } from '../events/index.js';
import type { EventCodec } from '../events/codec.js';
import type { Logger } from '../telemetry/logger.js';
import type { EventProducer } from './producer.js';

export interface DecodedRecord {
  topic: string;
  partition: number;
  offset: bigint;
  key: string | null;
  timestamp: number;
  event: ClinicalEvent;
}

/**
 * What a handler receives: the decodable records of one topic-partition
 * batch, plus the batch's last offset, which a checkpointing handler must
 * record even when that last record was dead-lettered or filtered out.
 */
export interface PartitionBatch {
  topic: string;
  partition: number;
  records: DecodedRecord[];
  lastOffset: bigint;
  /**
   * The fence this member held on the partition when the batch was fetched
   * (ConsumerRunnerOptions.claim): a store that sees a newer fence refuses
   * the batch with BatchFenced. Undefined without claims.
   */
  fence?: bigint;
  /**
   * For a handler that waits on something outside the hub between attempts
   * (an outbound receiver that is down): marks a step, so the batch is not
   * taken for stuck and heartbeats go on, and answers false once the
   * consumer stops or loses the partition; the handler then gives the batch
   * up unresolved by throwing BatchFenced.
   */
  keepAlive?(): boolean;
}

/**
 * Thrown by a handler whose store was claimed by a newer assignment of the
 * batch's partition (another member, or this one after a rebalance): the
 * batch is from a stale generation and is dropped unresolved, neither retried
 * nor dead-lettered; the partition's current holder applies those records.
 */
export class BatchFenced extends Error {
  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {
    super(`batch of ${topic}[${partition}] refused: the partition was assigned anew`);
    this.name = 'BatchFenced';
  }
}

/**
 * What a record that cannot be decoded leads to: an unreachable registry is
 * an outage, not a fault of the record, so the consumer pauses on it (no
 * skip, no dead letter) until the registry answers; another retriable failure
 * is retried a bounded number of times; anything else (wire format, Avro
 * body, schema id unknown to a registry that answers) is dead-lettered.
 */
export function decodeFailureAction(err: unknown): 'pause' | 'retry' | 'dead-letter' {
  if (err instanceof HubError && err.code === 'HUB_REGISTRY_UNAVAILABLE') return 'pause';
  return isRetriable(err) ? 'retry' : 'dead-letter';
}

/** A consumer's pauses on an unreachable registry, told to metrics as they start and end. */
export interface PauseObservation {
  consumer: string;
  reasonCode: string;
  paused: boolean;
  /** Length of the pause that ended; 0 when one starts. */
  seconds: number;
}

export interface DeadLetter {
  consumer: string;
  reasonCode: string;
  reason: string;
  topic: string;
  partition: number;
  offset: string;
}

/** Reason text safe to send to another system: codes and our own messages only, never driver text. */
export function safeReason(err: unknown): { code: string; reason: string } {
  const h = toHubError(err, 'HUB_PROJECTION_FAILED');
  if (err instanceof HubError) return { code: h.code, reason: h.message };
  // Foreign error messages (pg, avsc) can quote values, which may be PHI.
  const name = err instanceof Error ? err.name : 'Error';
  const pgCode = (err as { code?: unknown } | null)?.code;
  return { code: h.code, reason: `${name}${typeof pgCode === 'string' ? ` (${pgCode})` : ''}` };
}

/**
 * A batch's records as fetched and as decoded, side by side (messages[i] is
 * records[i] as fetched): a dead letter copies the fetched one, never a
 * re-encoding. Two arrays, not a pair object per record: a catch-up decodes
 * thousands per fetch, and they live until their transaction ends.
 */
export interface Decoded {
  records: DecodedRecord[];
  messages: KafkaMessage[];
}

/** The runner's options that decide what happens to a batch, read when they are used. */
export interface BatchOptions {
  codec: Pick<EventCodec, 'decode' | 'decodeIfResolved'>;
  producer: Pick<EventProducer, 'publishRaw'>;
  groupId: string;
  dlqTopic: string;
  onDeadLetter?(dl: DeadLetter): void;
  onPause?(p: PauseObservation): void;
}

export interface RetryPolicy {
  maxRetries: number;
  baseMs: number;
  sleep(ms: number): Promise<void>;
  log: Logger;
  /** Told whenever an attempt returns, failed or not: the runner is not stuck. */
  step(): void;
}

/** What handling one batch needs from its runner. */
export interface BatchContext {
  opts: BatchOptions;
  log: Logger;
  /** The handler; calls never overlap. */
  handle(batch: PartitionBatch): Promise<void>;
  retry: RetryPolicy;
  /** The store refused a batch of a stale generation (BatchFenced). */
  onFenced?(batch: PartitionBatch): void;
}

type Heartbeat = () => Promise<void>;

/**
 * Runs `fn` until it succeeds, with exponential back-off (at most 15 s) for a
 * retriable failure, at most `maxRetries` times; heartbeats after each wait,
 * so that a long back-off does not cost the member its partitions.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  what: string,
  fn: () => Promise<T>,
  heartbeat: Heartbeat,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      const result = await fn();
      policy.step();
      return result;
    } catch (err) {
      policy.step();
      if (!isRetriable(err) || attempt >= policy.maxRetries) throw err;
      const delay = Math.min(policy.baseMs * 2 ** attempt, 15_000);
      policy.log.warn(
        { attempt: attempt + 1, delayMs: delay, code: toHubError(err).code },
        `${what} failed, retrying`,
      );
      await policy.sleep(delay);
      await heartbeat().catch(() => undefined);
    }
  }
}

/** Copies the fetched record to the DLQ topic with the reason in headers (codes only, no PHI). */
export async function deadLetter(
  ctx: BatchContext,
  msg: KafkaMessage,
  topic: string,
  partition: number,
  err: unknown,
): Promise<void> {
  const { opts, log } = ctx;
  const { code, reason } = safeReason(err);
  const headers: IHeaders = {
    ...(msg.headers ?? {}),
    'hub-dlq-reason-code': code,
    'hub-dlq-reason': reason,
    'hub-dlq-consumer': opts.groupId,
    'hub-dlq-source-topic': topic,
    'hub-dlq-source-partition': String(partition),
    'hub-dlq-source-offset': msg.offset,
    'hub-dlq-failed-at': new Date().toISOString(),
  };
  await opts.producer.publishRaw([{ topic: opts.dlqTopic, key: msg.key, value: msg.value, headers }]);
  log.warn({ reasonCode: code, topic, partition, offset: msg.offset }, 'record dead-lettered');
  opts.onDeadLetter?.({
    consumer: opts.groupId,
    reasonCode: code,
    reason,
    topic,
    partition,
    offset: msg.offset,
  });
}

/** Whether the batch still matters: the consumer runs and still holds the partition at that offset. */
type Alive = () => boolean;

/**
 * Decodes one record whose writer schema is not cached yet. While the
 * registry is unreachable the batch waits (back-off up to 15 s, heartbeating,
 * as long as `alive`), however long the outage lasts; undefined when the
 * batch stopped mattering meanwhile.
 */
async function decodeWaiting(
  ctx: BatchContext,
  value: Buffer,
  heartbeat: Heartbeat,
  alive: Alive,
): Promise<ClinicalEvent | undefined> {
  let pausedAt: number | null = null;
  let code = '';
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        const event = await ctx.opts.codec.decode(value);
        ctx.retry.step();
        return event;
      } catch (err) {
        ctx.retry.step();
        if (decodeFailureAction(err) !== 'pause') throw err;
        if (!alive()) return undefined;
        code = toHubError(err).code;
        if (pausedAt === null) {
          pausedAt = performance.now();
          ctx.log.warn({ code }, 'schema registry unreachable: consuming paused until it answers');
          ctx.opts.onPause?.({ consumer: ctx.opts.groupId, reasonCode: code, paused: true, seconds: 0 });
        }
        await ctx.retry.sleep(Math.min(ctx.retry.baseMs * 2 ** Math.min(attempt, 10), 15_000));
        await heartbeat().catch(() => undefined);
      }
    }
  } finally {
    if (pausedAt !== null) {
      const seconds = (performance.now() - pausedAt) / 1000;
      ctx.log.warn(
        { code, pausedMs: Math.round(seconds * 1000) },
        'schema registry answers again: consuming resumed',
      );
      ctx.opts.onPause?.({ consumer: ctx.opts.groupId, reasonCode: code, paused: false, seconds });
    }
  }
}

/**
 * Decodes a batch's records in order; a record that cannot be decoded for
 * good is dead-lettered on the spot, an unreachable registry pauses the batch
 * (decodeWaiting) and another retriable failure fails it after its retries,
 * and kafkajs then fetches it again. Null when the batch stopped mattering
 * (the consumer stopped or the partition was sought) during a pause.
 */
export async function decodeBatch(
  ctx: BatchContext,
  batch: Pick<Batch, 'topic' | 'partition' | 'messages'>,
  heartbeat: Heartbeat,
  alive: Alive = () => true,
): Promise<Decoded | null> {
  const { topic, partition } = batch;
  const records: DecodedRecord[] = [];
  const messages: KafkaMessage[] = [];
  for (const msg of batch.messages) {
    try {
      const value = msg.value ?? Buffer.alloc(0);
      // Without a promise per record once the schema is known: a batch has thousands.
      const event =
        ctx.opts.codec.decodeIfResolved(value) ??
        (await withRetry(ctx.retry, 'decode', () => decodeWaiting(ctx, value, heartbeat, alive), heartbeat));
      if (event === undefined) return null;
      records.push({
        topic,
        partition,
        offset: BigInt(msg.offset),
        key: msg.key ? msg.key.toString('utf8') : null,
        timestamp: Number(msg.timestamp),
        event,
      });
      messages.push(msg);
    } catch (err) {
      if (isRetriable(err)) throw err;
      await withRetry(ctx.retry, 'dead-letter', () => deadLetter(ctx, msg, topic, partition, err), heartbeat);
    }
  }
  return { records, messages };
}

/**
 * One batch through `handle`, with retries; a batch that fails for good is
 * applied record by record so that everything else in it still lands and
 * only the poison record(s) are parked. False when the consumer stopped or
 * lost the partition meanwhile (nothing is resolved then).
 */
export async function handleAlone(
  ctx: BatchContext,
  whole: PartitionBatch,
  decoded: Decoded,
  payload: Pick<EachBatchPayload, 'heartbeat' | 'isRunning' | 'isStale'>,
): Promise<boolean> {
  try {
    return await handleIsolating(ctx, whole, decoded, payload);
  } catch (err) {
    // A stale generation's batch: dropped as a whole, wherever the store refused it.
    if (!(err instanceof BatchFenced)) throw err;
    ctx.onFenced?.(whole);
    return false;
  }
}

async function handleIsolating(
  ctx: BatchContext,
  whole: PartitionBatch,
  { records, messages }: Decoded,
  { heartbeat, isRunning, isStale }: Pick<EachBatchPayload, 'heartbeat' | 'isRunning' | 'isStale'>,
): Promise<boolean> {
  const { topic, partition, lastOffset } = whole;
  const retry = <T>(what: string, fn: () => Promise<T>) => withRetry(ctx.retry, what, fn, heartbeat);
  try {
    await retry('handler', () => ctx.handle(whole));
  } catch (err) {
    if (err instanceof BatchFenced || isRetriable(err)) throw err;
    ctx.log.warn({ topic, partition, code: toHubError(err).code }, 'batch failed, isolating records');
    for (const [i, rec] of records.entries()) {
      if (!isRunning() || isStale()) return false;
      const upTo = i === records.length - 1 ? lastOffset : rec.offset;
      try {
        await retry('handler', () => ctx.handle({ ...whole, records: [rec], lastOffset: upTo }));
      } catch (e) {
        if (e instanceof BatchFenced || isRetriable(e)) throw e;
        const msg = messages[i];
        if (msg) await retry('dead-letter', () => deadLetter(ctx, msg, topic, partition, e));
        await retry('checkpoint', () => ctx.handle({ ...whole, records: [], lastOffset: upTo }));
      }
    }
    if (records.length === 0) {
      await retry('checkpoint', () => ctx.handle({ ...whole, records: [], lastOffset }));
    }
  }
  return true;
}

/** Runs the functions it is given one at a time, in call order. */
export function createExclusive(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

interface GroupMember {
  batch: PartitionBatch;
  /** True once the group holding the batch was applied; false: handle it on its own. */
  settle(applied: boolean): void;
}

/**
 * Collects the batches submitted in one turn of the event loop (kafkajs
 * starts the partitions of a fetch together) into groups of at most
 * `maxRecords` records, and runs each group through `exclusive`. A batch
 * left on its own takes the ordinary path at once: as a group of one it
 * would be the same transaction, and a failure would run it twice.
 */
export function createGrouper(
  handleGroup: (batches: PartitionBatch[]) => Promise<void>,
  maxRecords: number,
  exclusive: <T>(fn: () => Promise<T>) => Promise<T>,
  onFailed: (err: unknown, size: number) => void,
): (batch: PartitionBatch) => Promise<boolean> {
  let forming: GroupMember[] = [];
  let scheduled = false;
  const run = (group: GroupMember[]) => {
    if (group.length < 2) {
      for (const m of group) m.settle(false);
      return;
    }
    void exclusive(async () => {
      try {
        await handleGroup(group.map((m) => m.batch));
        for (const m of group) m.settle(true);
      } catch (err) {
        onFailed(err, group.length);
        for (const m of group) m.settle(false);
      }
    });
  };
  const flush = () => {
    scheduled = false;
    const members = forming;
    forming = [];
    let group: GroupMember[] = [];
    let records = 0;
    for (const m of members) {
      if (group.length > 0 && records + m.batch.records.length > maxRecords) {
        run(group);
        group = [];
        records = 0;
      }
      group.push(m);
      records += m.batch.records.length;
    }
    if (group.length > 0) run(group);
  };
  return (batch) =>
    new Promise<boolean>((settle) => {
      forming.push({ batch, settle });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
