import type { Batch, Consumer, ConsumerConfig, EachBatchPayload } from 'kafkajs';
import { HubError, toHubError } from '../errors/index.js';
import type { EventCodec } from '../events/codec.js';
import type { Logger } from '../telemetry/logger.js';
import {
  FETCH_PARTITION_MAX_BYTES,
  fetchLimitsOf,
  GROUPED_FETCH_MAX_BYTES,
  type KafkaClient,
} from './client.js';
import {
  createExclusive,
  createGrouper,
  decodeBatch,
  handleAlone,
  withRetry,
  type BatchContext,
  type DeadLetter,
  type PartitionBatch,
  type PauseObservation,
} from './consumer-batch.js';
import { byTopic, createGroupOffsetCommitter, type GroupOffsetCommitter } from './group-offsets.js';
import { GROUP_HEARTBEAT_INTERVAL_MS, GROUP_SESSION_TIMEOUT_MS, watchGroupMembership } from './membership.js';
import type { EventProducer } from './producer.js';

export {
  BatchFenced,
  safeReason,
  type DeadLetter,
  type DecodedRecord,
  type PartitionBatch,
  type PauseObservation,
} from './consumer-batch.js';
export { GROUP_HEARTBEAT_INTERVAL_MS, GROUP_SESSION_TIMEOUT_MS } from './membership.js';
/**
 * A batch whose handler has made no step (no call returned, no retry) for
 * this long is stuck: the timer stops heartbeating for it, so that a stuck
 * member loses its partitions to a live one after one session, as with
 * max.poll.interval.ms in the Java client (kafkajs' rebalance timeout, 60 s).
 * Well above the longest retry back-off (15 s).
 */
export const STUCK_BATCH_MS = 60_000;
/** A fence a store refused: the partition is lost until the next assignment. */
const LOST = -1n;
/** At most one commit of the applied offsets to the consumer group per this many ms. */
export const GROUP_COMMIT_INTERVAL_MS = 1_000;
/** How long a stop waits for the final commit of the applied offsets before it leaves the group anyway. */
const FINAL_COMMIT_TIMEOUT_MS = 2_000;

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
  /**
   * Claims a partition in the consumer's own store on its first batch after
   * each (re)assignment: the store records a new fence, which waits for the
   * transaction of a previous holder and makes the store refuse (BatchFenced)
   * every later batch that carries an older fence, i.e. one fetched by a
   * member, or a generation, that lost the partition. Answers the new fence
   * and the last offset stored, from which the batch must continue (a batch
   * starting beyond it is dropped and the partition sought back there).
   */
  claim?(topic: string, partition: number): Promise<{ fence: bigint; last: bigint | undefined }>;
  /** A batch of a stale generation was refused by the store. */
  onFenced?(topic: string, partition: number): void;
  /**
   * Apply one fetch while the next is fetched and decoded (default false;
   * only with `claim` and `storedOffsets`, which make the store the truth):
   * kafkajs fetches the next batch only after the handler returns, so a
   * catch-up otherwise leaves Kafka idle while Postgres works and Postgres
   * idle while the runner decodes. A batch's offset is resolved in kafkajs
   * before its transaction commits; a batch that then fails (or is refused)
   * seeks its partition back to where it was fetched from, and the next
   * batch of that partition is dropped unapplied, so the store still applies
   * every partition in order, once. A batch is handed to the handler only
   * when all work handed over before it is done (one fetch ahead, no more),
   * and a failure is thrown from the next batch, as it was from its own.
   */
  pipeline?: boolean;
  /** The group assigned this member its partitions (again): a rebalance, as this member saw it. */
  onAssigned?(partitions: number): void;
  /** Consuming paused on an unreachable schema registry, or resumed. */
  onPause?(p: PauseObservation): void;
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

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Heartbeats while batches are in flight (kafkajs only heartbeats between
 * them): one timer for the runner, running while any batch is. kafkajs
 * sends at most one heartbeat per interval whoever asks.
 */
class BatchHeartbeat {
  private inFlight = 0;
  private ticker: NodeJS.Timeout | null = null;
  private beat: (() => Promise<void>) | null = null;

