/**
 * Where subscriptions and their delivery state live: one Postgres schema
 * (`delivery` by default) shared by the delivery service (the worker), the
 * API and the `hub subscriptions` CLI. Each subscription's Kafka offsets are
 * stored here with its delivery state (events delivered, last success, the
 * failure it is waiting on), so that a subscription is its own consumer:
 * it resumes, replays and is deleted without touching any other.
 */
import type { Knex } from 'knex';
import { migrateSchema, type Migration } from '../db/index.js';
import {
  subscriptionInputSchema,
  type Subscription,
  type SubscriptionInput,
  type SubscriptionState,
} from './model.js';

export const DELIVERY_SCHEMA = 'delivery';

/** The subscription a row belongs to: deleted with it. */
function subscriptionRef(t: Knex.CreateTableBuilder, schema: string): void {
  t.uuid('subscription_id')
    .notNullable()
    .references('id')
    .inTable(`${schema}.subscriptions`)
    .onDelete('CASCADE');
}

export const deliveryMigrations: readonly Migration[] = [
  {
    name: '0001_subscriptions',
    async up(knex, schema) {
      await knex.schema.withSchema(schema).createTable('subscriptions', (t) => {
        t.uuid('id').primary();
        t.text('name').notNullable();
        t.text('state').notNullable();
        // criteria, channel, start, retry: validated by subscriptionInputSchema on every read.
        t.jsonb('spec').notNullable();
        t.integer('generation').notNullable().defaultTo(1);
        // A replay asked for: the worker moves the offsets there and clears it.
        t.timestamp('replay_from', { useTz: true }).nullable();
        t.timestamp('created_at', { useTz: true }).notNullable();
        t.timestamp('updated_at', { useTz: true }).notNullable();
      });
      await knex.schema.withSchema(schema).createTable('offsets', (t) => {
        subscriptionRef(t, schema);
        t.text('topic').notNullable();
        t.integer('partition').notNullable();
        t.bigInteger('last_offset').notNullable();
        t.bigInteger('fence').notNullable().defaultTo(0);
        t.primary(['subscription_id', 'topic', 'partition']);
      });
      await knex.schema.withSchema(schema).createTable('delivery_state', (t) => {
        t.uuid('subscription_id')
          .primary()
          .references('id')
          .inTable(`${schema}.subscriptions`)
          .onDelete('CASCADE');
        t.bigInteger('events_delivered').notNullable().defaultTo(0);
        t.timestamp('last_delivered_at', { useTz: true }).nullable();
        t.timestamp('last_heartbeat_at', { useTz: true }).nullable();
        t.timestamp('failing_since', { useTz: true }).nullable();
        t.text('last_failure_reason').nullable();
        // Offsets were placed at the subscription's start position (for this generation).
        t.integer('started_generation').nullable();
      });
      await knex.schema.withSchema(schema).createTable('dead_letters', (t) => {
        t.bigIncrements('id').primary();
        subscriptionRef(t, schema);
        t.text('topic').notNullable();
        t.integer('partition').notNullable();
        t.bigInteger('offset').notNullable();
        t.uuid('event_id').notNullable();
        t.text('event_type').notNullable();
        t.text('patient_id').notNullable();
        t.text('reason').notNullable();
        // The receiver's own words (HL7 ERR, HTTP status and body start): may hold PHI, never logged.
        t.text('detail').nullable();
        t.integer('event_number').notNullable();
        t.timestamp('created_at', { useTz: true }).notNullable();
        t.timestamp('redrive_requested_at', { useTz: true }).nullable();
        t.timestamp('redriven_at', { useTz: true }).nullable();
        t.text('redrive_outcome').nullable();
        t.unique(['subscription_id', 'event_id']);
      });
    },
  },
];

export async function migrateDelivery(db: Knex, schema: string): Promise<void> {
  await migrateSchema(db, schema, deliveryMigrations);
}

interface SubscriptionRow {
  id: string;
  name: string;
  state: SubscriptionState;
  spec: unknown;
  generation: number;
  replay_from: Date | null;
  created_at: Date;
  updated_at: Date;
}

