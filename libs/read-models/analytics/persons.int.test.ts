import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliedSchema, type AppliedSchema } from '../../../test/support/applied-schema.js';
import { admitted, at } from '../../../test/support/hospital-day.js';
import { linked, unlinked } from '../../../test/support/identity-events.js';
import { analyticsProjection } from './model.js';

/** KPIs that count people count persons: records linked as one count once, and apart again after an unlink. */
describe('analytics: census by person', () => {
  let rm: AppliedSchema;
  const census = async () =>
    (
      await rm.ctx.db
        .withSchema(rm.schema)
        .from('v_daily_census')
        .where({ unit: '4W' })
        .orderBy('day')
        .select<{ census: number }[]>('census')
    ).map((r) => r.census);

  beforeAll(async () => {
    rm = await appliedSchema('an_persons', analyticsProjection(['t']));
    // One person admitted under two records (two registrations), and someone else.
    await rm.apply([
      admitted('CA', 'CE1', 'inpatient', '4W', 'ca', at(8)),
      admitted('CB', 'CE2', 'inpatient', '4W', 'cb', at(9)),
      admitted('CC', 'CE3', 'inpatient', '4W', 'cc', at(10)),
    ]);
  });
  afterAll(() => rm?.cleanup());

  it('given three records in house, none linked, then the census counts three', async () => {
    expect(await census()).toEqual([3]);
  });

  it('given two of them linked as one person, then the census counts two; unlinked, three again', async () => {
    await rm.apply([linked('CA', 'CB', 'cl', at(11))]);
    expect(await census()).toEqual([2]);
    await rm.apply([unlinked('CA', 'CB', 'cu', at(12))]);
    expect(await census()).toEqual([3]);
  });
});
