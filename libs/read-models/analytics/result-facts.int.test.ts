import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Knex } from '../../db/index.js';
import type { Projection } from '../../projections/runner.js';
import { dropReadModel, resolveActiveVersion } from '../../projections/versions.js';
import { endpoints, uniqueId } from '../../../test/support/harness.js';
import { ANALYTICS_VERSION_HOOKS, analyticsProjection } from './model.js';
import { ANALYST_ROLE } from './views.js';

/**
 * Upgrading a serving analytics version to the observation facts and
 * diagnoses (migration 0306) in place: the projector's start applies it and
 * re-points the stable schema, whose new views analysts can read at once.
 */
describe('analytics: migration 0306 on a serving version (Postgres)', () => {
  let db: Knex;
  const stable = uniqueId('anup').toLowerCase();

  beforeAll(() => {
    db = createDb(endpoints().databaseUrl);
  });
  afterAll(async () => {
    await dropReadModel(db, stable);
    await db.destroy();
  });

  it('given a version migrated up to 0305, when started with this code, then the same version gains the tables and the analyst reads the new views through the stable schema', async () => {
    const full = analyticsProjection(['t']);
    const before: Projection = { ...full, migrations: full.migrations.filter((m) => m.name < '0306') };
    const first = await resolveActiveVersion(db, stable, before, ANALYTICS_VERSION_HOOKS);
    expect(await resolveActiveVersion(db, stable, full, ANALYTICS_VERSION_HOOKS)).toBe(first);
    const rows = await db.transaction(async (trx) => {
      await trx.raw(`set local role ${ANALYST_ROLE}`);
      const out: Record<string, unknown>[] = [];
      for (const v of [
        'v_abnormal_rate_by_test',
        'v_critical_values',
        'v_results_without_loinc',
        'v_results_by_unit_system',
        'v_encounters_by_principal_diagnosis',
      ])
        out.push(
          ...(await trx.raw<{ rows: Record<string, unknown>[] }>(`select * from ${stable}.${v}`)).rows,
        );
      return out;
    });
    expect(rows).toEqual([]);
  });
});
