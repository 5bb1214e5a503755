import knexFactory, { type Knex } from 'knex';
import { readSecret } from '../config/index.js';
import { HubError } from '../errors/index.js';

export type { Knex };

export interface DbOptions {
  pool?: { min: number; max: number } | undefined;
  /** DATABASE_PASSWORD_FILE: the password, kept out of the URL and the environment. */
  passwordFile?: string | undefined;
}

/**
 * The URL with the password from the file in it. TLS stays in the URL
 * itself (`sslmode=verify-full&sslrootcert=<file>`), read by pg: with the
 * installed pg every sslmode other than disable/no-verify checks the chain
 * and the host name (docs/security.md).
 */
export function connectionUrl(databaseUrl: string, passwordFile?: string): string {
  if (passwordFile === undefined) return databaseUrl;
  const url = new URL(databaseUrl);
  // Encoded first: the setter leaves '%' as is, and pg decodes the component.
  url.password = encodeURIComponent(readSecret({ file: passwordFile }, 'DATABASE_PASSWORD_FILE'));
  return url.toString();
}

export function createDb(databaseUrl: string, opts: DbOptions = {}): Knex {
  return knexFactory({
    client: 'pg',
    connection: connectionUrl(databaseUrl, opts.passwordFile),
    pool: opts.pool ?? { min: 0, max: 5 },
    // Each projection names its schema explicitly; nothing relies on search_path.
    searchPath: ['public'],
  });
}

// SQLSTATE classes that mean "the server or the connection is gone", after
// which a retry may succeed: 08 connection exception, 57P0x admin shutdown,
// 53 insufficient resources, 40001/40P01 serialization/deadlock.
const RETRIABLE_SQLSTATE = /^(08|53|57P0|40001|40P01)/;
const RETRIABLE_NODE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection terminated|timeout acquiring a connection/i;

/** Maps a pg/knex error into the hub's model without copying its text (it can quote row values). */
export function toDbError(err: unknown): HubError {
  if (err instanceof HubError) return err;
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (RETRIABLE_SQLSTATE.test(code) || RETRIABLE_NODE.test(code) || RETRIABLE_NODE.test(message)) {
    return new HubError('HUB_DB_UNAVAILABLE', `postgres unavailable (${code || 'connection'})`, {
      cause: err,
    });
  }
  const name = typeof e.name === 'string' ? e.name : 'Error';
  return new HubError('HUB_DB_ERROR', `postgres refused a statement (${code || name})`, {
    cause: err,
  });
}

/** Identifier check for schema names that come from config: they are interpolated into DDL. */
export function assertSqlIdentifier(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new HubError('HUB_CONFIG_INVALID', `not a safe SQL identifier: ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * A Postgres array literal for `?::text[]` (or `::uuid[]`, `::bigint[]`):
 * every element quoted, backslash and double quote escaped, exactly as
 * node-pg serialises a JS array, but in one join instead of several string
 * allocations per element, and with nothing for knex to scan. Thousands of
 * keys per statement make the difference.
 */
export function sqlArray(values: Iterable<string>): string {
  const list = Array.isArray(values) ? (values as readonly string[]) : [...values];
  if (list.length === 0) return '{}';
  // Ids, as good as always, have nothing to escape: one join, no expression per element.
  for (const v of list) {
    if (v.includes('"') || v.includes('\\')) {
      return `{${list.map((x) => `"${x.replace(/["\\]/g, '\\$&')}"`).join(',')}}`;
    }
  }
  return `{"${list.join('","')}"}`;
}

export interface Migration {
  name: string;
  up(knex: Knex, schema: string): Promise<void>;
  down?(knex: Knex, schema: string): Promise<void>;
}

/**
 * Runs a projection's migrations inside its own schema, with its own
 * migration table there, so that schemas (and rebuild versions) are
 * independent and dropping a schema removes everything of it.
 *
 * Several processes migrate one schema when they start together (the API
 * and the identity-matcher share the identity schema; replicas share
 * theirs). Neither `create schema if not exists` nor knex's creation of its
 * migration tables (a look, then a create) is safe against a concurrent
 * twin: the loser fails with 23505 or 42P07 and the service does not start.
 * So the whole run is one transaction under an advisory lock on the schema's
 * name (ddlUnderLock): the second process waits, then finds everything
 * applied. Postgres DDL is transactional, so a failed migration also leaves
 * nothing half-made, the schema included.
 */
export async function migrateSchema(
  knex: Knex,
  schema: string,
  migrations: readonly Migration[],
): Promise<string[]> {
  return ddlUnderLock(knex, schema, (trx) => runMigrations(trx, schema, migrations));
}

/**
 * Creates `schema` if it is missing and runs `ddl` in the same transaction,
 * under a transaction-level advisory lock on the schema's name: how every
 * "create if missing" of the hub's own tables is done, because two
 * processes doing it at once otherwise collide in Postgres's catalog
 * (23505, 42P06, 42P07) although each asked for "if not exists".
 */
export async function ddlUnderLock<T>(
  knex: Knex,
  schema: string,
  ddl: (trx: Knex.Transaction) => Promise<T>,
): Promise<T> {
  assertSqlIdentifier(schema);
  return knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`hub_ddl:${schema}`]);
    await trx.raw('create schema if not exists ??', [schema]);
    return ddl(trx);
  });
}

async function runMigrations(
  trx: Knex.Transaction,
  schema: string,
  migrations: readonly Migration[],
): Promise<string[]> {
  const [batchNo, applied] = (await trx.migrate.latest({
    schemaName: schema,
    tableName: 'knex_migrations',
    migrationSource: {
      getMigrations: () => Promise.resolve([...migrations]),
      getMigrationName: (m: Migration) => m.name,
      getMigration: (m: Migration) =>
        Promise.resolve({
          up: (k: Knex) => m.up(k, schema),
          down: (k: Knex) => (m.down ? m.down(k, schema) : Promise.resolve()),
        }),
    },
  })) as [number, string[]];
  void batchNo;
  return applied;
}

export async function dropSchema(knex: Knex, schema: string): Promise<void> {
  assertSqlIdentifier(schema);
  await knex.raw('drop schema if exists ?? cascade', [schema]);
}
