import { randomUUID } from 'node:crypto';
import type { IHeaders } from 'kafkajs';
import { HubError } from '../errors/index.js';
import type { KafkaClient } from './client.js';
import { mapKafkaError } from './producer.js';

// Bounded reads of non-event topics (dead letters, raw inbound messages,
// audit): tools and tests read what is there now, not a subscription.

/** One record of any topic, headers as strings. */
export interface ScannedRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  timestamp: number;
}

export function headerText(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined) continue;
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return out;
}

export interface PartitionRange {
  /** First offset to read (inclusive). */
  from: bigint;
  /** Offset to stop before (exclusive). */
  to: bigint;
}

/** Low (earliest kept) and high (next to be written) offsets of each partition. */
export async function partitionOffsets(
  kafka: KafkaClient,
  topic: string,
): Promise<Map<number, { low: bigint; high: bigint }>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offs = await admin.fetchTopicOffsets(topic);
    return new Map(offs.map((o) => [o.partition, { low: BigInt(o.low), high: BigInt(o.high) }]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * A bounded read of a topic: per partition, the records in the range the
 * `range` callback picks given the partition's low/high offsets (all of
 * them by default), as they were when the call started. A throw-away
 * consumer group that commits nothing and is deleted afterwards.
 */
export async function scanTopic(
  kafka: KafkaClient,
  topic: string,
  opts: {
    range?: (partition: number, low: bigint, high: bigint) => PartitionRange | null;
    timeoutMs?: number;
    /** Each batch's records in turn, awaited, instead of all of them returned: a long topic in bounded memory. */
    each?: (records: ScannedRecord[]) => Promise<void>;
    /**
     * The throw-away group's name before its random part (`hub-scan-` by
     * default): a service that scans under its own ACLs names a prefix its
     * principal holds (the delivery service: `hub.delivery.<id>.scan-`).
     */
    groupPrefix?: string;
  } = {},
): Promise<ScannedRecord[]> {
  const offsets = await partitionOffsets(kafka, topic);
  const remaining = new Map<number, PartitionRange>();
  const skipped = new Map<number, bigint>();
  for (const [p, { low, high }] of offsets) {
    const r = opts.range ? opts.range(p, low, high) : { from: low, to: high };
    const from = r && r.from > low ? r.from : low;
    const to = r && r.to < high ? r.to : high;
    if (r && from < to) remaining.set(p, { from, to });
    else skipped.set(p, high);
  }
  if (remaining.size === 0) return [];
  const groupId = `${opts.groupPrefix ?? 'hub-scan-'}${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 100 });
  const out: ScannedRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    // Seeks only skip what the range excludes (eachBatch filters by range
    // anyway), so they are made once the group is joined: seeking right after
    // run() threw "Consumer group was not initialized" when a fresh broker's
    // coordinator was still loading and run() returned before the join.
    let seeked = false;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (seeked) return;
      seeked = true;
      try {
        for (const [p, r] of remaining) consumer.seek({ topic, partition: p, offset: r.from.toString() });
        for (const [p, high] of skipped) consumer.seek({ topic, partition: p, offset: high.toString() });
      } catch {
        // Not needed for correctness: the whole partition is read and filtered.
      }
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new HubError('HUB_KAFKA_UNAVAILABLE', `reading ${topic} did not finish in time`)),
        opts.timeoutMs ?? 60_000,
      );
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const r = remaining.get(batch.partition);
            if (r) {
              const got: ScannedRecord[] = opts.each ? [] : out;
              for (const m of batch.messages) {
                const off = BigInt(m.offset);
                if (off < r.from || off >= r.to) continue;
                got.push({
                  topic,
                  partition: batch.partition,
                  offset: m.offset,
                  key: m.key ?? null,
                  value: m.value ?? null,
                  headers: headerText(m.headers),
                  timestamp: Number(m.timestamp),
                });
              }
              if (opts.each && got.length > 0) await opts.each(got);
              // A compacted or transactional topic can skip offsets: the batch's end counts.
              if (BigInt(batch.lastOffset()) >= r.to - 1n) remaining.delete(batch.partition);
            }
            if (remaining.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          // The consumer's own error, as a HubError naming the operation (never the broker's text).
          reject(mapKafkaError(err, `reading ${topic}`));
        });
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([groupId]))
      .catch(() => undefined)
      .finally(() => void admin.disconnect().catch(() => undefined));
  }
  return out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}
