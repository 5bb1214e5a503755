import type { Knex } from 'knex';
import { assertSqlIdentifier, ddlUnderLock } from '../db/index.js';
import { HubError } from '../errors/index.js';
import { migrateProjection, type Projection } from './runner.js';

/**
 * Versioned read models, for rebuilds without downtime.
 *
 * A read model's data lives in a version schema (`<stable>_v1`, `<stable>_v2`,
 * ...). Readers use the stable schema (`<stable>`), which holds only views,
 * one per table and view of the active version (`select * from
 * <stable>_vN.x`). A rebuild fills `<stable>_vN+1` from offset 0 next to the
 * serving version, then repoints every stable view and the registry row in
 * ONE transaction (Postgres DDL is transactional, so readers see either the
 * old or the new version, never a mix), and drops the old version once the
 * live projector has moved over.
 *
 * The registry (`hub_projections.registry`) is the switch the live
 * projector follows: it polls `active_schema` and, when it changes, stops its
 * runner and resumes on the new version from that version's own stored
 * offsets (so nothing is lost or applied twice across the handover).
 */
export const REGISTRY_SCHEMA = 'hub_projections';

/** Bookkeeping tables that stay private to a version schema. */
const PRIVATE = new Set([
  'checkpoints',
  'applied_events',
  'partition_owners',
  'knex_migrations',
  'knex_migrations_lock',
]);

export interface RegistryRow {
  stable: string;
  projection: string;
  active_schema: string;
  version: number;
  serving_schema: string | null;
  serving_at: Date | null;
  switched_at: Date;
}

export const versionSchema = (stable: string, version: number) =>
  assertSqlIdentifier(`${stable}_v${version}`);

const ensured = new WeakSet<Knex>();

export async function ensureRegistry(db: Knex): Promise<void> {
  if (ensured.has(db)) return;
  await ddlUnderLock(db, REGISTRY_SCHEMA, (trx) =>
    trx.raw(`create table if not exists ${REGISTRY_SCHEMA}.registry (
        stable text primary key,
        projection text not null,
        active_schema text not null,
        version integer not null,
        serving_schema text,
        serving_at timestamptz,
        switched_at timestamptz not null default now())`),
  );
  ensured.add(db);
}

export async function readRegistry(db: Knex, stable: string): Promise<RegistryRow | undefined> {
  await ensureRegistry(db);
  return (await db.withSchema(REGISTRY_SCHEMA).from('registry').where({ stable }).first()) as
    RegistryRow | undefined;
}

export async function listRegistry(db: Knex): Promise<RegistryRow[]> {
  await ensureRegistry(db);
  return (await db.withSchema(REGISTRY_SCHEMA).from('registry').orderBy('stable')) as RegistryRow[];
}

/** Tables and views of a version schema that readers may see. */
async function publicRelations(db: Knex, schema: string): Promise<string[]> {
  const r = await db.raw<{ rows: { name: string }[] }>(
    `select table_name as name from information_schema.tables where table_schema = ? order by table_name`,
    [schema],
  );
  return r.rows.map((x) => x.name).filter((n) => !PRIVATE.has(n));
}

/**
 * Points the stable schema's views at `target` and records it as active, in
 * the caller's transaction. Views are dropped and recreated (not `create or
 * replace`) because a new version may have different columns. Reference
 * tables people (or side consumers) write through the stable views are
 * copied from the previous version after the views are dropped: the drop
 * waits for in-flight writes and blocks new ones until commit, so no edit
 * made during a rebuild is lost.
 */
