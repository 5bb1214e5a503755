import type { Knex } from 'knex';
import { assertSqlIdentifier } from '../db/index.js';
import { endOffsets } from '../kafka/admin.js';
import type { KafkaClient } from '../kafka/client.js';

/** Bookkeeping that differs between equally correct builds (offsets, migration times). */
const NOT_CONTENT = new Set([
  'checkpoints',
  'applied_events',
  'partition_owners',
  'knex_migrations',
  'knex_migrations_lock',
]);

/**
 * A digest of every content table of a version schema: md5 over the rows'
 * text, in a fixed order. Two builds from the same events (live, rebuilt,
 * replayed after kills, in another arrival order) must give equal digests.
 */
export async function tableHashes(
  db: Knex,
  schema: string,
  opts: { exclude?: readonly string[] } = {},
): Promise<Record<string, string>> {
  assertSqlIdentifier(schema);
  const skip = new Set([...NOT_CONTENT, ...(opts.exclude ?? [])]);
  const r = await db.raw<{ rows: { name: string }[] }>(
    `select table_name as name from information_schema.tables
      where table_schema = ? and table_type = 'BASE TABLE' order by table_name`,
    [schema],
  );
  const out: Record<string, string> = {};
  for (const { name } of r.rows) {
    if (skip.has(name)) continue;
    const h = await db.raw<{ rows: { h: string | null; n: string }[] }>(
      `select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) as h, count(*) as n from ??.?? t`,
      [schema, name],
    );
    const row = h.rows[0];
    out[name] = `${row?.n ?? 0}:${row?.h ?? ''}`;
  }
  return out;
}

export interface Lag {
  /** Sum over partitions of (end offset − next offset to apply). */
  lag: bigint;
  /** Records in the topics (sum of end offsets). */
  total: bigint;
  /** Records already applied or skipped (sum of checkpoint + 1). */
  done: bigint;
}

/** How far a version schema's checkpoints are behind the topics' end offsets. */
export async function lagOf(
  db: Knex,
  kafka: KafkaClient,
  schema: string,
  topics: readonly string[],
): Promise<Lag> {
  assertSqlIdentifier(schema);
  const rows = await db
    .withSchema(schema)
    .from('checkpoints')
    .select<{ topic: string; partition: number; last_offset: string }[]>('topic', 'partition', 'last_offset');
  const cp = new Map(rows.map((r) => [`${r.topic}|${r.partition}`, BigInt(r.last_offset) + 1n]));
  let lag = 0n;
  let total = 0n;
  let done = 0n;
  for (const t of topics) {
    for (const [p, end] of await endOffsets(kafka, t)) {
      const next = cp.get(`${t}|${p}`) ?? 0n;
      total += end;
      done += next < end ? next : end;
      if (end > next) lag += end - next;
    }
  }
  return { lag, total, done };
}
