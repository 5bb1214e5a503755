import type { Knex } from 'knex';
import { BatchFenced } from './consumer-batch.js';

/**
 * A consumer's offsets kept in Postgres next to the state they describe
 * (ConsumerRunnerOptions.storedOffsets / claim), with a fence per partition:
 * a table `offsets (…owner columns, topic, partition, last_offset, fence)`.
 * `owner` names the columns that scope one consumer's rows when several
 * share the table (delivery: one set per subscription); empty when the
 * table belongs to one consumer (the identity-matcher).
 */
export interface OffsetsTable {
  schema: string;
  owner: Readonly<Record<string, string>>;
}

const TABLE = 'offsets';

export async function storedOffsets(
  db: Knex,
  t: OffsetsTable,
  topic: string,
  partitions: readonly number[],
): Promise<Map<number, bigint>> {
  const rows = await db
    .withSchema(t.schema)
    .from(TABLE)
    .where({ ...t.owner, topic })
    .whereIn('partition', [...partitions])
    .select<{ partition: number; last_offset: string }[]>('partition', 'last_offset');
  return new Map(rows.map((r) => [r.partition, BigInt(r.last_offset)]));
}

/** A new fence on a partition for this member, and the offset handled last (see ConsumerRunnerOptions.claim). */
export async function claimPartition(
  db: Knex,
  t: OffsetsTable,
  topic: string,
  partition: number,
): Promise<{ fence: bigint; last: bigint | undefined }> {
  const [row] = await db
    .withSchema(t.schema)
    .into(TABLE)
    .insert({ ...t.owner, topic, partition, last_offset: '-1', fence: '1' })
    .onConflict([...Object.keys(t.owner), 'topic', 'partition'])
    .merge({ fence: db.raw('??.fence + 1', [TABLE]) })
    .returning<{ fence: string; last_offset: string }[]>(['fence', 'last_offset']);
  if (!row) throw new Error('claim returned no row');
  return { fence: BigInt(row.fence), last: BigInt(row.last_offset) };
}

/**
 * Moves a partition's offset in the batch's transaction, refusing (BatchFenced)
 * a batch of an assignment lost since it was fetched: the row is locked, so
 * a claim waits for this transaction to commit or roll back.
 */
export async function moveOffset(
  trx: Knex.Transaction,
  t: OffsetsTable,
  b: { topic: string; partition: number; fence?: bigint | undefined; lastOffset: bigint },
): Promise<void> {
  const at = { ...t.owner, topic: b.topic, partition: b.partition };
  const held = await trx
    .withSchema(t.schema)
    .from(TABLE)
    .where(at)
    .forUpdate()
    .first<{ fence: string } | undefined>('fence');
  if (b.fence !== undefined && (!held || BigInt(held.fence) !== b.fence))
    throw new BatchFenced(b.topic, b.partition);
  await trx
    .withSchema(t.schema)
    .into(TABLE)
    .insert({ ...at, last_offset: b.lastOffset.toString(), fence: 0 })
    .onConflict([...Object.keys(t.owner), 'topic', 'partition'])
    .merge({ last_offset: b.lastOffset.toString() });
}
