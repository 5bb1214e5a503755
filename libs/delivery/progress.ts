/**
 * A subscription's consumer position and delivery state in Postgres: where
 * it starts (now, the beginning, a time, a replay), claims with fences (a
 * batch of a generation that lost its partition can no longer move the
 * offsets), and the checkpoint that stores, in one transaction, the offsets
 * reached, the count of events delivered and the dead letters of a chunk.
 */
import type { Knex } from 'knex';
import { moveOffset, type OffsetsTable } from '../kafka/stored-offsets.js';
import type { KafkaClient } from '../kafka/client.js';
import type { Subscription } from './model.js';

/** Last offset done per partition (one before the first to deliver), for the start position. */
async function offsetsAt(
  kafka: KafkaClient,
  topic: string,
  at: number | 'beginning',
): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offs =
      at === 'beginning'
        ? (await admin.fetchTopicOffsets(topic)).map((o) => ({ partition: o.partition, offset: o.low }))
        : await admin.fetchTopicOffsetsByTimestamp(topic, at);
    return new Map(offs.map((o) => [o.partition, BigInt(o.offset) - 1n]));
  } finally {
    await admin.disconnect();
  }
}

interface StartRow {
  started_generation: number | null;
  replay_from: Date | null;
  created_at: Date;
}

/** Where the subscription's consumer must begin: null when its stored offsets stand. */
function startOf(sub: Subscription, row: StartRow): number | 'beginning' | null {
  if (row.replay_from) return row.replay_from.getTime();
  if (row.started_generation !== null) return null;
  switch (sub.start.from) {
    case 'beginning':
      return 'beginning';
    case 'time':
      return Date.parse(sub.start.at);
    case 'now':
      // "now" is when the subscription was created, not when the worker first
      // runs: events between the two are the subscriber's.
      return row.created_at.getTime();
  }
}

/**
 * Places the offsets of a new subscription at its start, or of a replayed
 * one at the replay time (log append time), bumping every fence so that a
 * batch still in flight from before cannot move them back.
 */
export async function placeStart(
  db: Knex,
  schema: string,
  kafka: KafkaClient,
  sub: Subscription,
  topics: readonly string[],
): Promise<'kept' | 'placed'> {
  const row = await db
    .withSchema(schema)
    .from('subscriptions as s')
    .join('delivery_state as d', 'd.subscription_id', 's.id')
    .where('s.id', sub.id)
    .first<StartRow | undefined>('d.started_generation', 's.replay_from', 's.created_at');
  if (!row) return 'kept';
  const at = startOf(sub, row);
  if (at === null) return addTopics(db, schema, kafka, sub, topics);
  const rows = await offsetRows(kafka, sub.id, topics, at);
  await db.transaction(async (trx) => {
    await trx
      .withSchema(schema)
      .from('offsets')
      .where({ subscription_id: sub.id })
      .whereNotIn('topic', [...topics])
      .delete();
    if (rows.length > 0) {
      await trx
        .withSchema(schema)
        .into('offsets')
        .insert(rows)
        .onConflict(['subscription_id', 'topic', 'partition'])
        .merge({ last_offset: trx.raw('excluded.last_offset'), fence: trx.raw('offsets.fence + 1') });
    }
    await trx.withSchema(schema).from('subscriptions').where({ id: sub.id }).update({ replay_from: null });
    await trx
      .withSchema(schema)
      .from('delivery_state')
      .where({ subscription_id: sub.id })
      .update({ started_generation: sub.generation });
  });
  return 'placed';
}

type OffsetRow = { subscription_id: string; topic: string; partition: number; last_offset: string };

async function offsetRows(
  kafka: KafkaClient,
  subscriptionId: string,
  topics: readonly string[],
  at: number | 'beginning',
): Promise<OffsetRow[]> {
  const rows: OffsetRow[] = [];
  for (const topic of topics) {
    for (const [partition, last] of await offsetsAt(kafka, topic, at)) {
      rows.push({ subscription_id: subscriptionId, topic, partition, last_offset: last.toString() });
    }
  }
  return rows;
}

/**
 * A subscription whose criteria now reach a topic they did not (an update):
 * that topic starts at the time of the change, like a new subscription
 * starting "now", not at the beginning of its history (nor where an earlier
 * version of the criteria left it).
 */
