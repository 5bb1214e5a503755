// PostgreSQL's own ceiling for a read model: binary COPY of the rows a
// projection wrote into identical empty tables (same columns, constraints and
// indexes). A projection that applies events at a good fraction of this is
// bounded by Postgres, not by the hub. The rows are exported with psql
// (untimed); the timed load streams each file over one open connection
// (pg-copy-streams), because starting psql and connecting cost 130-160 ms
// per table here: most of a small slice's load (10,000 events: 1.0-4.8 s
// through psql, 0.1-1.1 s streamed, on a busy machine).
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { medianBy } from './lib.js';

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
  /** Median over the runs. */
  seconds: number;
  rowsPerSec: number;
  /** Seconds of each run, in order. */
  runs: number[];
}

/**
 * Copies every listed table of `schema` (all its tables when omitted) into
 * empty twins and times the loads; `repeats` times (fresh twins each time),
 * the median is the limit. The replay scenario asks for one load per replay
 * slice and takes the median over its slice pairs instead.
 */
export async function measureCopyLimit(
  url: string,
  schema: string,
  tables?: string[],
  repeats = 3,
): Promise<CopyLimit> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const dir = await mkdtemp(join(tmpdir(), 'hub-copy-'));
  const twin = `${schema}_copylimit`;
  let rows = 0;
  const runs: number[] = [];
  try {
    const names =
      tables ??
      (
        await c.query<{ t: string }>(
          `select table_name as t from information_schema.tables where table_schema = $1 and table_type = 'BASE TABLE'`,
          [schema],
        )
      ).rows.map((r) => r.t);
    for (const t of names) {
      await psql(url, `\\copy ${q(schema)}.${q(t)} to '${join(dir, `${t}.bin`)}' with (format binary)`);
      rows += Number(
        (await c.query<{ n: string }>(`select count(*) as n from ${q(schema)}.${q(t)}`)).rows[0]?.n,
      );
    }
    for (let i = 0; i < repeats; i++) {
      await c.query(`drop schema if exists ${q(twin)} cascade; create schema ${q(twin)}`);
      let ns = 0n;
      for (const t of names) {
        await c.query(`create table ${q(twin)}.${q(t)} (like ${q(schema)}.${q(t)} including all)`);
        const t0 = process.hrtime.bigint();
        await pipeline(
          createReadStream(join(dir, `${t}.bin`)),
          c.query(copyFrom(`copy ${q(twin)}.${q(t)} from stdin with (format binary)`)),
        );
        ns += process.hrtime.bigint() - t0;
      }
      runs.push(Number(ns) / 1e9);
    }
  } finally {
    await c.query(`drop schema if exists ${q(twin)} cascade`).catch(() => undefined);
    await c.end();
    await rm(dir, { recursive: true, force: true });
  }
  const seconds = medianBy(runs, (x) => x) ?? Number.NaN;
  return { rows, seconds, rowsPerSec: rows / seconds, runs };
}
