import type { Consumer, EachBatchPayload, IHeaders, KafkaMessage } from 'kafkajs';
import { HubError, isRetriable, toHubError } from '../errors/index.js';
import type { ClinicalEvent } from '../events/index.js';
import type { EventCodec } from '../events/codec.js';
import type { Logger } from '../telemetry/logger.js';
import type { KafkaClient } from './client.js';
import { byTopic, createGroupOffsetCommitter, type GroupOffsetCommitter } from './group-offsets.js';
import { GROUP_HEARTBEAT_INTERVAL_MS, GROUP_SESSION_TIMEOUT_MS, watchGroupMembership } from './membership.js';
import type { EventProducer } from './producer.js';

export { GROUP_HEARTBEAT_INTERVAL_MS, GROUP_SESSION_TIMEOUT_MS } from './membership.js';
/**
 * A batch whose handler has made no step (no call returned, no retry) for
 * this long is stuck: the timer stops heartbeating for it, so that a stuck
 * member loses its partitions to a live one after one session, as with
 * max.poll.interval.ms in the Java client (kafkajs' rebalance timeout, 60 s).
 * Well above the longest retry back-off (15 s).
 */
export const STUCK_BATCH_MS = 60_000;
/** At most one commit of the applied offsets to the consumer group per this many ms. */
export const GROUP_COMMIT_INTERVAL_MS = 1_000;
/** How long a stop waits for the final commit of the applied offsets before it leaves the group anyway. */
const FINAL_COMMIT_TIMEOUT_MS = 2_000;

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
}

export interface DeadLetter {
  consumer: string;
  reasonCode: string;
  reason: string;
  topic: string;
  partition: number;
  offset: string;
}

export interface ConsumerRunnerOptions {
  kafka: KafkaClient;
  codec: EventCodec;
  /** Used for dead-lettering: the raw record is copied, never re-encoded. */
  producer: EventProducer;
  groupId: string;
  topics: readonly string[];
  dlqTopic: string;
  logger: Logger;
  handle(batch: PartitionBatch): Promise<void>;
  /**
   * Optional: applies the batches of several partitions at once (one
   * transaction). When given, the partitions of a fetch are handled side by
   * side and the batches that are ready together are handed over as one
   * group; a group that fails is not retried as such: each of its batches
   * then goes through `handle` on its own, with its retries and poison
   * isolation. Grouping changes how many commits live traffic costs, not
   * what lands. Handler calls never overlap, grouped or not.
   */
  handleGroup?(batches: PartitionBatch[]): Promise<void>;
  /** A group is closed at this many records (default 5,000): bounds one transaction's size. */
  maxGroupRecords?: number;
  /**
   * Offsets the consumer's own store says were last applied, per partition.
   * When given, the runner seeks there on every assignment, so a lost or
   * reset consumer group cannot cause a replay gap or a full replay.
   */
  storedOffsets?(topic: string, partitions: number[]): Promise<Map<number, bigint>>;
  /** Attempts for a retriable failure before the runner gives up (and calls onFatal). */
  maxRetries?: number;
  retryBaseMs?: number;
  /**
   * Times the consumer is restarted after its retries ran out, before the
   * runner gives up and calls onFatal (not-ready; main exits non-zero)
   * instead of spinning silently. Reset by every finished batch.
   */
  maxRestarts?: number;
  onDeadLetter?(dl: DeadLetter): void;
  onApplied?(topic: string, count: number): void;
  onFatal?(err: HubError): void;
  sleep?(ms: number): Promise<void>;
  /** Lag (records behind the high watermark) when a batch starts and when it is done, for metrics. */
  onBatch?(b: BatchObservation): void;
  /**
   * Commit the applied offsets (last handled + 1) to the consumer group
   * (default true), after the handler has stored them: for the tools that
   * read group offsets (kafka-consumer-groups, lag exporters, `hub status`),
   * never to resume from when `storedOffsets` is given. At most one commit
   * per `groupCommitIntervalMs` (default GROUP_COMMIT_INTERVAL_MS), off the
   * batch path, a trailing one after the last batch and a final one on stop.
   * A failed commit is logged with its code and never fails a batch.
   */
  commitGroupOffsets?: boolean;
  groupCommitIntervalMs?: number;
  /** Default GROUP_SESSION_TIMEOUT_MS; the broker must accept it (group.min/max.session.timeout.ms). */
  sessionTimeoutMs?: number;
  /** Default GROUP_HEARTBEAT_INTERVAL_MS. */
  heartbeatIntervalMs?: number;
}

