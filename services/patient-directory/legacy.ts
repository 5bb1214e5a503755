import type { Knex } from 'knex';
import { assertSqlIdentifier } from '../../libs/db/index.js';
import { HubError } from '../../libs/errors/index.js';
import { versionSchema } from '../../libs/projections/versions.js';

/**
 * Before the patient directory ran on the projector kit, its tables lived in
 * the stable schema itself, unversioned. Such a schema becomes version 1 as
 * it is (rows, applied event ids, checkpoints): an upgraded install resumes
 * where it stopped, instead of failing to put a view where the table is or
 * replaying the topic from offset 0. Returns whether it adopted one.
 */
export async function adoptUnversionedSchema(db: Knex, stable: string): Promise<boolean> {
  assertSqlIdentifier(stable);
  const target = versionSchema(stable, 1);
  return db.transaction(async (trx) => {
    // The lock of a version switch: two instances starting at once adopt it once.
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`hub_projections:${stable}`]);
    // A versioned stable schema holds views only; the runner's checkpoints table marks an unversioned one.
    const legacy = await trx.raw<{ rows: unknown[] }>(
      `select 1 from information_schema.tables
        where table_schema = ? and table_name = 'checkpoints' and table_type = 'BASE TABLE'`,
      [stable],
    );
    if (legacy.rows.length === 0) return false;
    const taken = await trx.raw<{ rows: unknown[] }>('select 1 from pg_namespace where nspname = ?', [
      target,
    ]);
    if (taken.rows.length > 0) {
      throw new HubError(
        'HUB_CONFIG_INVALID',
        `schema ${stable} holds an unversioned patient directory and ${target} exists as well: drop one of them`,
      );
    }
    await trx.raw('alter schema ?? rename to ??', [stable, target]);
    return true;
  });
}