async function addTopics(
  db: Knex,
  schema: string,
  kafka: KafkaClient,
  sub: Subscription,
  topics: readonly string[],
): Promise<'kept' | 'placed'> {
  const have = await db
    .withSchema(schema)
    .from('offsets')
    .where({ subscription_id: sub.id })
    .distinct<{ topic: string }[]>('topic');
  const known = new Set(have.map((r) => r.topic));
  // A topic the criteria no longer reach is forgotten: reached again later, it starts at that change.
  const dropped = [...known].filter((t) => !topics.includes(t));
  if (dropped.length > 0) {
    await db
      .withSchema(schema)
      .from('offsets')
      .where({ subscription_id: sub.id })
      .whereIn('topic', dropped)
      .delete();
  }
  const added = topics.filter((t) => !known.has(t));
  if (added.length === 0) return 'kept';
  const rows = await offsetRows(kafka, sub.id, added, Date.parse(sub.updatedAt));
  if (rows.length > 0) {
    await db
      .withSchema(schema)
      .into('offsets')
      .insert(rows)
      .onConflict(['subscription_id', 'topic', 'partition'])
      .ignore();
  }
  return 'placed';
}

/** A subscription's rows of the delivery schema's offsets table (one set per subscription). */
export const subscriptionOffsets = (schema: string, subscriptionId: string): OffsetsTable => ({
  schema,
  owner: { subscription_id: subscriptionId },
});

export interface PendingDeadLetter {
  topic: string;
  partition: number;
  offset: bigint;
  eventId: string;
  eventType: string;
  patientId: string;
  reason: string;
  detail: string | null;
  eventNumber: number;
}

/** What a chunk of one partition's batch did, stored at once. */
export interface Checkpoint {
  topic: string;
  partition: number;
  fence: bigint | undefined;
  lastOffset: bigint;
  /** Events counted (delivered or dead-lettered) since the last checkpoint. */
  counted: number;
  deliveredAt: Date | null;
  deadLetters: readonly PendingDeadLetter[];
}

/** Stores a checkpoint; refuses it (BatchFenced) when the partition was claimed anew since the batch was fetched. */
export async function storeCheckpoint(
  db: Knex,
  schema: string,
  subscriptionId: string,
  c: Checkpoint,
  now: Date,
): Promise<void> {
  await db.transaction(async (trx) => {
    await moveOffset(trx, subscriptionOffsets(schema, subscriptionId), c);
    if (c.deadLetters.length > 0) {
      await trx
        .withSchema(schema)
        .into('dead_letters')
        .insert(
          c.deadLetters.map((d) => ({
            subscription_id: subscriptionId,
            topic: d.topic,
            partition: d.partition,
            offset: d.offset.toString(),
            event_id: d.eventId,
            event_type: d.eventType,
            patient_id: d.patientId,
            reason: d.reason,
            detail: d.detail,
            event_number: d.eventNumber,
            created_at: now,
          })),
        )
        .onConflict(['subscription_id', 'event_id'])
        .ignore();
    }
    if (c.counted > 0 || c.deliveredAt) {
      await trx
        .withSchema(schema)
        .from('delivery_state')
        .where({ subscription_id: subscriptionId })
        .update({
          events_delivered: trx.raw('events_delivered + ?', [c.counted]),
          ...(c.deliveredAt
            ? { last_delivered_at: c.deliveredAt, failing_since: null, last_failure_reason: null }
            : {}),
        });
    }
  });
}

export async function eventsCounted(db: Knex, schema: string, subscriptionId: string): Promise<number> {
  const r = await db
    .withSchema(schema)
    .from('delivery_state')
    .where({ subscription_id: subscriptionId })
    .first<{ events_delivered: string } | undefined>('events_delivered');
  return Number(r?.events_delivered ?? 0);
}

/** The subscription waits on a receiver it cannot reach (kept until the next success). */
export async function markFailing(
  db: Knex,
  schema: string,
  subscriptionId: string,
  reason: string,
  now: Date,
): Promise<void> {
  await db
    .withSchema(schema)
    .from('delivery_state')
    .where({ subscription_id: subscriptionId })
    .update({ failing_since: db.raw('coalesce(failing_since, ?)', [now]), last_failure_reason: reason });
}

export async function markHeartbeat(
  db: Knex,
  schema: string,
  subscriptionId: string,
  now: Date,
): Promise<void> {
  await db
    .withSchema(schema)
    .from('delivery_state')
    .where({ subscription_id: subscriptionId })
    .update({ last_heartbeat_at: now });
}