  constructor(
    private readonly intervalMs: number,
    /** When the handler last made a step: a batch without one for STUCK_BATCH_MS gets no heartbeat. */
    private readonly lastStepAt: () => number,
  ) {}

  /** A batch starts, with its payload's heartbeat; the function returned ends it. */
  busy(heartbeat: () => Promise<void>): () => void {
    this.beat = heartbeat;
    if (this.inFlight++ === 0) {
      this.ticker = setInterval(() => {
        const beat = this.beat;
        if (Date.now() - this.lastStepAt() < STUCK_BATCH_MS) void beat?.().catch(() => undefined);
      }, this.intervalMs);
      this.ticker.unref();
    }
    return () => {
      if (--this.inFlight === 0 && this.ticker) {
        clearInterval(this.ticker);
        this.ticker = null;
      }
    };
  }
}

/** Commit failures, logged by code only: once as a warning, then at debug until a commit succeeds. */
function commitFailureLog(log: Logger): { succeeded(): void; failed(err: unknown): void } {
  let failures = 0;
  return {
    succeeded: () => {
      failures = 0;
    },
    failed: (err) => {
      const kafka = kafkaErrorCode(err);
      const quiet = REBALANCE_CODES.has(kafka) || failures++ > 0;
      log[quiet ? 'debug' : 'warn'](
        { code: toHubError(err, 'HUB_KAFKA_UNAVAILABLE').code, kafka },
        'could not commit applied offsets to the consumer group (tools only; will retry)',
      );
    },
  };
}

/** The kafkajs consumer: fetch sizes follow whether batches are grouped; `restartOnFailure` decides on a crash. */
function consumerConfig(
  opts: ConsumerRunnerOptions,
  grouped: boolean,
  heartbeatInterval: number,
  retries: number,
  restartOnFailure: () => Promise<boolean>,
): ConsumerConfig {
  const limits = fetchLimitsOf(opts.kafka);
  return {
    groupId: opts.groupId,
    allowAutoTopicCreation: false,
    sessionTimeout: opts.sessionTimeoutMs ?? GROUP_SESSION_TIMEOUT_MS,
    heartbeatInterval,
    // A grouping consumer lets the broker gather up to 40 ms of records
    // into one fetch (one transaction downstream) instead of answering
    // with the first few: fewer, larger groups, at 20 ms of delay on average.
    minBytes: grouped ? 64 * 1024 : 1,
    maxWaitTimeInMs: grouped ? 40 : 250,
    // Larger than kafkajs' 1 MB: a replay then commits about half as many
    // transactions, each with the same fixed statements, and merges more
    // updates of one row into one write. Live batches are small anyway.
    maxBytesPerPartition: limits?.maxBytesPerPartition ?? FETCH_PARTITION_MAX_BYTES,
    // The partitions of a fetch are decoded together when grouping, so the
    // fetch itself is capped (kafkajs: 10 MB): a projector catching up
    // over 300,000 events peaked at 432-466 MiB RSS with 10 MB and
    // 327-342 MiB with 4 MB, at the same speed (382-388 MiB before grouping);
    // 2 MiB lowered the memory benchmark's peaks by about 20 MiB at no cost
    // in replay speed (GROUPED_FETCH_MAX_BYTES). A service's configuration
    // sets it for every runner (KAFKA_FETCH_MAX_BYTES, the same by default).
    maxBytes: limits?.maxBytes ?? (grouped ? GROUPED_FETCH_MAX_BYTES : 10 * 1024 * 1024),
    retry: { retries, restartOnFailure },
  };
}

/**
 * On every assignment: the committer keeps only the partitions this member
 * holds, and with `stored` the consumer seeks to the offsets its own store
 * last applied.
 */
