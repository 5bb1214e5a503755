import { AssignerProtocol } from 'kafkajs';
import type { KafkaClient } from './client.js';

/**
 * Who reads which topics: every consumer group that either has live members
 * subscribed to one of `topics` or holds committed offsets on one. Used by
 * the audit view of who can read clinical data (the hub's own projectors
 * keep their offsets in Postgres, so their live subscriptions matter as much
 * as committed offsets).
 */
export interface TopicReaders {
  groupId: string;
  state: string;
  members: number;
  topics: string[];
}

export async function consumerGroupsOf(
  kafka: KafkaClient,
  topics: readonly string[],
): Promise<TopicReaders[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted = new Set(topics.filter((t) => existing.has(t)));
    if (wanted.size === 0) return [];
    const { groups } = await admin.listGroups();
    const consumerGroups = groups.filter((g) => g.protocolType === 'consumer' || g.protocolType === '');
    const described =
      consumerGroups.length > 0
        ? (await admin.describeGroups(consumerGroups.map((g) => g.groupId))).groups
        : [];
    const out: TopicReaders[] = [];
    for (const g of described) {
      const read = new Set<string>();
      for (const m of g.members) {
        const meta =
          m.memberMetadata.length > 0 ? AssignerProtocol.MemberMetadata.decode(m.memberMetadata) : null;
        for (const t of meta?.topics ?? []) if (wanted.has(t)) read.add(t);
      }
      const offsets = await admin.fetchOffsets({ groupId: g.groupId, topics: [...wanted] });
      for (const t of offsets) if (t.partitions.some((p) => Number(p.offset) >= 0)) read.add(t.topic);
      if (read.size > 0)
        out.push({ groupId: g.groupId, state: g.state, members: g.members.length, topics: [...read].sort() });
    }
    return out.sort((a, b) => a.groupId.localeCompare(b.groupId));
  } finally {
    await admin.disconnect();
  }
}

/** Why a group cannot be deleted that is no failure: someone still reads with it, or it is gone. */
const KEEP = new Set(['NON_EMPTY_GROUP', 'GROUP_ID_NOT_FOUND']);

/**
 * Deletes a consumer group, and its committed offsets with it, once it has
 * no members left: for a group the hub is done with (a projection version
 * that is no longer served), which tools would otherwise list with a growing
 * lag until the broker's offset retention (7 days) drops it. False when the
 * group still has members (another instance reads with it; the last one to
 * leave deletes it) or does not exist.
 */
export async function deleteGroupIfUnused(kafka: KafkaClient, groupId: string): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteGroups([groupId]);
    return true;
  } catch (err) {
    let e: unknown = err;
    for (let depth = 0; e instanceof Error && depth < 5; depth++) {
      const groups = (e as { groups?: { error?: { type?: unknown } }[] }).groups;
      if (Array.isArray(groups) && groups.length > 0) {
        if (groups.every((g) => typeof g.error?.type === 'string' && KEEP.has(g.error.type))) return false;
        break;
      }
      e = (e as { originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
    }
    throw err;
  } finally {
    await admin.disconnect();
  }
}
