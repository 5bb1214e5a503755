import type { Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { assertSqlIdentifier, migrateSchema, toDbError, type Migration } from '../../db/index.js';
import type { Location } from '../../events/index.js';

/**
 * The adapter's own small store: FHIR resource id ↔ identifiers ↔ patient
 * key, versions, and import checkpoints. Written only after Kafka has
 * acknowledged the events (the log stays the truth); if a write here is
 * lost, the retry maps to the same version and so to the same event ids.
 */
export interface StoredResource {
  type: string;
  id: string;
  version: number;
  contentHash: string;
  hubId: string;
  patientKey: string;
  status: string | null;
  location: Location | null;
  resource: Resource;
  /** canonical system|value pairs of the resource's identifiers. */
  identifiers: { system: string; value: string }[];
  /**
   * The source system that wrote the current version (its events' source.system): only a
   * client writing as it may replace or read the resource (services/adapter-fhir). Null for
   * rows stored before 0002, until migrate() is told whose they were.
   */
  sourceSystem: string | null;
}

export interface ImportCheckpoint {
  importKey: string;
  lastLine: number;
  counts: Record<string, number>;
}

export interface FhirStore {
  /** `unownedSourceSystem`: the source system rows stored before 0002 (without one) were written as. */
  migrate(o?: { unownedSourceSystem?: string }): Promise<void>;
  getMany(keys: readonly { type: string; id: string }[]): Promise<Map<string, StoredResource>>;
  findByIdentifier(type: string, system: string, value: string): Promise<StoredResource | undefined>;
  save(rows: readonly StoredResource[]): Promise<void>;
  getCheckpoint(importKey: string): Promise<ImportCheckpoint | undefined>;
  saveCheckpoint(cp: ImportCheckpoint): Promise<void>;
}

export const keyOf = (type: string, id: string): string => `${type}/${id}`;

const migrations: Migration[] = [
  {
    name: '0001_fhir_store',
    async up(knex, schema) {
      await knex.schema.withSchema(schema).createTable('resources', (t) => {
        t.text('resource_type').notNullable();
        t.text('resource_id').notNullable();
        t.integer('version').notNullable();
        t.text('content_hash').notNullable();
        t.text('hub_id').notNullable();
        t.text('patient_key').notNullable();
        t.text('status');
        t.jsonb('location');
        // json, not jsonb: the stored copy is served back with its original key order.
        t.json('resource').notNullable();
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.primary(['resource_type', 'resource_id']);
        t.index(['patient_key']);
      });
      await knex.schema.withSchema(schema).createTable('identifiers', (t) => {
        t.text('resource_type').notNullable();
        t.text('system').notNullable();
        t.text('value').notNullable();
        t.text('resource_id').notNullable();
        t.primary(['resource_type', 'system', 'value']);
      });
      await knex.schema.withSchema(schema).createTable('import_checkpoints', (t) => {
        t.text('import_key').primary();
        t.bigInteger('last_line').notNullable();
        t.jsonb('counts').notNullable();
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      });
    },
  },
  {
    name: '0002_source_system',
    async up(knex, schema) {
      await knex.schema.withSchema(schema).alterTable('resources', (t) => {
        t.text('source_system');
      });
    },
  },
];

interface Row {
  resource_type: string;
  resource_id: string;
  version: number;
  content_hash: string;
  hub_id: string;
  patient_key: string;
  status: string | null;
  location: Location | null;
  resource: Resource;
  source_system: string | null;
}

function fromRow(r: Row): StoredResource {
  return {
    type: r.resource_type,
    id: r.resource_id,
    version: r.version,
    contentHash: r.content_hash,
    hubId: r.hub_id,
    patientKey: r.patient_key,
    status: r.status,
    location: r.location,
    resource: r.resource,
    identifiers: [],
    sourceSystem: r.source_system,
  };
}

async function db<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toDbError(err);
  }
}

function getMany(
  knex: Knex,
  schema: string,
  keys: readonly { type: string; id: string }[],
): Promise<Map<string, StoredResource>> {
  return db(async () => {
    const out = new Map<string, StoredResource>();
    const uniq = [...new Map(keys.map((k) => [keyOf(k.type, k.id), k])).values()];
    // Chunks keep the statement under Postgres' bind-parameter limit.
    for (let i = 0; i < uniq.length; i += 2000) {
      const part = uniq.slice(i, i + 2000);
      if (part.length === 0) continue;
      const rows = (await knex
        .withSchema(schema)
        .from('resources')
        .whereIn(
          ['resource_type', 'resource_id'],
          part.map((k) => [k.type, k.id]),
        )
        .select('*')) as Row[];
      for (const r of rows) out.set(keyOf(r.resource_type, r.resource_id), fromRow(r));
    }
    return out;
  });
}

function findByIdentifier(
  knex: Knex,
  schema: string,
  type: string,
  system: string,
  value: string,
): Promise<StoredResource | undefined> {
  return db(async () => {
    const rows: Row[] = await knex
      .withSchema(schema)
      .from('resources as r')
      .join(knex.raw('??.identifiers as i', [schema]), function () {
        this.on('i.resource_type', '=', 'r.resource_type').andOn('i.resource_id', '=', 'r.resource_id');
      })
      .where({ 'i.resource_type': type, 'i.system': system, 'i.value': value })
      .select('r.*');
    return rows[0] ? fromRow(rows[0]) : undefined;
  });
}