function followAssignments(
  c: Consumer,
  cm: GroupOffsetCommitter | null,
  stored: ConsumerRunnerOptions['storedOffsets'],
  log: Logger,
  pipeline: Pipeline | null,
): void {
  if (!stored && !cm) return;
  c.on(c.events.GROUP_JOIN, ({ payload }) => {
    cm?.retain(payload.memberAssignment);
    if (!stored) return;
    void (async () => {
      // A transaction handed over before the rebalance ends first, so the
      // seek is to the offset it stored, not the one before it. Only those:
      // a catch-up hands over more all the time, and the seek cannot wait for its end.
      await pipeline?.settled();
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

/** kafkajs wraps the handler's error (retries exceeded): the hub's own error behind it, if any. */
function crashError(error: unknown): HubError {
  let cause: unknown = error;
  while (cause instanceof Error && !(cause instanceof HubError) && cause.cause !== undefined)
    cause = cause.cause;
  return toHubError(cause instanceof HubError ? cause : error, 'HUB_PROJECTION_FAILED');
}

/** Reports a batch's lag at its start and end (and its handling time at the end) to `onBatch`. */
function batchObserver(
  opts: Pick<ConsumerRunnerOptions, 'groupId' | 'onBatch'>,
  batch: Batch,
): (phase: 'start' | 'done', next: bigint) => void {
  const startedAt = performance.now();
  return (phase, next) => {
    if (!opts.onBatch) return;
    const hw = BigInt(batch.highWatermark);
    opts.onBatch({
      consumer: opts.groupId,
      topic: batch.topic,
      partition: batch.partition,
      lag: Number(hw > next ? hw - next : 0n),
      phase,
      seconds: phase === 'done' ? (performance.now() - startedAt) / 1000 : 0,
    });
  };
}

/**
 * The work handed over ahead of kafkajs (ConsumerRunnerOptions.pipeline):
 * at most one fetch's batches, whose transactions run while the next fetch
 * is fetched and decoded.
 */
class Pipeline {
  /** Settles when all work handed over so far is done; never rejects. */
  private tail: Promise<unknown> = Promise.resolve();
  /** The first failure of that work not thrown yet. */
  private failure: { err: unknown } | null = null;

  /** Resolves when all work handed over is done; rejects, once, with the first failure among it. */
  async ready(): Promise<void> {
    await this.tail;
    const f = this.failure;
    this.failure = null;
    if (f) throw f.err;
  }

  submit(work: Promise<void>): void {
    const tracked = work.catch((err: unknown) => {
      this.failure ??= { err };
    });
    this.tail = Promise.all([this.tail, tracked]);
  }

  /** Waits for the work handed over so far (not for work handed over meanwhile). */
  async settled(): Promise<void> {
    await this.tail;
  }

  /** Waits for all work, also work handed over meanwhile: only once nothing more is handed over. */
  async drain(): Promise<void> {
    for (let t = this.tail; ; t = this.tail) {
      await t;
      if (t === this.tail) return;
    }
  }

  /** Drops a failure not thrown yet: the next consumer starts from the store anyway. */
  forget(): void {
    this.failure = null;
  }
}

/**
 * The runner's membership of its group: connecting, rejoining a group that
 * lost it, crashes and restarts, and what is resolved and committed once a
 * batch is done. What lands from a batch is decided in consumer-batch.ts.
 */
class GroupRunner {
  private readonly log: Logger;
  private readonly maxRetries: number;
  private readonly maxRestarts: number;
  private readonly heartbeatIntervalMs: number;
  private readonly batches: BatchContext;
  private readonly grouped: ((batch: PartitionBatch) => Promise<boolean>) | null;
  private readonly heartbeats: BatchHeartbeat;
  private readonly commitLog: ReturnType<typeof commitFailureLog>;
  /** Null unless ConsumerRunnerOptions.pipeline (and the store is the truth: claims and stored offsets). */
  private readonly pipeline: Pipeline | null;
  private restarts = 0;
  /** Assignments seen; a fence claimed in an earlier one is not reused. */
  private generation = 0;
  /** Fences claimed in the current assignment, by topic and partition. */
  private readonly fences = new Map<string, bigint>();
  private consumer: Consumer | null = null;
  private committer: GroupOffsetCommitter | null = null;
  private membership: { stop(): void } | null = null;
  private stopping = false;
  private progressAt = Date.now();
  /** When a handler call, decode or retry last returned: the runner is not stuck. */
  private stepAt = Date.now();

  constructor(private readonly opts: ConsumerRunnerOptions) {
    const log = opts.logger.child({ component: 'consumer', groupId: opts.groupId });
    this.log = log;
    this.maxRetries = opts.maxRetries ?? 8;
    this.maxRestarts = opts.maxRestarts ?? 3;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs ?? GROUP_HEARTBEAT_INTERVAL_MS;
    const step = () => this.step();
    // Partitions are handled side by side only when batches can be grouped;
    // the handler itself is never entered twice at once.
    const exclusive = createExclusive();
    this.batches = {
      opts,
      log,
      handle: (b) => exclusive(() => opts.handle(b)),
      retry: {
        maxRetries: this.maxRetries,
        baseMs: opts.retryBaseMs ?? 250,
        sleep: opts.sleep ?? defaultSleep,
        log,
        step,
      },
      onFenced: ({ topic, partition, fence }) => {
        log.warn({ topic, partition }, 'batch of a stale assignment refused by the store (fenced)');
        // Another member holds the partition now: until the group says so
        // (the next assignment), fetched batches of it are dropped unread.
        const key = `${topic}\u0000${partition}`;
        if (fence !== undefined && this.fences.get(key) === fence) this.fences.set(key, LOST);
        opts.onFenced?.(topic, partition);
      },
    };
    const handleGroup = opts.handleGroup;
    this.grouped = handleGroup
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
    this.heartbeats = new BatchHeartbeat(this.heartbeatIntervalMs, () => this.stepAt);
    this.commitLog = commitFailureLog(log);
    this.pipeline = opts.pipeline && opts.claim && opts.storedOffsets ? new Pipeline() : null;
  }

  lastProgressAt(): number {
    return this.progressAt;
  }

  private step(): void {
    this.stepAt = Date.now();
  }

  async start(): Promise<void> {
    this.stopping = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.membership?.stop();
    this.membership = null;
    const c = this.consumer;
    const cm = this.committer;
    this.consumer = null;
    if (!c) return;
    // The final commit, before the member leaves the group: what is applied
    // now, then (through eachBatch) what the batches in flight apply while
    // disconnect() waits for them. disconnect() then sends LeaveGroup, so a
    // restarted instance does not wait for this member's session to expire.
    this.stopping = true;
    // Transactions handed over ahead end while the member still holds its
    // partitions; batches still arriving are no longer handed over (alive()).
    await this.pipeline?.drain();
    this.pipeline?.forget();
    if (cm) {
      cm.close();
      await within(cm.flush(), FINAL_COMMIT_TIMEOUT_MS);
    }
    await c.disconnect();
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    if (payload.batch.messages.length === 0) return;
    this.step();
    const done = this.heartbeats.busy(payload.heartbeat);
    let ahead: { work: Promise<void> } | null = null;
    try {
      ahead = await this.handleBatch(payload);
    } finally {
      // Work handed over ahead heartbeats until it is done.
      if (ahead) void ahead.work.finally(done).catch(() => undefined);
      else done();
    }
  }

  /**
   * Handles a batch; with a pipeline, answers the work that goes on after
   * kafkajs was let fetch on (wrapped: an async function would wait for it).
   */
  private async handleBatch(payload: EachBatchPayload): Promise<{ work: Promise<void> } | null> {
    const { batch, heartbeat } = payload;
    const { topic, partition } = batch;
    const fence = await this.fenceOf(payload);
    if (fence === null) return null;
    const observe = batchObserver(this.opts, batch);
    observe('start', BigInt(batch.firstOffset() ?? batch.lastOffset()));
    const alive = () => payload.isRunning() && !payload.isStale() && !this.stopping;
    const decoded = await decodeBatch(this.batches, batch, heartbeat, alive);
    if (decoded === null) return null;
    const lastOffset = BigInt(batch.lastOffset());
    const whole: PartitionBatch = {
      topic,
      partition,
      records: decoded.records,
      lastOffset,
      ...(fence === undefined ? {} : { fence }),
      keepAlive: () => {
        this.step();
        return alive();
      },
    };
    const pipeline = this.pipeline;
    if (!pipeline) {
      if (!(await this.apply(whole, decoded, payload))) return null;
      payload.resolveOffset(batch.lastOffset());
      await this.applied(payload, decoded.records.length, observe);
      return null;
    }
    // The previous fetch's transactions first: a partition's batches are
    // applied in order, and one that failed has sought its partition back
    // (isStale), so this one, fetched beyond it, is dropped.
    await pipeline.ready();
    const key = `${topic}\u0000${partition}`;
    if (!alive() || (fence !== undefined && this.fences.get(key) !== fence)) return null;
    // kafkajs fetches on from here while this batch is in Postgres.
    payload.resolveOffset(batch.lastOffset());
    const consumer = this.consumer;
    const fetched = (batch as typeof batch & { fetchedOffset: string }).fetchedOffset;
    const work = (async () => {
      let ok = false;
      try {
        ok = await this.apply(whole, decoded, payload);
      } finally {
        // Not applied: fetch the batch again (unless the partition is being
        // sought elsewhere already), and drop what was fetched beyond it.
        if (!ok && !payload.isStale()) {
          try {
            consumer?.seek({ topic, partition, offset: fetched });
          } catch {
            // The consumer has stopped: the next one starts from the store.
          }
        }
      }
      if (ok) await this.applied(payload, decoded.records.length, observe);
    })();
    pipeline.submit(work);
    return { work };
  }

  /** A batch grouped with others' or on its own; false when it was not applied (see handleAlone). */
  private async apply(
    whole: PartitionBatch,
    decoded: Parameters<typeof handleAlone>[2],
    payload: EachBatchPayload,
  ): Promise<boolean> {
    if (this.grouped && (await this.grouped(whole))) return true;
    return handleAlone(this.batches, whole, decoded, payload);
  }

  /** What follows an applied batch: progress, metrics and the group offsets for tools. */
  private async applied(
    payload: EachBatchPayload,
    count: number,
    observe: ReturnType<typeof batchObserver>,
  ): Promise<void> {
    const { batch, heartbeat, commitOffsetsIfNecessary } = payload;
    const { topic, partition } = batch;
    const lastOffset = BigInt(batch.lastOffset());
    this.step();
    this.progressAt = Date.now();
    this.restarts = 0;
    observe('done', lastOffset + 1n);
    this.opts.onApplied?.(topic, count);
    // Group offsets are only a hint for tools; the consumer's own store is the
    // truth. Committed from a timer, not here: no broker round trip per batch.
    const cm = this.committer;
    if (cm) {
      cm.applied(topic, partition, lastOffset + 1n);
      // Stopping: kafkajs waits for this batch before it leaves the group, and
      // its own commit path is closed by then; this batch's commit is the last.
      if (this.stopping) {
        await within(
          cm.flush((offsets) => commitOffsetsIfNecessary(byTopic(offsets))),
          FINAL_COMMIT_TIMEOUT_MS,
        );
      }
    }
    await heartbeat().catch(() => undefined);
  }

  /**
   * The fence this member holds on the batch's partition, claimed on the
   * partition's first batch of each generation (see `claim`); undefined
   * without claims; null when the batch is to be dropped: the partition is
   * being sought, a rebalance came meanwhile, or the batch starts beyond the
   * stored offset (it is then sought back there).
   */
  private async fenceOf(payload: EachBatchPayload): Promise<bigint | undefined | null> {
    const claim = this.opts.claim;
    if (!claim) return undefined;
    const { batch, heartbeat, isStale } = payload;
    const key = `${batch.topic}\u0000${batch.partition}`;
    const known = this.fences.get(key);
    if (known === LOST) {
      // Not a busy loop of fetches while the group catches up with the loss.
      await (this.opts.sleep ?? defaultSleep)(this.heartbeatIntervalMs);
      return null;
    }
    if (known !== undefined) return isStale() ? null : known;
    const generation = this.generation;
    const c = await withRetry(
      this.batches.retry,
      'claim',
      () => claim(batch.topic, batch.partition),
      heartbeat,
    );
    if (generation !== this.generation || isStale()) return null;
    this.fences.set(key, c.fence);
    // kafkajs' Batch has the offset it was fetched from, untyped.
    const fetched = BigInt((batch as typeof batch & { fetchedOffset: string }).fetchedOffset);
    if (c.last !== undefined && fetched > c.last + 1n) {
      this.log.warn(
        { topic: batch.topic, partition: batch.partition },
        'fetched beyond the stored offset; seeking back',
      );
      this.consumer?.seek({ topic: batch.topic, partition: batch.partition, offset: String(c.last + 1n) });
      return null;
    }
    return c.fence;
  }

  /** The group lost this member without kafkajs noticing (membership.ts): reconnect, which rejoins. */
  private rejoin(secondsWithoutHeartbeat: number): void {
    if (this.stopping || !this.consumer) return;
    this.log.warn(
      { secondsWithoutHeartbeat },
      'fetches are answered but no heartbeat is accepted: the group lost this member; reconnecting',
    );
    this.reconnect().catch((err: unknown) => {
      const h = toHubError(err, 'HUB_KAFKA_UNAVAILABLE');
      this.log.error({ code: h.code }, 'could not reconnect the consumer to its group');
      this.opts.onFatal?.(h);
    });
  }

  private async reconnect(): Promise<void> {
    const old = this.consumer;
    this.consumer = null;
    if (this.pipeline) await within(this.pipeline.settled(), 10_000);
    await within(this.committer?.flush() ?? Promise.resolve(), FINAL_COMMIT_TIMEOUT_MS);
    if (old) await within(old.disconnect(), 10_000);
    // The old consumer hands over nothing more: what it did hand over ends before the new one joins.
    if (this.pipeline) {
      await within(this.pipeline.drain(), 10_000);
      this.pipeline.forget();
    }
    if (!this.stopping) await this.connect();
  }

  private groupCommitter(c: Consumer): GroupOffsetCommitter {
    return createGroupOffsetCommitter({
      intervalMs: this.opts.groupCommitIntervalMs ?? GROUP_COMMIT_INTERVAL_MS,
      commit: async (offsets) => {
        await c.commitOffsets(offsets);
        this.commitLog.succeeded();
      },
      onError: (err) => this.commitLog.failed(err),
    });
  }

  private async connect(): Promise<void> {
    const restartOnFailure = () => {
      this.restarts += 1;
      return Promise.resolve(this.restarts <= this.maxRestarts);
    };
    const grouped = this.grouped !== null;
    const c = this.opts.kafka.consumer(
      consumerConfig(this.opts, grouped, this.heartbeatIntervalMs, this.maxRetries, restartOnFailure),
    );
    this.consumer = c;
    const cm = this.opts.commitGroupOffsets === false ? null : this.groupCommitter(c);
    this.committer = cm;
    await c.connect();
    for (const t of this.opts.topics) await c.subscribe({ topic: t, fromBeginning: true });
    c.on(c.events.GROUP_JOIN, ({ payload }) => {
      // Every partition is claimed anew: it may have had another holder meanwhile.
      this.generation += 1;
      this.fences.clear();
      const n = Object.values(payload.memberAssignment).reduce((a, ps) => a + ps.length, 0);
      this.log.info({ partitions: n }, 'partitions assigned');
      this.opts.onAssigned?.(n);
    });
    followAssignments(c, cm, this.opts.storedOffsets, this.log, this.pipeline);
    c.on(c.events.FETCH, () => {
      this.progressAt = Date.now();
    });
    this.membership = watchGroupMembership(c, (s) => this.rejoin(s));
    c.on(c.events.CRASH, ({ payload }) => {
      const err = crashError(payload.error);
      this.log.error({ code: err.code, restart: payload.restart }, 'consumer crashed');
      if (!payload.restart) this.opts.onFatal?.(err);
    });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Side by side only to form groups (see handleGroup); beyond the
      // partitions of one fetch there is nothing more to gain.
      partitionsConsumedConcurrently: grouped ? 64 : 1,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }
}

export function createConsumerRunner(opts: ConsumerRunnerOptions): ConsumerRunner {
  const runner = new GroupRunner(opts);
  return {
    start: () => runner.start(),
    stop: () => runner.stop(),
    lastProgressAt: () => runner.lastProgressAt(),
  };
}