export interface BatchObservation {
  consumer: string;
  topic: string;
  partition: number;
  lag: number;
  phase: 'start' | 'done';
  /** Handling time; 0 at start. */
  seconds: number;
}

export interface ConsumerRunner {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Time of the last batch handled or of the last idle poll: a liveness signal for /ready. */
  lastProgressAt(): number;
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

/** kafkajs' error type (e.g. REBALANCE_IN_PROGRESS) or name: an identifier, never broker or record text. */
export function kafkaErrorCode(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 5; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string') return type;
    const next: unknown = (e as { originalError?: unknown }).originalError ?? e.cause;
    if (next === undefined) return e.name;
    e = next;
  }
  return err instanceof Error ? err.name : 'unknown';
}

/** Failures of a commit that a rebalance explains: the next commit (after the rejoin) makes up for them. */
const REBALANCE_CODES = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'NOT_COORDINATOR_FOR_GROUP',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
]);

/** Resolves when `p` settles or after `ms`, whichever is first; never rejects. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** Runs the functions it is given one at a time, in call order. */
function createExclusive(): <T>(fn: () => Promise<T>) => Promise<T> {
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
function createGrouper(
  handleGroup: (batches: PartitionBatch[]) => Promise<void>,
  maxRecords: number,
  exclusive: <T>(fn: () => Promise<T>) => Promise<T>,
  onFailed: (err: unknown, size: number) => void,
): (batch: PartitionBatch) => Promise<boolean> {
  let forming: GroupMember[] = [];
  let scheduled = false;
  const run = (group: GroupMember[]) => {
    if (group.length === 1) {
      group[0]!.settle(false);
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

export function createConsumerRunner(opts: ConsumerRunnerOptions): ConsumerRunner {
  const log = opts.logger.child({ component: 'consumer', groupId: opts.groupId });
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const maxRetries = opts.maxRetries ?? 8;
  const base = opts.retryBaseMs ?? 250;
  const maxRestarts = opts.maxRestarts ?? 3;
  const heartbeatIntervalMs = opts.heartbeatIntervalMs ?? GROUP_HEARTBEAT_INTERVAL_MS;
  let restarts = 0;
  let consumer: Consumer | null = null;
  let committer: GroupOffsetCommitter | null = null;
  let stopping = false;
  let progressAt = Date.now();
  /** When a handler call, decode or retry last returned: the runner is not stuck. */
  let stepAt = Date.now();
  const step = () => {
    stepAt = Date.now();
  };
  // Partitions are handled side by side only when batches can be grouped;
  // the handler itself is never entered twice at once.
  const exclusive = createExclusive();
  const handle = (b: PartitionBatch) => exclusive(() => opts.handle(b));
  const handleGroup = opts.handleGroup;
  const grouped = handleGroup
    ? createGrouper(
        (batches) => handleGroup(batches).finally(step),
        opts.maxGroupRecords ?? 5_000,
        exclusive,
        (err, size) =>
          log.warn(
            { code: toHubError(err).code, batches: size },
            'group failed, handling its batches one by one',
          ),
      )
    : null;

  /**
   * Heartbeats while batches are in flight (kafkajs only heartbeats between
   * them): one timer for the runner, running while any batch is. kafkajs
   * sends at most one heartbeat per interval whoever asks.
   */
  let inFlight = 0;
  let ticker: NodeJS.Timeout | null = null;
  let beat: (() => Promise<void>) | null = null;
  function busy(heartbeat: () => Promise<void>): () => void {
    beat = heartbeat;
    if (inFlight++ === 0) {
      ticker = setInterval(() => {
        if (Date.now() - stepAt < STUCK_BATCH_MS) void beat?.().catch(() => undefined);
      }, heartbeatIntervalMs);
      ticker.unref();
    }
    return () => {
      if (--inFlight === 0 && ticker) {
        clearInterval(ticker);
        ticker = null;
      }
    };
  }

  /** Commit failures, logged by code only: once as a warning, then at debug until a commit succeeds. */
  let commitFailures = 0;
  function groupCommitter(c: Consumer): GroupOffsetCommitter {
    return createGroupOffsetCommitter({
      intervalMs: opts.groupCommitIntervalMs ?? GROUP_COMMIT_INTERVAL_MS,
      commit: async (offsets) => {
        await c.commitOffsets(offsets);
        commitFailures = 0;
      },
      onError: (err) => {
        const kafka = kafkaErrorCode(err);
        const quiet = REBALANCE_CODES.has(kafka) || commitFailures++ > 0;
        log[quiet ? 'debug' : 'warn'](
          { code: toHubError(err, 'HUB_KAFKA_UNAVAILABLE').code, kafka },
          'could not commit applied offsets to the consumer group (tools only; will retry)',
        );
      },
    });
  }

  async function deadLetter(
    msg: KafkaMessage,
    topic: string,
    partition: number,
    err: unknown,
  ): Promise<void> {
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

  async function withRetry<T>(
    what: string,
    fn: () => Promise<T>,
    heartbeat: () => Promise<void>,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await fn();
        step();
        return result;
      } catch (err) {
        step();
        if (!isRetriable(err) || attempt >= maxRetries) throw err;
        const delay = Math.min(base * 2 ** attempt, 15_000);
        log.warn(
          { attempt: attempt + 1, delayMs: delay, code: toHubError(err).code },
          `${what} failed, retrying`,
        );
        await sleep(delay);
        await heartbeat().catch(() => undefined);
      }
    }
  }

  /**
   * One batch through `handle`, with retries; a batch that fails for good is
   * applied record by record so that everything else in it still lands and
   * only the poison record(s) are parked. False when the consumer stopped or
   * lost the partition meanwhile (nothing is resolved then).
   */
  async function handleAlone(
    whole: PartitionBatch,
    decoded: readonly { msg: KafkaMessage; rec: DecodedRecord }[],
    { heartbeat, isRunning, isStale }: Pick<EachBatchPayload, 'heartbeat' | 'isRunning' | 'isStale'>,
  ): Promise<boolean> {
    const { topic, partition, lastOffset } = whole;
    try {
      await withRetry('handler', () => handle(whole), heartbeat);
    } catch (err) {
      if (isRetriable(err)) throw err;
      log.warn({ topic, partition, code: toHubError(err).code }, 'batch failed, isolating records');
      for (let i = 0; i < decoded.length; i++) {
        if (!isRunning() || isStale()) return false;
        const d = decoded[i]!;
        const upTo = i === decoded.length - 1 ? lastOffset : d.rec.offset;
        try {
          await withRetry(
            'handler',
            () => handle({ topic, partition, records: [d.rec], lastOffset: upTo }),
            heartbeat,
          );
        } catch (e) {
          if (isRetriable(e)) throw e;
          await withRetry('dead-letter', () => deadLetter(d.msg, topic, partition, e), heartbeat);
          await withRetry(
            'checkpoint',
            () => handle({ topic, partition, records: [], lastOffset: upTo }),
            heartbeat,
          );
        }
      }
      if (decoded.length === 0) {
        await withRetry('checkpoint', () => handle({ topic, partition, records: [], lastOffset }), heartbeat);
      }
    }
    return true;
  }

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    if (payload.batch.messages.length === 0) return;
    step();
    const done = busy(payload.heartbeat);
    try {
      await handleBatch(payload);
    } finally {
      done();
    }
  }

  async function handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary } = payload;
    const { topic, partition } = batch;
    const startedAt = performance.now();
    const observe = (phase: 'start' | 'done', next: bigint) => {
      if (!opts.onBatch) return;
      const hw = BigInt(batch.highWatermark);
      opts.onBatch({
        consumer: opts.groupId,
        topic,
        partition,
        lag: Number(hw > next ? hw - next : 0n),
        phase,
        seconds: phase === 'done' ? (performance.now() - startedAt) / 1000 : 0,
      });
    };
    observe('start', BigInt(batch.firstOffset() ?? batch.lastOffset()));
    const decoded: { msg: KafkaMessage; rec: DecodedRecord }[] = [];
    for (const msg of batch.messages) {
      try {
        const value = msg.value ?? Buffer.alloc(0);
        // Without a promise per record once the schema is known: a batch has thousands.
        const event =
          opts.codec.decodeIfResolved(value) ??
          (await withRetry('decode', () => opts.codec.decode(value), heartbeat));
        decoded.push({
          msg,
          rec: {
            topic,
            partition,
            offset: BigInt(msg.offset),
            key: msg.key ? msg.key.toString('utf8') : null,
            timestamp: Number(msg.timestamp),
            event,
          },
        });
      } catch (err) {
        if (isRetriable(err)) throw err;
        await withRetry('dead-letter', () => deadLetter(msg, topic, partition, err), heartbeat);
      }
    }
    const lastOffset = BigInt(batch.lastOffset());
    const whole: PartitionBatch = { topic, partition, records: decoded.map((d) => d.rec), lastOffset };
    if (!(grouped && (await grouped(whole)))) {
      if (!(await handleAlone(whole, decoded, payload))) return;
    }
    step();
    resolveOffset(batch.lastOffset());
    progressAt = Date.now();
    restarts = 0;
    observe('done', lastOffset + 1n);
    opts.onApplied?.(topic, decoded.length);
    // Group offsets are only a hint for tools; the consumer's own store is the
    // truth. Committed from a timer, not here: no broker round trip per batch.
    const cm = committer;
    if (cm) {
      cm.applied(topic, partition, lastOffset + 1n);
      // Stopping: kafkajs waits for this batch before it leaves the group, and
      // its own commit path is closed by then; this batch's commit is the last.
      if (stopping) {
        await within(
          cm.flush((offsets) => commitOffsetsIfNecessary(byTopic(offsets))),
          FINAL_COMMIT_TIMEOUT_MS,
        );
      }
    }
    await heartbeat().catch(() => undefined);
  }

  let membership: { stop(): void } | null = null;

  /** The group lost this member without kafkajs noticing (membership.ts): reconnect, which rejoins. */
  function rejoin(secondsWithoutHeartbeat: number): void {
    if (stopping || !consumer) return;
    log.warn(
      { secondsWithoutHeartbeat },
      'fetches are answered but no heartbeat is accepted: the group lost this member; reconnecting',
    );
    void (async () => {
      const old = consumer;
      consumer = null;
      await within(committer?.flush() ?? Promise.resolve(), FINAL_COMMIT_TIMEOUT_MS);
      if (old) await within(old.disconnect(), 10_000);
      if (!stopping) await connect();
    })().catch((err: unknown) => {
      const h = toHubError(err, 'HUB_KAFKA_UNAVAILABLE');
      log.error({ code: h.code }, 'could not reconnect the consumer to its group');
      opts.onFatal?.(h);
    });
  }

  async function connect(): Promise<void> {
    const c = opts.kafka.consumer({
      groupId: opts.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: opts.sessionTimeoutMs ?? GROUP_SESSION_TIMEOUT_MS,
      heartbeatInterval: heartbeatIntervalMs,
      // A grouping consumer lets the broker gather up to 40 ms of records
      // into one fetch (one transaction downstream) instead of answering
      // with the first few: fewer, larger groups, at 20 ms of delay on average.
      minBytes: grouped ? 64 * 1024 : 1,
      maxWaitTimeInMs: grouped ? 40 : 250,
      // Larger than kafkajs' 1 MB: a replay then commits about half as many
      // transactions, each with the same fixed statements, and merges more
      // updates of one row into one write. Live batches are small anyway.
      maxBytesPerPartition: 2 * 1024 * 1024,
      // The partitions of a fetch are decoded together when grouping, so the
      // fetch itself is capped (kafkajs: 10 MB): a projector catching up
      // over 300,000 events peaked at 432-466 MiB RSS with 10 MB and
      // 327-342 MiB with 4 MB, at the same speed (382-388 MiB before grouping).
      maxBytes: grouped ? 4 * 1024 * 1024 : 10 * 1024 * 1024,
      retry: {
        retries: maxRetries,
        restartOnFailure: () => {
          restarts += 1;
          return Promise.resolve(restarts <= maxRestarts);
        },
      },
    });
    consumer = c;
    const cm = opts.commitGroupOffsets === false ? null : groupCommitter(c);
    committer = cm;
    await c.connect();
    for (const t of opts.topics) await c.subscribe({ topic: t, fromBeginning: true });
    const stored = opts.storedOffsets;
    if (stored || cm) {
      c.on(c.events.GROUP_JOIN, ({ payload }) => {
        cm?.retain(payload.memberAssignment);
        if (!stored) return;
        void (async () => {
          for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
            const offsets = await stored(topic, partitions);
            for (const [p, last] of offsets) {
              c.seek({ topic, partition: p, offset: String(last + 1n) });
              // The group shows where the store is, even before (or without) a new batch.
              cm?.applied(topic, p, last + 1n);
            }
          }
        })().catch((err: unknown) =>
          log.error({ code: toHubError(err).code }, 'could not seek to stored offsets'),
        );
      });
    }
    c.on(c.events.FETCH, () => {
      progressAt = Date.now();
    });
    membership = watchGroupMembership(c, rejoin);
    c.on(c.events.CRASH, ({ payload }) => {
      // kafkajs wraps the handler's error (retries exceeded): report the hub's own code.
      let cause: unknown = payload.error;
      while (cause instanceof Error && !(cause instanceof HubError) && cause.cause !== undefined)
        cause = cause.cause;
      const err = toHubError(cause instanceof HubError ? cause : payload.error, 'HUB_PROJECTION_FAILED');
      log.error({ code: err.code, restart: payload.restart }, 'consumer crashed');
      if (!payload.restart) opts.onFatal?.(err);
    });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Side by side only to form groups (see handleGroup); beyond the
      // partitions of one fetch there is nothing more to gain.
      partitionsConsumedConcurrently: grouped ? 64 : 1,
      eachBatch,
    });
  }

  return {
    async start() {
      stopping = false;
      await connect();
    },
    async stop() {
      membership?.stop();
      membership = null;
      const c = consumer;
      const cm = committer;
      consumer = null;
      if (!c) return;
      // The final commit, before the member leaves the group: what is applied
      // now, then (through eachBatch) what the batches in flight apply while
      // disconnect() waits for them. disconnect() then sends LeaveGroup, so a
      // restarted instance does not wait for this member's session to expire.
      stopping = true;
      if (cm) {
        cm.close();
        await within(cm.flush(), FINAL_COMMIT_TIMEOUT_MS);
      }
      await c.disconnect();
    },
    lastProgressAt: () => progressAt,
  };
}
