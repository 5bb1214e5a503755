import { afterAll, describe, expect, it } from 'vitest';
import { endpoints, uniqueId } from '../../test/support/harness.js';
import { createDb, ddlUnderLock, dropSchema, migrateSchema, type Knex, type Migration } from './index.js';

const table = (name: string): Migration => ({
  name: `create_${name}`,
  async up(knex, schema) {
    await knex.schema.withSchema(schema).createTable(name, (t) => {
      t.text('id').primary();
    });
  },
});

const tablesOf = async (db: Knex, schema: string): Promise<string[]> => {
  const r = await db.raw<{ rows: { table_name: string }[] }>(
    'select table_name from information_schema.tables where table_schema = ? order by table_name',
    [schema],
  );
  return r.rows.map((x) => x.table_name);
};

describe('migrateSchema against the real Postgres', () => {
  const pools: Knex[] = [];
  const schemas: string[] = [];
  const pool = (max: number) => {
    const db = createDb(endpoints().databaseUrl, { pool: { min: 0, max } });
    pools.push(db);
    return db;
  };
  const freshSchema = () => {
    const s = uniqueId('mig');
    schemas.push(s);
    return s;
  };

  afterAll(async () => {
    const db = pool(1);
    for (const s of schemas) await dropSchema(db, s);
    await Promise.all(pools.map((p) => p.destroy()));
  });

  // The console e2e saw the identity-matcher exit at start with "error 42P07":
  // it and the API migrated the identity schema at the same moment, and the
  // loser of knex's look-then-create of its migration table failed. Before the
  // fix every round here failed (23505 on `create schema if not exists`).
  it('regression: two services migrating one fresh schema at once both start (identity-matcher 42P07)', async () => {
    // Given two processes' pools and one schema neither has seen
    const [api, matcher] = [pool(5), pool(5)];
    const migrations = [table('records'), table('pairs')];
    for (let round = 0; round < 5; round += 1) {
      const schema = freshSchema();
      // When both migrate it at the same moment
      const [a, b] = await Promise.all([
        migrateSchema(api, schema, migrations),
        migrateSchema(matcher, schema, migrations),
      ]);
      // Then both succeed, and the migrations ran exactly once between them
      expect([...a, ...b].sort()).toEqual(['create_pairs', 'create_records']);
      expect(await tablesOf(api, schema)).toEqual([
        'knex_migrations',
        'knex_migrations_lock',
        'pairs',
        'records',
      ]);
    }
  });

  it('given a migration that fails, then nothing of the run is left and a corrected run applies all', async () => {
    const db = pool(5);
    const schema = freshSchema();
    const broken: Migration = {
      name: 'create_broken',
      up: () => Promise.reject(new Error('bad migration')),
    };
    // When the second of two migrations fails
    await expect(migrateSchema(db, schema, [table('records'), broken])).rejects.toThrow('bad migration');
    // Then the first one's table is gone with it (one transaction)
    expect(await tablesOf(db, schema)).toEqual([]);
    // And when run again without the broken one, it applies from the start
    expect(await migrateSchema(db, schema, [table('records')])).toEqual(['create_records']);
  });

  it('given a pool of one connection, then migrating does not wait on itself', async () => {
    // The lock and the migrations share the one connection the CLI opens.
    const db = pool(1);
    const schema = freshSchema();
    expect(await migrateSchema(db, schema, [table('records')])).toEqual(['create_records']);
    expect(await migrateSchema(db, schema, [table('records')])).toEqual([]);
  });

  it('given two processes creating one table "if not exists" at once, then both succeed (ddlUnderLock)', async () => {
    // The projection registry and the dead-letter state table are made this way.
    const [a, b] = [pool(5), pool(5)];
    for (let round = 0; round < 5; round += 1) {
      const schema = freshSchema();
      const create = (db: Knex) =>
        ddlUnderLock(db, schema, (trx) =>
          trx.raw('create table if not exists ??.state (id text primary key)', [schema]),
        );
      await Promise.all([create(a), create(b)]);
      expect(await tablesOf(a, schema)).toEqual(['state']);
    }
  });
});