function save(knex: Knex, schema: string, rows: readonly StoredResource[]): Promise<void> {
  if (rows.length === 0) return Promise.resolve();
  // Last write per resource wins within one call (an import chunk can touch a resource twice).
  const last = [...new Map(rows.map((r) => [keyOf(r.type, r.id), r])).values()];
  // One statement is atomic on its own: a Bundle's rows (up to SAVE_PART) take one round trip,
  // not BEGIN, two inserts and COMMIT.
  if (last.length <= SAVE_PART) return db(() => savePart(knex, schema, last));
  return db(() =>
    knex.transaction(async (trx) => {
      for (let i = 0; i < last.length; i += SAVE_PART)
        await savePart(trx, schema, last.slice(i, i + SAVE_PART));
    }),
  );
}

/** Rows per statement: a part's JSON stays far below Postgres' 1 GB limit for one value. */
const SAVE_PART = 500;

/**
 * One part of the resource rows and their identifiers, as one statement: both upserts read
 * their rows from a JSON parameter (json_to_recordset), so that a part of n rows is two bound
 * values rather than 11n built into the SQL text by knex. `resource` arrives as the `json` text
 * JSON.stringify wrote, which Postgres keeps as is (the stored copy keeps its key order);
 * `updated_at` is the statement's now(), as before.
 */
async function savePart(
  q: Knex | Knex.Transaction,
  schema: string,
  part: readonly StoredResource[],
): Promise<void> {
  const resources = part.map((r) => ({
    resource_type: r.type,
    resource_id: r.id,
    version: r.version,
    content_hash: r.contentHash,
    hub_id: r.hubId,
    patient_key: r.patientKey,
    status: r.status,
    location: r.location,
    resource: r.resource,
    source_system: r.sourceSystem,
  }));
  const ids = [
    ...new Map(
      part.flatMap((r) =>
        r.identifiers.map((x) => [
          `${r.type}|${x.system}|${x.value}`,
          { resource_type: r.type, system: x.system, value: x.value, resource_id: r.id },
        ]),
      ),
    ).values(),
  ];
  await q.raw(
    `with saved as (
       insert into ??.resources (resource_type, resource_id, version, content_hash, hub_id, patient_key,
                                 status, location, resource, source_system, updated_at)
       select resource_type, resource_id, version, content_hash, hub_id, patient_key,
              status, location, resource, source_system, now()
       from json_to_recordset(?::json) as x(resource_type text, resource_id text, version integer,
            content_hash text, hub_id text, patient_key text, status text, location jsonb,
            resource json, source_system text)
       on conflict (resource_type, resource_id) do update set
         version = excluded.version, content_hash = excluded.content_hash, hub_id = excluded.hub_id,
         patient_key = excluded.patient_key, status = excluded.status, location = excluded.location,
         resource = excluded.resource, source_system = excluded.source_system,
         updated_at = excluded.updated_at
       returning 1
     )
     insert into ??.identifiers (resource_type, system, value, resource_id)
     select resource_type, system, value, resource_id
     from json_to_recordset(?::json) as y(resource_type text, system text, value text, resource_id text)
     on conflict (resource_type, system, value) do update set resource_id = excluded.resource_id`,
    [schema, JSON.stringify(resources), schema, JSON.stringify(ids)],
  );
}

function getCheckpoint(knex: Knex, schema: string, importKey: string): Promise<ImportCheckpoint | undefined> {
  return db(async () => {
    const rows = (await knex
      .withSchema(schema)
      .from('import_checkpoints')
      .where({ import_key: importKey })
      .select('*')) as { import_key: string; last_line: string; counts: Record<string, number> }[];
    const r = rows[0];
    return r ? { importKey: r.import_key, lastLine: Number(r.last_line), counts: r.counts } : undefined;
  });
}

function saveCheckpoint(knex: Knex, schema: string, cp: ImportCheckpoint): Promise<void> {
  return db(async () => {
    await knex
      .withSchema(schema)
      .into('import_checkpoints')
      .insert({
        import_key: cp.importKey,
        last_line: cp.lastLine,
        counts: JSON.stringify(cp.counts),
        updated_at: knex.fn.now(),
      })
      .onConflict('import_key')
      .merge();
  });
}

/** A plain object of bound functions (not a class): callers wrap a store by spreading it. */
export function createFhirStore(knex: Knex, schemaName: string): FhirStore {
  const schema = assertSqlIdentifier(schemaName);
  return {
    async migrate(o) {
      await migrateSchema(knex, schema, migrations);
      const owner = o?.unownedSourceSystem;
      if (owner) {
        await db(() =>
          knex
            .withSchema(schema)
            .table('resources')
            .whereNull('source_system')
            .update({ source_system: owner }),
        );
      }
    },
    getMany: (keys) => getMany(knex, schema, keys),
    findByIdentifier: (type, system, value) => findByIdentifier(knex, schema, type, system, value),
    save: (rows) => save(knex, schema, rows),
    getCheckpoint: (importKey) => getCheckpoint(knex, schema, importKey),
    saveCheckpoint: (cp) => saveCheckpoint(knex, schema, cp),
  };
}
