/**
 * Publishes a consumer's applied offsets to its Kafka consumer group, for
 * tools only (kafka-consumer-groups, lag exporters, `hub status`): the
 * consumer's own store (the projection's Postgres checkpoints) stays the
 * truth and is where it resumes from.
 *
 * Off the hot path: a batch only records its offset here (no broker round
 * trip); commits go out from a timer, at most one per `intervalMs`, the last
 * one trailing the last batch, so that an idle consumer shows lag 0. Commits
 * never overlap and each sends the newest offsets at the time it is sent, so
 * the group's offsets only move forward. A failed commit is reported through
 * `onError` and its offsets are tried again with the next one; it never fails
 * a batch.
 */

/** Offsets in the shape of kafkajs' commit calls: `offset` is the next offset to read. */
export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

export interface GroupOffsetCommitterOptions {
  /** Sends one commit; rejects when the broker refused it. */
  commit(offsets: TopicPartitionOffset[]): Promise<void>;
  /** At most one commit per this many ms (default 1,000). */
  intervalMs?: number;
  onError(err: unknown): void;
  now?(): number;
}

export interface GroupOffsetCommitter {
  /** A partition's records up to `next - 1` are applied (in the consumer's own store). */
  applied(topic: string, partition: number, next: bigint): void;
  /**
   * A new assignment: offsets not yet committed for partitions this member
   * no longer holds are dropped, so that it does not overwrite what the
   * partition's new owner commits.
   */
  retain(assignment: Readonly<Record<string, readonly number[]>>): void;
  /**
   * Commits what is pending now, after any commit in flight; `via` replaces
   * the commit function for this one (e.g. the one of a batch in flight
   * while the consumer stops). Never rejects.
   */
  flush(via?: (offsets: TopicPartitionOffset[]) => Promise<void>): Promise<void>;
  /** No more timed commits (a stop); `flush` still commits what is pending. */
  close(): void;
  /** Offsets recorded and not yet committed (for tests and diagnostics). */
  pending(): number;
}

/** kafkajs' Offsets shape (eachBatch's commitOffsetsIfNecessary): offsets grouped by topic. */
export function byTopic(offsets: readonly TopicPartitionOffset[]): {
  topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
} {
  const topics = new Map<string, { partition: number; offset: string }[]>();
  for (const { topic, partition, offset } of offsets) {
    const list = topics.get(topic) ?? [];
    list.push({ partition, offset });
    topics.set(topic, list);
  }
  return { topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })) };
}

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export function createGroupOffsetCommitter(opts: GroupOffsetCommitterOptions): GroupOffsetCommitter {
  const intervalMs = opts.intervalMs ?? 1_000;
  const now = opts.now ?? Date.now;
  let pending = new Map<string, TopicPartitionOffset & { next: bigint }>();
  /** What the group is known to hold, per partition: nothing is sent twice. */
  const committed = new Map<string, bigint>();
  let chain: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | null = null;
  let lastSentAt = -Infinity;
  let closed = false;
  /** The partitions of the last assignment (null before the first): others are not committed. */
  let held: Set<string> | null = null;

  function schedule(): void {
    if (closed || timer || pending.size === 0) return;
    timer = setTimeout(
      () => {
        timer = null;
        void flush();
      },
      Math.max(0, lastSentAt + intervalMs - now()),
    );
    // A pending commit never keeps a process alive.
    timer.unref();
  }

  function flush(via?: (offsets: TopicPartitionOffset[]) => Promise<void>): Promise<void> {
    const send = via ?? opts.commit;
    chain = chain.then(async () => {
      if (pending.size === 0) return;
      const batch = pending;
      pending = new Map();
      lastSentAt = now();
      const offsets = [...batch.values()].map(({ topic, partition, offset }) => ({
        topic,
        partition,
        offset,
      }));
      try {
        await send(offsets);
        for (const [k, o] of batch) committed.set(k, o.next);
      } catch (err) {
        opts.onError(err);
        // Tried again with the next commit, unless a newer offset (or a new assignment) replaced it.
        for (const [k, o] of batch) if (!pending.has(k) && (!held || held.has(k))) pending.set(k, o);
        schedule();
      }
    });
    return chain;
  }

  return {
    applied(topic, partition, next) {
      const k = key(topic, partition);
      // A batch that finished after its partition was given away.
      if (held && !held.has(k)) return;
      if (committed.get(k) === next) {
        pending.delete(k);
        return;
      }
      pending.set(k, { topic, partition, offset: next.toString(), next });
      schedule();
    },
    retain(assignment) {
      const assigned = new Set<string>();
      for (const [topic, partitions] of Object.entries(assignment))
        for (const p of partitions) assigned.add(key(topic, p));
      held = assigned;
      for (const k of [...pending.keys()]) if (!assigned.has(k)) pending.delete(k);
      // A partition given away may have moved on meanwhile, and a commit sent
      // around a rejoin may not have landed: after a new assignment nothing
      // is taken as committed.
      committed.clear();
    },
    flush,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
    },
    pending: () => pending.size,
  };
}
