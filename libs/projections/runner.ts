import type { Knex } from 'knex';
import { HubError, isHubError } from '../errors/index.js';
import { codecSkipping, type EventCodec, type SkipFields } from '../events/codec.js';
import type { KafkaClient } from '../kafka/client.js';
import {
  BatchFenced,
  createConsumerRunner,
  type ConsumerRunner,
  type ConsumerRunnerOptions,
  type DeadLetter,
  type DecodedRecord,
  type PartitionBatch,
} from '../kafka/consumer.js';
import type { EventProducer } from '../kafka/producer.js';
import type { Logger } from '../telemetry/logger.js';
import { assertSqlIdentifier, migrateSchema, sqlArray, toDbError, type Migration } from '../db/index.js';

const UNIQUE_VIOLATION = '23505';

/**
 * Thrown inside a projection transaction when an insert that assumed its keys
 * were new met one that exists (a resent event id, or a row another instance
 * created after this batch read it): the runner rolls the batch back and
 * applies it again with `careful` set. Conflicts are rare, and the plain
 * insert spares an index probe per row that `on conflict` costs.
 */
export class KeyExists extends Error {}

/** Runs an insert that assumes its keys are new; a unique violation becomes KeyExists. */
export async function insertAssumingNew(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === UNIQUE_VIOLATION) throw new KeyExists();
    throw err;
  }
}

export interface ApplyOptions {
  /**
   * False on a batch's first attempt: rows the batch read and did not find may
   * be inserted with insertAssumingNew. True when it is applied again after
   * KeyExists: every write de-duplicates or upserts.
   */
  careful: boolean;
  /**
   * The batch is large (a catch-up: see BULK_MIN_EVENTS): new rows may be
   * written by binary COPY. What lands is the same either way.
   */
  bulk?: boolean;
}

/**
 * A transaction with at least this many events to apply takes the bulk path
 * (binary COPY of its new rows: store.ts). Live traffic
 * brings a few dozen records per fetch; only a consumer far behind the log
 * (a rebuild, a new read model, a long outage) forms batches this large, so
 * the switch back to statements near the head needs no separate signal.
 */
export const BULK_MIN_EVENTS = 1_000;

/**
 * Exactly-once in effect: each batch is applied, de-duplicated by event id and
 * checkpointed (per topic-partition offset) in one Postgres transaction; on
 * start the consumer seeks to those checkpoints. Kafka's group offsets are
 * committed afterwards (when `commitGroupOffsets` is set) only as a hint for
 * tooling.
 */
export interface Projection {
  /** Stable name; used for the consumer group and the checkpoint rows. */
  name: string;
  topics: readonly string[];
  migrations: readonly Migration[];
  /** Applies events that were not applied before, in log order, inside the transaction. */
  apply(
    trx: Knex.Transaction,
    schema: string,
    records: readonly DecodedRecord[],
    opts?: ApplyOptions,
  ): Promise<void>;
  /**
   * Top-level event fields the projection never reads, per event type: its
   * runner decodes without them (codecSkipping), which spares a catch-up
   * the bulk of the bytes (a result's observations, a patient's
   * demographics). Its records' events lack them whatever DecodedRecord's
   * type says: only a read model typed by them (store.ts ReadModel.skip)
   * sets this, and nothing else reads beyond meta and patient ids.
   */
  skip?: SkipFields;
  /** Optional: sees resends suppressed by event id (a data-quality measure), in the same transaction. */
  duplicates?(trx: Knex.Transaction, schema: string, records: readonly DecodedRecord[]): Promise<void>;
}

