import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliedSchema, type AppliedSchema } from '../../test/support/applied-schema.js';
import { at, merged, registered } from '../../test/support/hospital-day.js';
import { linked, unlinked } from '../../test/support/identity-events.js';
import { findPersonByIdentifier, patientDirectoryProjection } from './projection.js';

const MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.3.999.1';

/** A lookup by identifier returns the person's records: linked ones together, split again by an unlink. */
describe('patient directory: records of one person', () => {
  let rm: AppliedSchema;
  const lookup = async (value: string) =>
    (await findPersonByIdentifier(rm.ctx.db, rm.schema, { system: MRN_SYSTEM, value })).map(
      (r) => `${r.patient_id}@${r.person_id}`,
    );

  beforeAll(async () => {
    rm = await appliedSchema('dir_persons', patientDirectoryProjection(['t']));
    await rm.apply([
      registered('DA', 'Doe', 'Jane', 'da', at(7)),
      registered('DB', 'Doe', 'Jnae', 'db', at(7, 5)),
      registered('DC', 'Roe', 'Rich', 'dc', at(7, 10)),
      registered('DD', 'Roe', 'Rich', 'dd', at(7, 15)),
    ]);
  });
  afterAll(() => rm?.cleanup());

  it('given records not linked, when looked up by an MRN, then only the record holding it', async () => {
    expect(await lookup('MRN-DB')).toEqual(['DB@DB']);
    expect(await lookup('MRN-NOPE')).toEqual([]);
  });

  it('given two records linked, when looked up by either MRN, then both records of the person', async () => {
    await rm.apply([linked('DA', 'DB', 'l1', at(8))]);
    expect(await lookup('MRN-DB')).toEqual(['DA@DA', 'DB@DA']);
    expect(await lookup('MRN-DA')).toEqual(['DA@DA', 'DB@DA']);
  });

  it('given a linked record merged into another, then the survivor stands for it in the person', async () => {
    await rm.apply([merged('DC', 'DB', 'm1', at(9))]);
    // DC holds DB's MRN since the merge; DB's own row is marked merged and not returned.
    expect(await lookup('MRN-DB')).toEqual(['DA@DA', 'DC@DA']);
  });

  it('given the link undone, when looked up, then each record alone again', async () => {
    await rm.apply([unlinked('DA', 'DB', 'u1', at(10))]);
    expect(await lookup('MRN-DA')).toEqual(['DA@DA']);
    expect(await lookup('MRN-DB')).toEqual(['DC@DC']);
  });
});
