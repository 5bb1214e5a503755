/**
 * Rows into a table with `COPY … FROM STDIN (FORMAT binary)` (pg-copy-streams
 * carries the protocol), for bulk loads such as a projection catching up:
 * Postgres then neither parses SQL text per row nor JSON arrays of rows, and
 * fixed-width values (ids, integers, times) arrive in their storage form.
 *
 * Only values whose binary form is unambiguous are encoded; anything else
 * (a string in a timestamptz column, whose meaning depends on the session's
 * time zone; a number in a text column, whose text form Postgres and
 * JavaScript spell differently) makes `encodeCopyRows` throw NotCopyable
 * before anything is sent, and the caller writes those rows with an ordinary
 * statement. The rows a COPY writes are therefore exactly the rows an
 * insert of the same values writes.
 */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Knex } from 'knex';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { assertSqlIdentifier } from './index.js';

/** A value the binary encoder will not guess at (see the module comment). */
export class NotCopyable extends Error {
  constructor(column: string, why: string) {
    super(`column ${column}: ${why}`);
    this.name = 'NotCopyable';
  }
}

/** Postgres type oids the encoder knows (pg_type.oid). */
const OID = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  json: 114,
  float4: 700,
  float8: 701,
  bpchar: 1042,
  varchar: 1043,
  timestamptz: 1184,
  uuid: 2950,
  jsonb: 3802,
} as const;

/** Columns of every table in a schema: name → type oid. */
export type SchemaColumns = Map<string, Map<string, number>>;

export async function schemaColumns(db: Knex | Knex.Transaction, schema: string): Promise<SchemaColumns> {
  const { rows } = await db.raw<{ rows: { table: string; column: string; oid: number }[] }>(
    `select c.relname as "table", a.attname as "column", a.atttypid::int as oid
       from pg_class c join pg_attribute a on a.attrelid = c.oid
      where c.relnamespace = to_regnamespace(?) and c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped`,
    [schema],
  );
  const out: SchemaColumns = new Map();
  for (const r of rows) {
    let t = out.get(r.table);
    if (!t) out.set(r.table, (t = new Map<string, number>()));
    t.set(r.column, r.oid);
  }
  return out;
}

/** Microseconds between the Unix epoch and Postgres' (2000-01-01 UTC). */
const PG_EPOCH_MS = 946_684_800_000;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const INTEGER = /^-?\d{1,19}$/;

/** A growing buffer of COPY data, handed out in chunks of about CHUNK bytes. */
class CopyWriter {
  private static readonly CHUNK = 1 << 20;
  readonly chunks: Buffer[] = [];
  private buf = Buffer.allocUnsafe(CopyWriter.CHUNK);
  private at = 0;

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    if (this.at > 0) this.chunks.push(this.buf.subarray(0, this.at));
    this.buf = Buffer.allocUnsafe(Math.max(CopyWriter.CHUNK, n));
    this.at = 0;
  }

  int16(v: number): void {
    this.room(2);
    this.at = this.buf.writeInt16BE(v, this.at);
  }

  int32(v: number): void {
    this.room(4);
    this.at = this.buf.writeInt32BE(v, this.at);
  }

  int64(v: bigint): void {
    this.room(8);
    this.at = this.buf.writeBigInt64BE(v, this.at);
  }

  float(v: number, bytes: 4 | 8): void {
    this.room(bytes);
    this.at = bytes === 4 ? this.buf.writeFloatBE(v, this.at) : this.buf.writeDoubleBE(v, this.at);
  }

  /**
   * A length-prefixed text field, optionally after a version byte (jsonb).
   * Room for the longest UTF-8 form (3 bytes per UTF-16 unit) is made first,
   * so the string is encoded once and its length written after it.
   */
  text(s: string, versionByte?: number): void {
    const extra = versionByte === undefined ? 0 : 1;
    this.room(4 + extra + s.length * 3);
    const lengthAt = this.at;
    this.at += 4;
    if (versionByte !== undefined) this.at = this.buf.writeUInt8(versionByte, this.at);
    const n = this.buf.write(s, this.at, 'utf8');
    this.at += n;
    this.buf.writeInt32BE(n + extra, lengthAt);
  }

  byte(v: number): void {
    this.room(1);
    this.at = this.buf.writeUInt8(v, this.at);
  }

  /** A uuid field from its text (checked by the caller): hex written straight into the buffer. */
  uuid(s: string): void {
    this.room(20);
    this.at = this.buf.writeInt32BE(16, this.at);
    const hex = s.length === 32 ? s : s.replace(/-/g, '');
    this.at += this.buf.write(hex, this.at, 16, 'hex');
  }

  bytes(b: Uint8Array): void {
    this.room(4 + b.length);
    this.at = this.buf.writeInt32BE(b.length, this.at);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  raw(b: Buffer): void {
    this.room(b.length);
    b.copy(this.buf, this.at);
    this.at += b.length;
  }

  finish(): Buffer[] {
    if (this.at > 0) this.chunks.push(this.buf.subarray(0, this.at));
    this.at = 0;
    return this.chunks;
  }
}

const HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);

const INT_MAX = { 2: 0x7fff, 4: 0x7fffffff } as const;

