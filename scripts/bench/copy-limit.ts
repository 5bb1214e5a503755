// PostgreSQL's own ceiling for a read model: binary COPY of the rows a
// projection wrote into identical empty tables (same columns, constraints and
// indexes), through psql. A projection that applies events at a good
// fraction of this is bounded by Postgres, not by the hub.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

function psql(url: string, command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('psql', [url, '-v', 'ON_ERROR_STOP=1', '-q', '-c', command], (err, _o, stderr) =>
      err ? reject(new Error(`psql: ${stderr || err.message}`)) : resolve(),
    );
  });
}

const q = (s: string) => `"${s.replace(/"/g, '""')}"`;

export interface CopyLimit {
  rows: number;
  seconds: number;
  rowsPerSec: number;
}

/** Copies every listed table of `schema` (all its tables when omitted) into an empty twin and times the loads. */
export async function measureCopyLimit(url: string, schema: string, tables?: string[]): Promise<CopyLimit> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const dir = await mkdtemp(join(tmpdir(), 'hub-copy-'));
  const twin = `${schema}_copylimit`;
  let rows = 0;
  let ns = 0n;
  try {
    const names =
      tables ??
      (
        await c.query<{ t: string }>(
          `select table_name as t from information_schema.tables where table_schema = $1 and table_type = 'BASE TABLE'`,
          [schema],
        )
      ).rows.map((r) => r.t);
    await c.query(`drop schema if exists ${q(twin)} cascade; create schema ${q(twin)}`);
    for (const t of names) {
      const file = join(dir, `${t}.bin`);
      await psql(url, `\\copy ${q(schema)}.${q(t)} to '${file}' with (format binary)`);
      await c.query(`create table ${q(twin)}.${q(t)} (like ${q(schema)}.${q(t)} including all)`);
      const n = Number(
        (await c.query<{ n: string }>(`select count(*) as n from ${q(schema)}.${q(t)}`)).rows[0]?.n,
      );
      const t0 = process.hrtime.bigint();
      await psql(url, `\\copy ${q(twin)}.${q(t)} from '${file}' with (format binary)`);
      ns += process.hrtime.bigint() - t0;
      rows += n;
    }
  } finally {
    await c.query(`drop schema if exists ${q(twin)} cascade`).catch(() => undefined);
    await c.end();
    await rm(dir, { recursive: true, force: true });
  }
  const seconds = Number(ns) / 1e9;
  return { rows, seconds, rowsPerSec: rows / seconds };
}
