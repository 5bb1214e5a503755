import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropSchema, sqlArray, type Knex } from '../db/index.js';
import { KeyExists, migrateProjection, type Projection } from './runner.js';
import type { DecodedRecord } from '../kafka/consumer.js';
import { endpoints, eventually, uniqueId } from '../../test/support/harness.js';
import { at, registered } from '../../test/support/hospital-day.js';
import { readModelProjection, type Row } from './store.js';

interface Thing {
  id: string;
  doc?: unknown;
  tags: unknown;
  at: number;
  maybe_at: number | null;
  flag: boolean | null;
  n: number | null;
  label: string | null;
}

interface LogRow {
  id: string;
  note: string;
}

interface Tables {
  things: Thing;
  log: LogRow;
}

/** What the store wrote before it sent rows as one jsonb parameter: knex's multi-row upsert. */
function previousWrite(t: Thing): Row {
  return {
    ...t,
    ...(t.doc === undefined ? {} : { doc: JSON.stringify(t.doc) }),
    tags: JSON.stringify(t.tags),
    at: new Date(t.at),
    maybe_at: typeof t.maybe_at === 'number' ? new Date(t.maybe_at) : t.maybe_at,
  };
}

const KEYS = ['plain', 'a"b\\c,{x} y', 'NULL', 'é😀', ''];

/**
 * The batch write (rows as one jsonb array, typed by the table's row type)
 * against real Postgres: every value lands exactly as knex's multi-row
 * upsert wrote it, new and existing rows, and inserts that assumed a key was
 * new report KeyExists instead of overwriting a row they did not read.
 */
