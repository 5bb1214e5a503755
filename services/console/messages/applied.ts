import type { Knex } from 'knex';
import { listRegistry } from '../../../libs/projections/versions.js';

/**
 * Where a message's events were applied. Every read model built by the
 * projection runner (libs/projections/runner.ts) keeps, in its active
 * version schema, `applied_events` (event ids it has applied) and
 * `checkpoints` (last offset done per topic and partition); the registry
 * (hub_projections.registry) names each read model's active schema. An event
 * is applied in a read model when its id is recorded there or the
 * checkpoint of its partition has passed its offset; otherwise not yet.
 */

export interface AppliedEventRef {
  eventId: string;
  type: string;
  topic: string;
  partition: number;
  offset: string;
}

export interface ReadModelState {
  /** The stable schema readers use (e.g. analytics). */
  readModel: string;
  projection: string;
  schema: string;
  /** Per event, in the order given. */
  events: { eventId: string; type: string; applied: boolean }[];
  state: 'applied' | 'not yet' | 'nothing to apply';
}

interface Checkpoint {
  topic: string;
  partition: number;
  last_offset: string;
}

async function existingSchemas(db: Knex, names: readonly string[]): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  const rows = await db
    .from('information_schema.tables')
    .where('table_name', 'applied_events')
    .whereIn('table_schema', [...names])
    .select<{ table_schema: string }[]>('table_schema');
  return new Set(rows.map((x) => x.table_schema));
}

/**
 * One read model's answer for these events; null when it has read none of
 * this deployment's topics (another deployment's, e.g. a tenant or test
 * suffix, sharing the database).
 */
async function stateIn(
  db: Knex,
  schema: string,
  topics: readonly string[],
  events: readonly AppliedEventRef[],
): Promise<ReadModelState['events'] | null> {
  const cps = await db
    .withSchema(schema)
    .from('checkpoints')
    .whereIn('topic', [...topics])
    .select<Checkpoint[]>('topic', 'partition', 'last_offset');
  if (cps.length === 0) return null;
  if (events.length === 0) return [];
  const ids = await db
    .withSchema(schema)
    .from('applied_events')
    .whereIn(
      'event_id',
      events.map((e) => e.eventId),
    )
    .select<{ event_id: string }[]>('event_id');
  const held = new Set(ids.map((r) => r.event_id));
  const done = new Map(cps.map((c) => [`${c.topic}|${c.partition}`, BigInt(c.last_offset)]));
  return events.map((e) => {
    const last = done.get(`${e.topic}|${e.partition}`);
    const passed = last !== undefined && last >= BigInt(e.offset);
    return { eventId: e.eventId, type: e.type, applied: held.has(e.eventId) || passed };
  });
}

/** Per read model of this deployment (one that has read its clinical `topics`): applied or not yet. */
export async function appliedIn(
  db: Knex,
  topics: readonly string[],
  events: readonly AppliedEventRef[],
): Promise<ReadModelState[]> {
  const registry = await listRegistry(db);
  // A registry row whose schema is gone (a dropped test or tenant) has nothing to answer.
  const present = await existingSchemas(
    db,
    registry.map((r) => r.active_schema),
  );
  const out: ReadModelState[] = [];
  for (const r of registry) {
    if (!present.has(r.active_schema)) continue;
    const per = await stateIn(db, r.active_schema, topics, events);
    if (per === null) continue;
    out.push({
      readModel: r.stable,
      projection: r.projection,
      schema: r.active_schema,
      events: per,
      state: per.length === 0 ? 'nothing to apply' : per.every((e) => e.applied) ? 'applied' : 'not yet',
    });
  }
  return out;
}