/** An int2/int4 value: small integers stay numbers (no BigInt per field on the hot path). */
function smallInteger(column: string, v: unknown, bytes: 2 | 4): number {
  const n = typeof v === 'bigint' || typeof v === 'string' ? Number(integer(column, v)) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new NotCopyable(column, 'not an integer');
  if (n > INT_MAX[bytes] || n < -INT_MAX[bytes] - 1) throw new NotCopyable(column, 'integer out of range');
  return n;
}

const INT8_MAX = (1n << 63n) - 1n;

function integer(column: string, v: unknown): bigint {
  let n: bigint;
  if (typeof v === 'bigint') n = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
  else if (typeof v === 'string' && INTEGER.test(v)) n = BigInt(v);
  else throw new NotCopyable(column, 'not an integer');
  if (n > INT8_MAX || n < -INT8_MAX - 1n) throw new NotCopyable(column, 'integer out of range');
  return n;
}

/** One field in its binary form; a value that has no unambiguous one throws NotCopyable. */
function encodeField(w: CopyWriter, column: string, oid: number, v: unknown, jsonNull: boolean): void {
  if (v === undefined || (v === null && !jsonNull)) return w.int32(-1);
  switch (oid) {
    case OID.text:
    case OID.varchar:
    case OID.bpchar:
      if (typeof v !== 'string') throw new NotCopyable(column, 'text from a non-string');
      return w.text(v);
    case OID.jsonb:
      return w.text(JSON.stringify(v), 1);
    case OID.json:
      return w.text(JSON.stringify(v));
    case OID.int2:
      w.int32(2);
      return w.int16(smallInteger(column, v, 2));
    case OID.int4:
      w.int32(4);
      return w.int32(smallInteger(column, v, 4));
    case OID.int8:
      w.int32(8);
      return w.int64(integer(column, v));
    case OID.bool:
      if (typeof v !== 'boolean') throw new NotCopyable(column, 'boolean from a non-boolean');
      w.int32(1);
      return w.byte(v ? 1 : 0);
    case OID.float4:
    case OID.float8:
      if (typeof v !== 'number') throw new NotCopyable(column, 'float from a non-number');
      w.int32(oid === OID.float4 ? 4 : 8);
      return w.float(v, oid === OID.float4 ? 4 : 8);
    case OID.timestamptz: {
      // Epoch ms (the stores' time columns) or a Date; a string's meaning depends on the session.
      const ms = v instanceof Date ? v.getTime() : v;
      if (typeof ms !== 'number' || !Number.isFinite(ms))
        throw new NotCopyable(column, 'timestamptz from neither epoch ms nor a Date');
      w.int32(8);
      // As new Date(ms) would: whole milliseconds, truncated toward zero.
      return w.int64(BigInt(Math.trunc(ms) - PG_EPOCH_MS) * 1000n);
    }
    case OID.uuid: {
      if (typeof v !== 'string' || !UUID.test(v)) throw new NotCopyable(column, 'not a uuid');
      return w.uuid(v);
    }
    case OID.bytea:
      if (!(v instanceof Uint8Array)) throw new NotCopyable(column, 'bytea from a non-buffer');
      return w.bytes(v);
    default:
      throw new NotCopyable(column, `type oid ${oid} is not encoded`);
  }
}

export interface CopyTarget {
  schema: string;
  table: string;
  /** Column name → type oid, as schemaColumns reads them. */
  types: ReadonlyMap<string, number>;
  /** Columns in which a JS null is the JSON value null, not SQL NULL (as jsonb_populate_record reads them). */
  jsonNullColumns?: ReadonlySet<string>;
}

/**
 * The COPY statement and its binary data for these rows and columns, or
 * NotCopyable. Columns absent from a row are NULL, as in a multi-row
 * insert that lists them.
 */
export function encodeCopyRows(
  target: CopyTarget,
  columns: readonly string[],
  rows: readonly Record<string, unknown>[],
): { sql: string; data: Buffer[] } {
  const fields = columns.map((name) => {
    const oid = target.types.get(name);
    if (oid === undefined) throw new NotCopyable(name, `no such column in ${target.table}`);
    return { name, oid, jsonNull: target.jsonNullColumns?.has(name) ?? false };
  });
  const w = new CopyWriter();
  w.raw(HEADER);
  for (const row of rows) {
    w.int16(fields.length);
    for (const f of fields) encodeField(w, f.name, f.oid, row[f.name], f.jsonNull);
  }
  w.int16(-1);
  const q = (s: string) => `"${assertSqlIdentifier(s)}"`;
  const sql = `copy ${q(target.schema)}.${q(target.table)} (${columns.map(q).join(', ')}) from stdin (format binary)`;
  return { sql, data: w.finish() };
}

/**
 * Sends encoded rows on the transaction's own connection (so they commit
 * or roll back with it). Answers the number of rows Postgres loaded.
 */
export async function sendCopy(
  trx: Knex.Transaction,
  copy: { sql: string; data: Buffer[] },
): Promise<number> {
  // Inside a transaction knex hands out the transaction's connection (and its release is a no-op).
  const client = trx.client as { acquireConnection(): Promise<unknown> };
  const conn = (await client.acquireConnection()) as pg.ClientBase;
  const stream = conn.query(copyFrom(copy.sql));
  await pipeline(Readable.from(copy.data), stream);
  return stream.rowCount;
}
