import type { ITopicConfig } from 'kafkajs';
import { HubError } from '../errors/index.js';
import type { KafkaClient } from './client.js';

export interface TopicDefinition {
  name: string;
  partitions: number;
  replicationFactor: number;
  /** -1 keeps everything: event topics are the source of truth. */
  retentionMs: number;
  cleanupPolicy?: 'delete' | 'compact';
}

export interface TopicReport {
  name: string;
  action: 'created' | 'exists';
}

/**
 * Creates missing topics and verifies existing ones. Idempotent. An existing
 * topic with a different partition count is an error rather than something to
 * "fix": repartitioning would break per-patient ordering and co-partitioning.
 */
export async function ensureTopics(kafka: KafkaClient, topics: TopicDefinition[]): Promise<TopicReport[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.name));
    if (missing.length > 0) {
      const defs: ITopicConfig[] = missing.map((t) => ({
        topic: t.name,
        numPartitions: t.partitions,
        replicationFactor: t.replicationFactor,
        configEntries: [
          { name: 'retention.ms', value: String(t.retentionMs) },
          { name: 'cleanup.policy', value: t.cleanupPolicy ?? 'delete' },
          // acks=all is only durable if the write reached every in-sync replica.
          { name: 'min.insync.replicas', value: String(Math.min(2, t.replicationFactor)) },
        ],
      }));
      await admin.createTopics({ topics: defs, waitForLeaders: true });
    }
    const present = topics.filter((t) => existing.has(t.name));
    if (present.length > 0) {
      const meta = await admin.fetchTopicMetadata({ topics: present.map((t) => t.name) });
      for (const t of present) {
        const m = meta.topics.find((x) => x.name === t.name);
        if (m && m.partitions.length !== t.partitions) {
          throw new HubError(
            'HUB_KAFKA_ERROR',
            `topic ${t.name} has ${m.partitions.length} partitions, the catalog says ${t.partitions}`,
          );
        }
      }
    }
    return topics.map((t) => ({ name: t.name, action: existing.has(t.name) ? 'exists' : 'created' }));
  } finally {
    await admin.disconnect();
  }
}

export async function deleteTopics(kafka: KafkaClient, names: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const present = names.filter((n) => existing.has(n));
    if (present.length > 0) await admin.deleteTopics({ topics: present });
  } finally {
    await admin.disconnect();
  }
}

export async function listTopics(kafka: KafkaClient): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.listTopics()).sort();
  } finally {
    await admin.disconnect();
  }
}

/** Latest offset (the next offset to be written) per partition. */
export async function endOffsets(kafka: KafkaClient, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offs = await admin.fetchTopicOffsets(topic);
    return new Map(offs.map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

export interface GroupPartitionLag {
  groupId: string;
  topic: string;
  partition: number;
  /** Next offset the group will read; null when it has committed nothing there. */
  committed: bigint | null;
  end: bigint;
  lag: bigint;
}

/**
 * Committed offsets of consumer groups against the topics' end offsets. Only
 * partitions of `topics` are reported (a shared cluster holds many groups).
 * For projections the group offset is a hint committed after the Postgres
 * checkpoint, so it can trail the real progress by one batch.
 */
export async function consumerGroupLag(
  kafka: KafkaClient,
  topics: readonly string[],
  opts: { groupFilter?: (groupId: string) => boolean } = {},
): Promise<GroupPartitionLag[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const wanted = new Set(topics);
    const existing = new Set(await admin.listTopics());
    const ends = new Map<string, Map<number, bigint>>();
    for (const t of wanted) {
      if (!existing.has(t)) continue;
      const offs = await admin.fetchTopicOffsets(t);
      ends.set(t, new Map(offs.map((o) => [o.partition, BigInt(o.high)])));
    }
    const { groups } = await admin.listGroups();
    const out: GroupPartitionLag[] = [];
    for (const g of groups) {
      if (g.protocolType !== 'consumer' && g.protocolType !== '') continue;
      if (opts.groupFilter && !opts.groupFilter(g.groupId)) continue;
      const committed = await admin.fetchOffsets({ groupId: g.groupId, topics: [...ends.keys()] });
      for (const t of committed) {
        const end = ends.get(t.topic);
        if (!end) continue;
        const anyCommitted = t.partitions.some((p) => Number(p.offset) >= 0);
        if (!anyCommitted) continue;
        for (const p of t.partitions) {
          const e = end.get(p.partition) ?? 0n;
          const c = Number(p.offset) >= 0 ? BigInt(p.offset) : null;
          out.push({
            groupId: g.groupId,
            topic: t.topic,
            partition: p.partition,
            committed: c,
            end: e,
            lag: c === null ? e : e > c ? e - c : 0n,
          });
        }
      }
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}