export async function pointStableAt(
  trx: Knex.Transaction,
  stable: string,
  projection: string,
  target: string,
  version: number,
  hooks: VersionHooks = {},
): Promise<void> {
  assertSqlIdentifier(stable);
  assertSqlIdentifier(target);
  // Serialises two switches of one read model (two rebuilds, or a first start racing a rebuild).
  await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`hub_projections:${stable}`]);
  await trx.raw('create schema if not exists ??', [stable]);
  const prev = (await trx.withSchema(REGISTRY_SCHEMA).from('registry').where({ stable }).first()) as
    RegistryRow | undefined;
  const old = await trx.raw<{ rows: { name: string }[] }>(
    `select table_name as name from information_schema.views where table_schema = ?`,
    [stable],
  );
  for (const v of old.rows) await trx.raw('drop view if exists ??.?? cascade', [stable, v.name]);
  if (prev && prev.active_schema !== target) {
    for (const t of hooks.carryOver ?? []) {
      await trx.raw('delete from ??.??', [target, t]);
      await trx.raw('insert into ??.?? select * from ??.??', [target, t, prev.active_schema, t]);
    }
  }
  const relations = await publicRelations(trx, target);
  for (const rel of relations) {
    await trx.raw('create view ??.?? as select * from ??.??', [stable, rel, target, rel]);
  }
  await trx
    .withSchema(REGISTRY_SCHEMA)
    .into('registry')
    .insert({ stable, projection, active_schema: target, version, switched_at: trx.fn.now() })
    .onConflict('stable')
    .merge(['active_schema', 'version', 'switched_at', 'projection']);
  if (hooks.afterSwitch) await hooks.afterSwitch(trx, stable, relations);
}

export interface VersionHooks {
  /** Runs inside the switch transaction (e.g. grants on the stable views). */
  afterSwitch?(trx: Knex.Transaction, stable: string, relations: string[]): Promise<void>;
  /** Tables not derived from the topics (edited by people, or written by side consumers): carried to a new version. */
  carryOver?: readonly string[];
}

/**
 * The version a projector should serve: the registry's active one, or
 * version 1, created and made active on the very first start.
 */
export async function resolveActiveVersion(
  db: Knex,
  stable: string,
  projection: Projection,
  hooks: VersionHooks = {},
): Promise<string> {
  assertSqlIdentifier(stable);
  const row = await readRegistry(db, stable);
  if (row) {
    // New migrations of this code apply to the serving version in place; the
    // stable views are then re-pointed so that new tables and views show.
    const applied = await migrateProjection(db, row.active_schema, projection);
    if (applied.length > 0) {
      await db.transaction((trx) =>
        pointStableAt(trx, stable, projection.name, row.active_schema, row.version, hooks),
      );
    }
    return row.active_schema;
  }
  const first = versionSchema(stable, 1);
  await migrateProjection(db, first, projection);
  await db.transaction(async (trx) => {
    const again = (await trx.withSchema(REGISTRY_SCHEMA).from('registry').where({ stable }).first()) as
      RegistryRow | undefined;
    if (!again) await pointStableAt(trx, stable, projection.name, first, 1, hooks);
  });
  const registered = await readRegistry(db, stable);
  // The transaction above wrote the row unless another process had: either way it exists now.
  if (!registered)
    throw new HubError('HUB_INTERNAL', `read model ${stable} has no registry row after registering it`);
  return registered.active_schema;
}

export async function markServing(db: Knex, stable: string, schema: string): Promise<void> {
  await db
    .withSchema(REGISTRY_SCHEMA)
    .from('registry')
    .where({ stable })
    .update({ serving_schema: schema, serving_at: db.fn.now() });
}

/** Removes a read model entirely: every version, the stable schema and its registry row. */
export async function dropReadModel(db: Knex, stable: string): Promise<void> {
  assertSqlIdentifier(stable);
  await ensureRegistry(db);
  const r = await db.raw<{ rows: { name: string }[] }>(
    `select nspname as name from pg_namespace where nspname = ? or nspname ~ ?`,
    [stable, `^${stable}_v[0-9]+$`],
  );
  for (const s of r.rows) await db.raw('drop schema if exists ?? cascade', [s.name]);
  await db.withSchema(REGISTRY_SCHEMA).from('registry').where({ stable }).delete();
}
