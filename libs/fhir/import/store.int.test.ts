import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropSchema, type Knex } from '../../db/index.js';
import { endpoints, uniqueId } from '../../../test/support/harness.js';
import { createFhirStore, type FhirStore, type StoredResource } from './store.js';

function row(id: string, over: Partial<StoredResource> = {}): StoredResource {
  return {
    type: 'Patient',
    id,
    version: 1,
    contentHash: `h-${id}`,
    hubId: `hub-${id}`,
    patientKey: `pk-${id}`,
    status: null,
    location: null,
    // Keys out of alphabetical order: the stored copy is served back in the order it was sent.
    resource: { resourceType: 'Patient', id, gender: 'other', active: true },
    identifiers: [{ system: 'urn:mrn', value: `MRN-${id}` }],
    sourceSystem: 'lab',
    ...over,
  };
}

/** The adapter's store against Postgres: what save writes, getMany and findByIdentifier read back. */
describe('FHIR store save (one statement per part)', () => {
  let db: Knex;
  let store: FhirStore;
  const schema = uniqueId('fhir_store').toLowerCase();

  beforeAll(async () => {
    db = createDb(endpoints().databaseUrl);
    store = createFhirStore(db, schema);
    await store.migrate();
  });
  afterAll(async () => {
    await dropSchema(db, schema);
    await db.destroy();
  });

  it('given new rows, when saved, then every column and identifier reads back, and the resource text is as sent', async () => {
    const loc = { facility: 'F', unit: 'W1', room: null, bed: null };
    await store.save([row('a1', { status: 'active', location: loc }), row('a2')]);
    const got = await store.getMany([
      { type: 'Patient', id: 'a1' },
      { type: 'Patient', id: 'a2' },
    ]);
    expect(got.get('Patient/a1')).toEqual({
      ...row('a1', { status: 'active', location: loc }),
      identifiers: [],
    });
    expect((await store.findByIdentifier('Patient', 'urn:mrn', 'MRN-a2'))?.id).toBe('a2');
    const text = await db.raw<{ rows: { t: string; u: Date }[] }>(
      `select resource::text as t, updated_at as u from ??.resources where resource_id = 'a1'`,
      [schema],
    );
    expect(text.rows[0]?.t).toBe(JSON.stringify(row('a1').resource));
    expect(text.rows[0]?.u).toBeInstanceOf(Date);
  });

  it('given a stored resource, when a new version is saved (and a row twice in one call), then the last one wins', async () => {
    await store.save([row('b1')]);
    await store.save([
      row('b1', { version: 2, contentHash: 'h2', sourceSystem: 'adt' }),
      row('b1', {
        version: 3,
        contentHash: 'h3',
        sourceSystem: 'adt',
        identifiers: [{ system: 'urn:mrn', value: 'MRN-a1' }],
      }),
    ]);
    const b1 = (await store.getMany([{ type: 'Patient', id: 'b1' }])).get('Patient/b1');
    expect(b1).toMatchObject({ version: 3, contentHash: 'h3', sourceSystem: 'adt' });
    // An identifier moves to the resource that last claimed it, as the merge did before.
    expect((await store.findByIdentifier('Patient', 'urn:mrn', 'MRN-a1'))?.id).toBe('b1');
  });

  it('given more rows than one statement takes, when saved, then all are written in one transaction', async () => {
    const many = Array.from({ length: 1203 }, (_, i) => row(`m${i}`));
    await store.save(many);
    const got = await store.getMany(many.map((r) => ({ type: r.type, id: r.id })));
    expect(got.size).toBe(1203);
    const bad = [...many.slice(0, 700), row('m700', { version: Number.NaN })];
    // The last part fails (a version that is no integer): nothing of the call is written.
    await expect(store.save(bad.map((r) => ({ ...r, contentHash: 'new' })))).rejects.toThrow();
    const after = await store.getMany([{ type: 'Patient', id: 'm0' }]);
    expect(after.get('Patient/m0')?.contentHash).toBe('h-m0');
  });
});