function fromRow(r: SubscriptionRow): Subscription {
  const spec = subscriptionInputSchema.parse({ ...(r.spec as object), name: r.name });
  return {
    ...spec,
    id: r.id,
    state: r.state,
    generation: r.generation,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

function specOf(input: SubscriptionInput): string {
  const { name: _name, ...spec } = input;
  return JSON.stringify(spec);
}

export async function createSubscription(
  db: Knex,
  schema: string,
  input: SubscriptionInput,
  opts: { id: string; now: Date },
): Promise<Subscription> {
  const valid = subscriptionInputSchema.parse(input);
  const rows = await db.transaction(async (trx) => {
    const inserted = await trx
      .withSchema(schema)
      .into('subscriptions')
      .insert({
        id: opts.id,
        name: valid.name,
        state: 'active',
        spec: specOf(valid),
        generation: 1,
        created_at: opts.now,
        updated_at: opts.now,
      })
      .returning<SubscriptionRow[]>('*');
    await trx.withSchema(schema).into('delivery_state').insert({ subscription_id: opts.id });
    return inserted;
  });
  const [row] = rows;
  if (!row) throw new Error('insert returned no row');
  return fromRow(row);
}

export async function getSubscription(db: Knex, schema: string, id: string): Promise<Subscription | null> {
  const row = await db
    .withSchema(schema)
    .from('subscriptions')
    .where({ id })
    .first<SubscriptionRow | undefined>();
  return row ? fromRow(row) : null;
}

export async function listSubscriptions(db: Knex, schema: string): Promise<Subscription[]> {
  const rows = await db
    .withSchema(schema)
    .from('subscriptions')
    .orderBy('created_at')
    .select<SubscriptionRow[]>('*');
  return rows.map(fromRow);
}

/** A change the worker must act on: the generation moves, and the worker restarts the subscription's consumer. */
async function changed(
  db: Knex,
  schema: string,
  id: string,
  patch: Record<string, unknown>,
  now: Date,
): Promise<Subscription | null> {
  const rows = await db
    .withSchema(schema)
    .from('subscriptions')
    .where({ id })
    .update({ ...patch, generation: db.raw('generation + 1'), updated_at: now })
    .returning<SubscriptionRow[]>('*');
  return rows[0] ? fromRow(rows[0]) : null;
}

/** Changes what a subscription is (criteria, channel, retry); its offsets and count stay. */
export async function updateSubscription(
  db: Knex,
  schema: string,
  id: string,
  input: SubscriptionInput,
  now: Date,
): Promise<Subscription | null> {
  const valid = subscriptionInputSchema.parse(input);
  return changed(db, schema, id, { name: valid.name, spec: specOf(valid) }, now);
}

export async function setSubscriptionState(
  db: Knex,
  schema: string,
  id: string,
  state: SubscriptionState,
  now: Date,
): Promise<Subscription | null> {
  return changed(db, schema, id, { state }, now);
}

/**
 * Asks the worker to deliver again everything since `from` (log append
 * time) to this subscription only: it moves this subscription's offsets
 * there when its consumer restarts for the new generation.
 */
export async function requestReplay(
  db: Knex,
  schema: string,
  id: string,
  from: Date,
  now: Date,
): Promise<Subscription | null> {
  return changed(db, schema, id, { replay_from: from }, now);
}

export async function deleteSubscription(db: Knex, schema: string, id: string): Promise<boolean> {
  const n = await db.withSchema(schema).from('subscriptions').where({ id }).delete();
  return n > 0;
}

export interface DeliveryStatus {
  eventsSinceStart: number;
  lastDeliveredAt: string | null;
  lastHeartbeatAt: string | null;
  failingSince: string | null;
  lastFailureReason: string | null;
  /** Dead letters not redriven yet. */
  deadLetters: number;
  health: 'active' | 'error' | 'paused';
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export async function deliveryStatus(db: Knex, schema: string, id: string): Promise<DeliveryStatus | null> {
  const row = await db
    .withSchema(schema)
    .from('subscriptions as s')
    .join('delivery_state as d', 'd.subscription_id', 's.id')
    .where('s.id', id)
    .first<
      | {
          state: SubscriptionState;
          events_delivered: string;
          last_delivered_at: Date | null;
          last_heartbeat_at: Date | null;
          failing_since: Date | null;
          last_failure_reason: string | null;
        }
      | undefined
    >(
      's.state',
      'd.events_delivered',
      'd.last_delivered_at',
      'd.last_heartbeat_at',
      'd.failing_since',
      'd.last_failure_reason',
    );
  if (!row) return null;
  const dl = await db
    .withSchema(schema)
    .from('dead_letters')
    .where({ subscription_id: id })
    .whereNull('redriven_at')
    .count<{ n: string }[]>({ n: '*' });
  return {
    eventsSinceStart: Number(row.events_delivered),
    lastDeliveredAt: iso(row.last_delivered_at),
    lastHeartbeatAt: iso(row.last_heartbeat_at),
    failingSince: iso(row.failing_since),
    lastFailureReason: row.last_failure_reason,
    deadLetters: Number(dl[0]?.n ?? 0),
    health: row.state === 'paused' ? 'paused' : row.failing_since ? 'error' : 'active',
  };
}

export interface DeadLetterRow {
  id: string;
  topic: string;
  partition: number;
  offset: string;
  eventId: string;
  eventType: string;
  patientId: string;
  reason: string;
  detail: string | null;
  eventNumber: number;
  createdAt: string;
  redriveRequestedAt: string | null;
  redrivenAt: string | null;
  redriveOutcome: string | null;
}

export async function listDeadLetters(
  db: Knex,
  schema: string,
  subscriptionId: string,
): Promise<DeadLetterRow[]> {
  const rows = await db
    .withSchema(schema)
    .from('dead_letters')
    .where({ subscription_id: subscriptionId })
    .orderBy('id')
    .select<
      {
        id: string;
        topic: string;
        partition: number;
        offset: string;
        event_id: string;
        event_type: string;
        patient_id: string;
        reason: string;
        detail: string | null;
        event_number: number;
        created_at: Date;
        redrive_requested_at: Date | null;
        redriven_at: Date | null;
        redrive_outcome: string | null;
      }[]
    >('*');
  return rows.map((r) => ({
    id: String(r.id),
    topic: r.topic,
    partition: r.partition,
    offset: String(r.offset),
    eventId: r.event_id,
    eventType: r.event_type,
    patientId: r.patient_id,
    reason: r.reason,
    detail: r.detail,
    eventNumber: r.event_number,
    createdAt: r.created_at.toISOString(),
    redriveRequestedAt: iso(r.redrive_requested_at),
    redrivenAt: iso(r.redriven_at),
    redriveOutcome: r.redrive_outcome,
  }));
}

/** Marks a subscription's dead letters (all not yet redriven, or the ids given) for the worker to deliver again. */
export async function requestRedrive(
  db: Knex,
  schema: string,
  subscriptionId: string,
  now: Date,
  ids?: readonly string[],
): Promise<number> {
  let q = db
    .withSchema(schema)
    .from('dead_letters')
    .where({ subscription_id: subscriptionId })
    .whereNull('redriven_at');
  if (ids) q = q.whereIn('id', [...ids]);
  return q.update({ redrive_requested_at: now });
}
