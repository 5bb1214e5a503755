import type { KafkaClient } from '../../../libs/kafka/client.js';

/** One partition's offsets now, and the first offset written at or after each asked-for time. */
export interface PartitionWindow {
  low: bigint;
  high: bigint;
  /** Same order as the `times` asked for; `high` when nothing was written since. */
  at: bigint[];
}

/** Per existing topic, per partition. */
export type TopicWindows = Map<string, Map<number, PartitionWindow>>;

export interface Windows {
  /** Every topic on the broker. */
  existing: ReadonlySet<string>;
  topics: TopicWindows;
}

/**
 * Offsets of each topic now and at the given times, through one admin
 * connection: the broker finds the offsets by timestamp from its time
 * index, so how many records fell in a window is known without reading them.
 * Topics that do not exist are left out.
 */
export async function topicWindows(
  kafka: KafkaClient,
  topics: readonly string[],
  times: readonly number[],
): Promise<Windows> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const out: TopicWindows = new Map();
    for (const topic of topics) {
      if (!existing.has(topic)) continue;
      const now = await admin.fetchTopicOffsets(topic);
      const parts = new Map<number, PartitionWindow>(
        now.map((o) => [o.partition, { low: BigInt(o.low), high: BigInt(o.high), at: [] }]),
      );
      for (const t of times) {
        for (const o of await admin.fetchTopicOffsetsByTimestamp(topic, t)) {
          const p = parts.get(o.partition);
          // A partition that grew between the two calls: never past the high offset read first.
          if (p) p.at.push(BigInt(o.offset) < p.high ? BigInt(o.offset) : p.high);
        }
      }
      out.set(topic, parts);
    }
    return { existing, topics: out };
  } finally {
    await admin.disconnect();
  }
}

/** Records written since time index `i` (summed over partitions). Pure. */
export function recordsSince(parts: ReadonlyMap<number, PartitionWindow>, i: number): bigint {
  let n = 0n;
  for (const p of parts.values()) {
    const from = p.at[i] ?? p.high;
    n += p.high > from ? p.high - from : 0n;
  }
  return n;
}