export const projectionBaseMigrations: readonly Migration[] = [
  {
    name: '0000_projection_bookkeeping',
    async up(knex, schema) {
      await knex.schema.withSchema(schema).createTable('checkpoints', (t) => {
        t.text('topic').notNullable();
        t.integer('partition').notNullable();
        t.bigInteger('last_offset').notNullable();
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.primary(['topic', 'partition']);
      });
      await knex.schema.withSchema(schema).createTable('applied_events', (t) => {
        t.uuid('event_id').primary();
        t.text('topic').notNullable();
        t.integer('partition').notNullable();
        t.bigInteger('offset').notNullable();
        t.timestamp('applied_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      });
    },
  },
  {
    // Fences of the partitions' holders (see claimPartition): a batch of an
    // instance that lost its partition in a rebalance can no longer commit.
    name: '0000_projection_partition_owners',
    async up(knex, schema) {
      await knex.schema.withSchema(schema).createTable('partition_owners', (t) => {
        t.text('topic').notNullable();
        t.integer('partition').notNullable();
        t.bigInteger('fence').notNullable();
        t.timestamp('claimed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.primary(['topic', 'partition']);
      });
    },
  },
];

export async function migrateProjection(
  knex: Knex,
  schema: string,
  projection: Projection,
): Promise<string[]> {
  return migrateSchema(knex, schema, [...projectionBaseMigrations, ...projection.migrations]);
}

export async function storedOffsets(
  knex: Knex,
  schema: string,
  topic: string,
  partitions?: readonly number[],
): Promise<Map<number, bigint>> {
  let q = knex.withSchema(schema).from('checkpoints').select('partition', 'last_offset').where({ topic });
  if (partitions) q = q.whereIn('partition', [...partitions]);
  const rows = (await q) as { partition: number; last_offset: string }[];
  return new Map(rows.map((r) => [r.partition, BigInt(r.last_offset)]));
}

/**
 * A new fence on a partition, for the instance it was just assigned to: the
 * update waits for a transaction of the previous holder still in flight, and
 * from then on applyBatches refuses the batches that carry an older fence.
 * Answers the fence and the offset applied last, which is read after the
 * fence, so nothing the previous holder applied is missed.
 */
export async function claimPartition(
  knex: Knex,
  schema: string,
  topic: string,
  partition: number,
): Promise<{ fence: bigint; last: bigint | undefined }> {
  const claimed = await knex.raw<{ rows: [{ fence: string }] }>(
    `insert into ??.partition_owners as o (topic, partition, fence) values (?, ?, 1)
     on conflict (topic, partition) do update set fence = o.fence + 1, claimed_at = now()
     returning fence`,
    [schema, topic, partition],
  );
  const last = (await storedOffsets(knex, schema, topic, [partition])).get(partition);
  return { fence: BigInt(claimed.rows[0].fence), last };
}

const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/**
 * One bigint column of a bookkeeping table for the batches' partitions, row
 * locked in key order (two transactions cannot deadlock on them).
 */
async function lockedColumn(
  trx: Knex.Transaction,
  schema: string,
  table: 'checkpoints' | 'partition_owners',
  column: 'last_offset' | 'fence',
  batches: readonly PartitionBatch[],
  mode: 'update' | 'share',
): Promise<Map<string, bigint>> {
  const q = trx
    .withSchema(schema)
    .from(table)
    .whereIn(
      ['topic', 'partition'],
      batches.map((b) => [b.topic, b.partition]),
    )
    .orderBy(['topic', 'partition']);
  type Row = { topic: string; partition: number } & Partial<Record<typeof column, string>>;
  const rows = await (mode === 'update' ? q.forUpdate() : q.forShare()).select<Row[]>(
    'topic',
    'partition',
    column,
  );
  return new Map(rows.map((r) => [partitionKey(r.topic, r.partition), BigInt(r[column] ?? '-1')]));
}

/** Refuses (BatchFenced, rolling the transaction back) a batch whose fence is not its partition's latest. */
async function checkFences(
  trx: Knex.Transaction,
  schema: string,
  batches: readonly PartitionBatch[],
): Promise<void> {
  const fenced = batches.filter((b) => b.fence !== undefined);
  if (fenced.length === 0) return;
  // A share lock: a claim (an update) waits until this batch is committed or refused.
  const current = await lockedColumn(trx, schema, 'partition_owners', 'fence', fenced, 'share');
  for (const b of fenced) {
    if (current.get(partitionKey(b.topic, b.partition)) !== b.fence)
      throw new BatchFenced(b.topic, b.partition);
  }
}

export interface ProjectionRunnerOptions {
  projection: Projection;
  schema: string;
  groupId?: string;
  db: Knex;
  kafka: KafkaClient;
  codec: EventCodec;
  producer: EventProducer;
  dlqTopic: string;
  logger: Logger;
  maxRetries?: number;
  onDeadLetter?(dl: DeadLetter): void;
  onApplied?(topic: string, count: number): void;
  onFatal?(err: HubError): void;
  onBatch?: ConsumerRunnerOptions['onBatch'];
  onFenced?: ConsumerRunnerOptions['onFenced'];
  onAssigned?: ConsumerRunnerOptions['onAssigned'];
  onPause?: ConsumerRunnerOptions['onPause'];
  /**
   * Also commit the checkpointed offsets to the consumer group, after the
   * transaction (see ConsumerRunnerOptions): for long-lived groups, whose
   * offsets kafka-consumer-groups, lag exporters and `hub status` show.
   * Off by default: a throw-away group (a rebuild's, one per run) would stay
   * listed with a growing lag for the broker's offset retention (7 days).
   * Resuming reads the checkpoints either way.
   */
  commitGroupOffsets?: boolean;
  /** Events a transaction needs for the bulk path (default BULK_MIN_EVENTS; Infinity: never). */
  bulkMinEvents?: number;
  /** After each commit that applied events: which path it took and how many events it applied. */
  onTransaction?(path: ApplyPath, events: number): void;
  /**
   * Apply a fetch while the next one is fetched and decoded (default true;
   * see ConsumerRunnerOptions.pipeline): the checkpoints and fences keep
   * each batch's transaction exactly-once whichever way.
   */
  pipeline?: boolean;
}

/** Where a runner applies its batches. */
interface BatchTarget {
  db: Knex;
  schema: string;
  projection: Projection;
  bulkMinEvents: number;
}

/** Which way a transaction wrote its events (see BULK_MIN_EVENTS). */
export type ApplyPath = 'bulk' | 'per-event';

/**
 * How a transaction records its events' ids (recordApplied): `first` as a
 * plain insert; `dedupe` (a large batch that met an id held already, e.g. a
 * resend in a catch-up) drops held and repeated ids first and keeps the
 * bulk path; `careful` upserts everything.
 */
type Attempt = 'first' | 'dedupe' | 'careful';

/**
 * The ids of `pending` not recorded yet, each once: one probe of the
 * applied_events index and the repeats within the batch dropped in memory.
 * A long catch-up meets resends now and then; one in a batch of thousands
 * must not send the whole batch to the careful statements.
 */
async function notYetApplied(
  schema: string,
  trx: Knex.Transaction,
  pending: readonly DecodedRecord[],
): Promise<DecodedRecord[]> {
  const held = await trx.raw<{ rows: { event_id: string }[] }>(
    `select event_id from ??.applied_events where event_id = any(?::uuid[])`,
    [schema, sqlArray(pending.map((r) => r.event.data.meta.eventId))],
  );
  const seen = new Set(held.rows.map((r) => r.event_id));
  return pending.filter((r) => {
    const id = r.event.data.meta.eventId;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/**
 * Records the pending events' ids and returns those to apply: each id once,
 * never one applied before. Resends are rare, so first as a plain insert
 * (nothing returned, no `on conflict` probe); a batch that meets an id
 * already held, or holds one twice, is redone de-duplicating (KeyExists):
 * a large one by `dedupe`, still on the bulk path, then by `careful`.
 */
async function recordApplied(
  schema: string,
  trx: Knex.Transaction,
  all: DecodedRecord[],
  attempt: Attempt,
): Promise<DecodedRecord[]> {
  const careful = attempt === 'careful';
  const pending = attempt === 'dedupe' ? await notYetApplied(schema, trx, all) : all;
  if (pending.length === 0) return pending;
  // Columns as arrays (unnest), not a VALUES list: a fixed handful of
  // parameters whatever the batch size, nothing for knex or Postgres to number.
  const bindings = [
    schema,
    sqlArray(pending.map((r) => r.event.data.meta.eventId)),
    sqlArray(pending.map((r) => r.topic)),
    // Numbers need no quoting in an array literal: joined as they are.
    `{${pending.map((r) => r.partition).join(',')}}`,
    `{${pending.map((r) => r.offset).join(',')}}`,
  ];
  const insert = `insert into ??.applied_events (event_id, topic, partition, "offset")
    select * from unnest(?::uuid[], ?::text[], ?::int[], ?::bigint[])`;
  if (!careful) {
    await insertAssumingNew(() => trx.raw(insert, bindings));
    return pending;
  }
  const inserted = await trx.raw<{ rows: { event_id: string }[] }>(
    `${insert} on conflict (event_id) do nothing returning event_id`,
    bindings,
  );
  const fresh = new Set(inserted.rows.map((r) => r.event_id));
  // The same event id can appear twice in one batch (a resend); only
  // its first occurrence is applied.
  const seen = new Set<string>();
  return pending.filter((r) => {
    const id = r.event.data.meta.eventId;
    if (!fresh.has(id) || seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/**
 * One transaction for the batches of one or more partitions: the same
 * statements whatever their number, which is what grouping saves (live
 * traffic brings a few records per partition and fetch).
 */
async function applyBatches(
  target: BatchTarget,
  batches: readonly PartitionBatch[],
  attempt: Attempt,
): Promise<{ path: ApplyPath; events: number } | null> {
  const careful = attempt === 'careful';
  const { db, schema, projection } = target;
  return db.transaction(async (trx) => {
    let outcome: { path: ApplyPath; events: number } | null = null;
    await checkFences(trx, schema, batches);
    // Row locks on the checkpoints serialise two instances that were both
    // (briefly, during a rebalance) given a partition; taken in key order,
    // so two groups cannot deadlock on them.
    const doneBy = await lockedColumn(trx, schema, 'checkpoints', 'last_offset', batches, 'update');
    const done = (b: PartitionBatch) => doneBy.get(partitionKey(b.topic, b.partition)) ?? -1n;
    const pending = batches.flatMap((b) => {
      const d = done(b);
      return b.records.filter((r) => r.offset > d);
    });
    if (pending.length > 0) {
      const bulk = pending.length >= target.bulkMinEvents && !careful;
      const toApply = await recordApplied(schema, trx, pending, attempt);
      outcome = { path: bulk ? 'bulk' : 'per-event', events: toApply.length };
      if (toApply.length > 0) await projection.apply(trx, schema, toApply, { careful, bulk });
      if (projection.duplicates && toApply.length < pending.length) {
        const applied = new Set(toApply);
        await projection.duplicates(
          trx,
          schema,
          pending.filter((r) => !applied.has(r)),
        );
      }
    }
    const moved = batches.filter((b) => b.lastOffset > done(b));
    if (moved.length > 0) {
      await trx
        .withSchema(schema)
        .into('checkpoints')
        .insert(
          moved.map((b) => ({
            topic: b.topic,
            partition: b.partition,
            last_offset: b.lastOffset.toString(),
            updated_at: trx.fn.now(),
          })),
        )
        .onConflict(['topic', 'partition'])
        .merge();
    }
    return outcome;
  });
}

/**
 * A group's transaction, again after KeyExists: a large group (the bulk
 * path) first de-duplicating its event ids, which is what a resend needs,
 * then, as any group, upserting everything.
 */
async function applyWithRetries(
  target: BatchTarget,
  batches: readonly PartitionBatch[],
): Promise<{ path: ApplyPath; events: number } | null> {
  const large = batches.reduce((n, b) => n + b.records.length, 0) >= target.bulkMinEvents;
  const attempts: Attempt[] = large ? ['first', 'dedupe', 'careful'] : ['first', 'careful'];
  for (const [i, attempt] of attempts.entries()) {
    try {
      return await applyBatches(target, batches, attempt);
    } catch (err) {
      if (!(err instanceof KeyExists) || i === attempts.length - 1) throw err;
    }
  }
  return null;
}

/** The consumer group of a projection's version schema, unless a runner is given another. */
export function projectionGroupId(projection: string, schema: string): string {
  return `hub.projection.${projection}.${schema}`;
}

export function createProjectionRunner(opts: ProjectionRunnerOptions): ConsumerRunner {
  const { db, projection } = opts;
  const schema = assertSqlIdentifier(opts.schema);
  const groupId = opts.groupId ?? projectionGroupId(projection.name, schema);
  const log = opts.logger.child({ projection: projection.name, schema });
  const target: BatchTarget = {
    db,
    schema,
    projection,
    bulkMinEvents: opts.bulkMinEvents ?? BULK_MIN_EVENTS,
  };
  let lastPath: ApplyPath | undefined;
  const committed = (t: { path: ApplyPath; events: number } | null) => {
    if (!t) return;
    opts.onTransaction?.(t.path, t.events);
    // Once per switch, for whoever watches a catch-up: far behind → COPY; near the head → statements.
    if (t.path === 'bulk' && lastPath !== 'bulk')
      log.info({ path: t.path }, 'catching up: large batches go by binary COPY');
    if (t.path === 'per-event' && lastPath === 'bulk')
      log.info({ path: t.path }, 'near the head: batches go by statements again');
    lastPath = t.path;
  };

  async function handleGroup(batches: PartitionBatch[]): Promise<void> {
    try {
      committed(await applyWithRetries(target, batches));
    } catch (err) {
      if (isHubError(err) || err instanceof BatchFenced) throw err;
      const mapped = toDbError(err);
      if (mapped.code === 'HUB_DB_ERROR') {
        throw new HubError(
          'HUB_PROJECTION_FAILED',
          `${projection.name} could not apply a batch: ${mapped.message}`,
          {
            cause: err,
          },
        );
      }
      throw mapped;
    }
  }

  return createConsumerRunner({
    kafka: opts.kafka,
    codec: projection.skip ? codecSkipping(opts.codec, projection.skip) : opts.codec,
    producer: opts.producer,
    groupId,
    topics: projection.topics,
    dlqTopic: opts.dlqTopic,
    logger: log,
    handle: (batch) => handleGroup([batch]),
    handleGroup,
    storedOffsets: (topic, partitions) => storedOffsets(db, schema, topic, partitions),
    claim: async (topic, partition) => {
      try {
        return await claimPartition(db, schema, topic, partition);
      } catch (err) {
        throw toDbError(err);
      }
    },
    ...(opts.maxRetries === undefined ? {} : { maxRetries: opts.maxRetries }),
    ...(opts.onDeadLetter ? { onDeadLetter: opts.onDeadLetter } : {}),
    ...(opts.onApplied ? { onApplied: opts.onApplied } : {}),
    ...(opts.onFatal ? { onFatal: opts.onFatal } : {}),
    ...(opts.onBatch ? { onBatch: opts.onBatch } : {}),
    ...(opts.onFenced ? { onFenced: opts.onFenced } : {}),
    ...(opts.onAssigned ? { onAssigned: opts.onAssigned } : {}),
    ...(opts.onPause ? { onPause: opts.onPause } : {}),
    commitGroupOffsets: opts.commitGroupOffsets ?? false,
    pipeline: opts.pipeline ?? true,
  });
}