describe('read model store: batch write values (Postgres)', () => {
  let db: Knex;
  let schema: string;
  let plan: { things: Thing[]; log: LogRow[]; unlooked?: boolean } = { things: [], log: [] };
  let projection: Projection;
  let offset = 0n;

  const batch = (): DecodedRecord[] => [
    {
      topic: 't',
      partition: 0,
      offset: offset++,
      key: 'P1',
      timestamp: 0,
      event: registered('P1', 'Probe', 'Row', `probe-${offset}`, at(8)),
    },
  ];

  async function rowsText(table: string): Promise<string[]> {
    const r = await db.raw<{ rows: { t: string }[] }>(`select t::text from ??.?? t order by id`, [
      schema,
      table,
    ]);
    return r.rows.map((x) => x.t);
  }

  async function writeBoth(
    things: Thing[],
    careful: boolean,
    o: { bulk?: boolean; unlooked?: boolean } = {},
  ): Promise<void> {
    plan = { things, log: [], ...(o.unlooked ? { unlooked: true } : {}) };
    await db.transaction((trx) =>
      projection.apply(trx, schema, batch(), { careful, ...(o.bulk ? { bulk: true } : {}) }),
    );
    await db
      .withSchema(schema)
      .into('things_before')
      .insert(things.map(previousWrite))
      .onConflict('id')
      .merge();
  }

  beforeAll(async () => {
    db = createDb(endpoints().databaseUrl);
    schema = uniqueId('storewrite').toLowerCase();
    projection = readModelProjection<Tables>({
      name: 'probe',
      topics: ['t'],
      tables: {
        things: { key: 'id', jsonColumns: ['doc', 'tags'], timeColumns: ['at', 'maybe_at'] },
        log: { key: 'id', appendOnly: true },
      },
      needs: () => (plan.unlooked ? {} : { things: plan.things.map((t) => t.id) }),
      evolve: (draft) => {
        for (const t of plan.things) draft.put('things', t.id, t);
        for (const l of plan.log) draft.put('log', l.id, l);
      },
      migrations: [
        {
          name: '0001_probe',
          async up(knex, s) {
            for (const name of ['things', 'things_before']) {
              await knex.schema.withSchema(s).createTable(name, (t) => {
                t.text('id').primary();
                t.jsonb('doc');
                t.jsonb('tags').notNullable();
                t.timestamp('at', { useTz: true }).notNullable();
                t.timestamp('maybe_at', { useTz: true });
                t.boolean('flag');
                t.integer('n');
                t.text('label');
              });
            }
            await knex.schema.withSchema(s).createTable('log', (t) => {
              t.text('id').primary();
              t.text('note').notNullable();
            });
            // Which statement inserted into things: a COPY or an INSERT (top-level query text).
            await knex.raw(`create table ??.writes (q text not null)`, [s]);
            await knex.raw(
              `create function ??.note_write() returns trigger language plpgsql as
               $$ begin insert into ${s}.writes values (split_part(lower(ltrim(current_query())), ' ', 1)); return null; end $$`,
              [s],
            );
            await knex.raw(
              `create trigger note_write after insert on ??.things for each statement execute function ??.note_write()`,
              [s, s],
            );
          },
        },
      ],
    });
    await migrateProjection(db, schema, projection);
  });
  afterAll(async () => {
    await dropSchema(db, schema);
    await db.destroy();
  });

  const base = (id: string, i: number): Thing => ({
    id,
    doc: { nested: { a: [1, 'two', null, true] }, quote: 'say "hi"\\', i },
    tags: ['x', 'y z', '{a,b}'],
    at: at(9, i),
    maybe_at: null,
    flag: i % 2 === 0,
    n: i === 0 ? 0 : -i * 1000,
    label: i === 1 ? null : `tab\tnew\nline ' " é`,
  });
  /** Every kind of value the write must carry: odd keys, JSON null, absent columns, times Postgres spells apart. */
  const firstThings = (): Thing[] => [
    ...KEYS.map(base),
    { ...base('json-null', 5), doc: null, tags: [] },
    { ...base('no-doc', 6), doc: undefined, tags: 'a string' },
    { ...base('scalars', 7), doc: 42.5, tags: { not: 'an array' }, n: 2147483647, flag: null },
    // 1969, the epoch itself, an odd millisecond, and years Postgres spells differently.
    { ...base('t-1969', 8), at: -1, maybe_at: 0 },
    { ...base('t-ms', 9), at: 1_700_000_000_123, maybe_at: 1_700_000_000_001 },
    {
      ...base('t-edge', 10),
      at: Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      maybe_at: Date.parse('0001-01-01T00:00:00Z'),
    },
    {
      ...base('t-far', 11),
      at: Date.UTC(10_000, 0, 1, 0, 0, 0, 1),
      maybe_at: Date.parse('-000001-06-30T12:00:00.5Z'),
    },
  ];

  it('writes new and existing rows exactly as the multi-row upsert did', async () => {
    const first = firstThings();
    // Absent when read: written as new rows.
    await writeBoth(first, false);
    expect(await rowsText('things')).toEqual(await rowsText('things_before'));
    expect(await rowsText('things')).toHaveLength(first.length);

    // Present when read: updated, including to JSON null, an absent column and SQL nulls.
    const second = first.map((t, i) => ({
      ...t,
      doc: i % 3 === 0 ? null : i % 3 === 1 ? [t.doc, t.doc] : undefined,
      tags: [...KEYS],
      at: t.at + 1,
      maybe_at: i % 2 === 0 ? t.at : null,
      label: i % 2 === 0 ? null : 'changed',
    }));
    await writeBoth(second, false);
    expect(await rowsText('things')).toEqual(await rowsText('things_before'));

    // The careful path (upsert everything) writes the same.
    const third = second.map((t) => ({ ...t, n: t.n === null ? 7 : null, flag: !t.flag }));
    await writeBoth(third, true);
    expect(await rowsText('things')).toEqual(await rowsText('things_before'));

    // No JSON null in the batch: the single set-returning form, jsonb columns included.
    const fourth = third.map((t, i) => ({ ...t, doc: i % 2 === 0 ? { v: t.id } : 'text' }));
    await writeBoth(fourth, false);
    expect(await rowsText('things')).toEqual(await rowsText('things_before'));

    // jsonb arrays stay jsonb arrays.
    const kinds = await db.raw<{ rows: { k: string }[] }>(
      `select distinct jsonb_typeof(tags) as k from ??.things`,
      [schema],
    );
    expect(kinds.rows).toEqual([{ k: 'array' }]);
  });

  /** The kinds of statement (copy, insert) that inserted into things since the last call. */
  async function writes(): Promise<string[]> {
    const r = await db.raw<{ rows: { q: string }[] }>(`delete from ??.writes returning q`, [schema]);
    return [...new Set(r.rows.map((x) => x.q))].sort();
  }

  it('the bulk path (binary COPY of new rows) writes exactly what the statements write', async () => {
    await db.raw('truncate ??.things, ??.things_before', [schema, schema]);
    await writes();
    const first = firstThings();
    // New rows, looked for and absent: COPY.
    await writeBoth(first, false, { bulk: true });
    expect(await rowsText('things')).toEqual(await rowsText('things_before'));
    expect(await writes()).toEqual(['copy']);
    // Existing rows: upserted as on the per-event path.
    const second = first.map((t, i) => ({
      ...t,
      doc: i % 2 ? null : undefined,
      label: 'second',
      at: t.at + 5,
    }));
    await writeBoth(second, false, { bulk: true });
    expect(await rowsText('things')).toEqual(await rowsText('things_before'));
    expect(await writes()).toEqual(['insert']);
    // Rows written without being looked for: probed, the new ones copied, the others upserted.
    const third = [
      ...second.slice(0, 3).map((t) => ({ ...t, label: 'third' })),
      ...['unlooked-1', 'unlooked-2'].map((id, i) => base(id, i)),
    ];
    await writeBoth(third, false, { bulk: true, unlooked: true });
    expect(await rowsText('things')).toEqual(await rowsText('things_before'));
    expect(await rowsText('things')).toHaveLength(first.length + 2);
    expect(await writes()).toEqual(['copy', 'insert']);
  });

  it('on the bulk path too, an append-only row that exists after all is KeyExists', async () => {
    plan = { things: [], log: [{ id: 'L-bulk', note: 'first' }] };
    await db.transaction((trx) => projection.apply(trx, schema, batch(), { careful: false, bulk: true }));
    await expect(
      db.transaction((trx) => projection.apply(trx, schema, batch(), { careful: false, bulk: true })),
    ).rejects.toBeInstanceOf(KeyExists);
  });

  it('an append-only row that exists after all is KeyExists, and the careful retry upserts it', async () => {
    plan = { things: [], log: [{ id: 'L1', note: 'first' }] };
    await db.transaction((trx) => projection.apply(trx, schema, batch(), { careful: false }));
    plan = { things: [], log: [{ id: 'L1', note: 'again' }] };
    await expect(
      db.transaction((trx) => projection.apply(trx, schema, batch(), { careful: false })),
    ).rejects.toBeInstanceOf(KeyExists);
    await db.transaction((trx) => projection.apply(trx, schema, batch(), { careful: true }));
    expect(await rowsText('log')).toEqual(['(L-bulk,first)', '(L1,again)']);
  });

  it('a row created by another transaction after this batch read it is KeyExists, not overwritten', async () => {
    const row: Thing = { id: 'raced', tags: [], at: 0, maybe_at: null, flag: true, n: 1, label: 'mine' };
    let commitOther!: () => void;
    const otherCommitted = new Promise<void>((r) => (commitOther = r));
    const other = db.transaction(async (trx) => {
      await trx
        .withSchema(schema)
        .into('things')
        .insert(previousWrite({ ...row, label: 'theirs' }));
      await otherCommitted;
    });
    // Inserted but not committed: this batch does not see it when reading.
    await eventually(async () => {
      const r = await db
        .withSchema(schema)
        .from('things')
        .where({ id: 'raced' })
        .count<{ n: string }[]>({ n: '*' });
      return r[0]?.n === '0' ? true : undefined;
    });
    plan = { things: [row], log: [] };
    const mine = db.transaction((trx) => projection.apply(trx, schema, batch(), { careful: false }));
    const settled = mine.then(
      () => 'applied',
      (err: unknown) => err,
    );
    // Wait until this batch's insert waits on the other's uncommitted key, then commit that.
    await eventually(async () => {
      const r = await db.raw<{ rows: { n: number }[] }>(
        `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like ?`,
        [`%${schema}%things%`],
      );
      return (r.rows[0]?.n ?? 0) > 0 ? true : undefined;
    });
    commitOther();
    await other;
    expect(await settled).toBeInstanceOf(KeyExists);
    const kept = await db.withSchema(schema).from('things').where({ id: 'raced' }).select('label');
    expect(kept).toEqual([{ label: 'theirs' }]);
  });

  it('sqlArray round-trips any text as Postgres reads it', async () => {
    const values = [...KEYS, 'back\\\\slash', '"', ' ', '\t\n'];
    const r = await db.raw<{ rows: { a: string[] }[] }>('select ?::text[] as a', [sqlArray(values)]);
    expect(r.rows[0]?.a).toEqual(values);
  });
});
