import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropSchema, type Knex } from '../../db/index.js';
import { migrateProjection } from '../../projections/runner.js';
import { endpoints, uniqueId } from '../../../test/support/harness.js';
import { portalProjection } from './model.js';

const TABLES = ['encounters', 'service_requests', 'reports', 'observations'] as const;

/**
 * Migration 0121 on a portal built before it (real Postgres): the patient_id
 * indexes that 0111's (patient_id, date_at) indexes made redundant are gone,
 * and a lookup by patient still reads an index.
 */
describe('portal migration 0121_portal_drop_redundant_patient_indexes', () => {
  let db: Knex;
  let schema: string;

  beforeAll(() => {
    db = createDb(endpoints().databaseUrl);
    schema = uniqueId('portal0121').toLowerCase();
  });
  afterAll(async () => {
    await dropSchema(db, schema);
    await db.destroy();
  });

  async function indexesOf(table: string): Promise<string[]> {
    const r = await db.raw<{ rows: { indexname: string }[] }>(
      'select indexname from pg_indexes where schemaname = ? and tablename = ? order by indexname',
      [schema, table],
    );
    return r.rows.map((x) => x.indexname);
  }

  it('given a portal migrated before 0121, when migrated, then each table keeps its key and (patient_id, date_at) only', async () => {
    // Given a portal with every migration before 0121 (each table has both patient indexes)
    const full = portalProjection(['t']);
    const last = '0121_portal_drop_redundant_patient_indexes';
    await migrateProjection(db, schema, {
      ...full,
      migrations: full.migrations.filter((m) => m.name !== last),
    });
    for (const t of TABLES) expect(await indexesOf(t)).toContain(`${t}_patient_id_index`);
    await db
      .withSchema(schema)
      .into('observations')
      .insert({
        observation_id: 'OBS1',
        result_id: 'R1',
        patient_id: 'P1',
        resource: JSON.stringify({ resourceType: 'Observation', id: 'OBS1', status: 'final' }),
      });

    // When migrated to the latest version
    await migrateProjection(db, schema, full);

    // Then the redundant indexes are gone, the composite ones stay, and a lookup by patient uses one
    for (const t of TABLES) {
      const names = await indexesOf(t);
      expect(names).not.toContain(`${t}_patient_id_index`);
      expect(names).toContain(`${t}_patient_id_date_at_index`);
    }
    const plan = await db.transaction(async (trx) => {
      await trx.raw('set local enable_seqscan = off');
      const r = await trx.raw<{ rows: { 'QUERY PLAN': string }[] }>(
        'explain select resource from ??.observations where patient_id = ?',
        [schema, 'P1'],
      );
      return r.rows.map((x) => x['QUERY PLAN']).join('\n');
    });
    expect(plan).toContain('observations_patient_id_date_at_index');
    expect(await db.withSchema(schema).from('observations').where({ patient_id: 'P1' }).count()).toEqual([
      { count: '1' },
    ]);
  });
});
