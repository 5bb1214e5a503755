import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCopyRows, NotCopyable, type CopyTarget } from './copy.js';

const TYPES = new Map([
  ['id', 2950],
  ['name', 25],
  ['n4', 23],
  ['n8', 20],
  ['n2', 21],
  ['ok', 16],
  ['at', 1184],
  ['doc', 3802],
  ['bin', 17],
  ['f', 701],
]);
const target: CopyTarget = { schema: 's', table: 't', types: TYPES, jsonNullColumns: new Set(['doc']) };
const bytes = (rows: Record<string, unknown>[], cols = ['id', 'name']) =>
  Buffer.concat(encodeCopyRows(target, cols, rows).data);

/** Reads COPY binary back into fields (null or the raw bytes), as Postgres' COPY would split it. */
function fieldsOf(data: Buffer): (Buffer | null)[][] {
  expect(data.subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0');
  let at = 19;
  const rows: (Buffer | null)[][] = [];
  for (;;) {
    const n = data.readInt16BE(at);
    at += 2;
    if (n === -1) break;
    const row: (Buffer | null)[] = [];
    for (let i = 0; i < n; i++) {
      const len = data.readInt32BE(at);
      at += 4;
      row.push(len === -1 ? null : data.subarray(at, at + len));
      if (len > 0) at += len;
    }
    rows.push(row);
  }
  expect(at).toBe(data.length);
  return rows;
}

describe('binary COPY encoding', () => {
  it('given rows, when encoded, then header, one tuple per row and the trailer frame them', () => {
    const rows = fieldsOf(bytes([{ id: '0190d6c8-7c5e-7000-8000-000000000001', name: 'é😀' }, { id: null }]));
    expect(rows).toHaveLength(2);
    expect(rows[0]?.[0]?.toString('hex')).toBe('0190d6c87c5e70008000000000000001');
    expect(rows[0]?.[1]?.toString('utf8')).toBe('é😀');
    // A column a row lacks is NULL, as in a multi-row insert listing it.
    expect(rows[1]).toEqual([null, null]);
  });

  it('given epoch ms, when encoded as timestamptz, then microseconds since 2000-01-01 UTC, truncated like Date', () => {
    const [[at]] = fieldsOf(bytes([{ at: Date.UTC(2000, 0, 1, 0, 0, 1) + 0.9 }], ['at'])) as [[Buffer]];
    expect(at.readBigInt64BE()).toBe(1_000_000n);
    const [[before]] = fieldsOf(bytes([{ at: new Date(Date.UTC(1999, 11, 31, 23, 59, 59)) }], ['at'])) as [
      [Buffer],
    ];
    expect(before.readBigInt64BE()).toBe(-1_000_000n);
  });

  it('given a JSON null in a jsonb column, then the jsonb value null; undefined is SQL NULL', () => {
    const [doc, none] = fieldsOf(bytes([{ doc: null }, {}], ['doc']));
    expect(doc?.[0]?.toString('latin1')).toBe('\x01null');
    expect(none?.[0]).toBeNull();
  });

  it.each([
    ['a number in a text column', { name: 5 }, 'name'],
    ['a string in a timestamptz column', { at: '2024-01-01' }, 'at'],
    ['not a uuid', { id: 'P1' }, 'id'],
    ['a fraction in an integer column', { n4: 1.5 }, 'n4'],
    ['an int2 out of range', { n2: 40_000 }, 'n2'],
    ['an int4 out of range', { n4: 2 ** 31 }, 'n4'],
    ['a string in a boolean column', { ok: 'true' }, 'ok'],
    ['a string in a bytea column', { bin: '\\x00' }, 'bin'],
    ['a column the table does not have', { nope: 1 }, 'nope'],
  ])('given %s, then NotCopyable before anything is sent', (_what, row, col) => {
    expect(() => encodeCopyRows(target, [col], [row])).toThrow(NotCopyable);
  });

  it('property: integers, booleans, floats, text and bytes read back as written', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            n8: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
            n4: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
            n2: fc.integer({ min: -32768, max: 32767 }),
            ok: fc.boolean(),
            f: fc.double(),
            name: fc.string({ unit: 'binary' }),
            bin: fc.uint8Array(),
          }),
          { maxLength: 20 },
        ),
        (rows) => {
          const cols = ['n8', 'n4', 'n2', 'ok', 'f', 'name', 'bin'];
          const back = fieldsOf(bytes(rows, cols));
          expect(back).toHaveLength(rows.length);
          back.forEach((f, i) => {
            const r = rows[i]!;
            expect(f[0]?.readBigInt64BE()).toBe(r.n8);
            expect(f[1]?.readInt32BE()).toBe(r.n4);
            expect(f[2]?.readInt16BE()).toBe(r.n2);
            expect(f[3]?.[0]).toBe(r.ok ? 1 : 0);
            expect(Object.is(f[4]?.readDoubleBE(), r.f)).toBe(true);
            expect(f[5]?.toString('utf8')).toBe(Buffer.from(r.name, 'utf8').toString('utf8'));
            expect(new Uint8Array(f[6] ?? [])).toEqual(r.bin);
          });
        },
      ),
    );
  });

  it('given more than a chunk of data, then the chunks concatenate to the same stream', () => {
    const big = 'x'.repeat(700_000);
    const rows = fieldsOf(bytes([{ name: big }, { name: big }, { name: 'end' }], ['name']));
    expect(rows.map((r) => r[0]?.length)).toEqual([700_000, 700_000, 3]);
  });
});
