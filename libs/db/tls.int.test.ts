import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { giveToPostgres, pgBin, runPg } from '../../test/support/private-postgres.js';
import { freePort } from '../../test/support/processes.js';
import { ensureCa, issueCertificate } from '../stack/certs.js';
import { createDb, type Knex } from './index.js';

/**
 * Postgres with TLS and SCRAM, as a hospital runs it: a PRIVATE instance
 * (initdb + pg_ctl on a free port in a temp dir; the shared server runs
 * trust/ssl off and is not touched), hostssl + scram-sha-256 only, its
 * certificate issued by a CA made here. The hub's client connects with
 * DATABASE_URL `sslmode=verify-full&sslrootcert=<ca>` and the password from
 * DATABASE_PASSWORD_FILE.
 */
const bin = pgBin();
const PASSWORD = 'correct horse % battery';
const pg = (cmd: string, args: string[]) => runPg(bin ?? '', cmd, args);

describe.skipIf(!bin)('Postgres over TLS with SCRAM (private instance)', () => {
  let dir: string;
  let port: number;
  let caFile: string;
  let otherCaFile: string;
  let passwordFile: string;
  const opened: Knex[] = [];
  const data = () => join(dir, 'data');
  const open = (url: string, file?: string) => {
    const db = createDb(url, { pool: { min: 0, max: 1 }, passwordFile: file });
    opened.push(db);
    return db;
  };
  const url = (host: string, query: string) => `postgres://postgres@${host}:${port}/postgres?${query}`;
  /** The error of a first query through a fresh pool: SQLSTATE (code) or the TLS message. */
  const refusal = async (u: string, file: string) => {
    const err: unknown = await open(u, file)
      .raw('select 1')
      .catch((e: unknown) => e);
    const e = err as { code?: string; message?: string };
    return { code: e.code, message: String(e.message) };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hub-pgtls-'));
    giveToPostgres(dir);
    port = await freePort();
    const ca = await ensureCa(join(dir, 'ca'));
    caFile = ca.certFile;
    otherCaFile = (await ensureCa(join(dir, 'other-ca'))).certFile;
    const server = await issueCertificate(ca, join(dir, 'certs'), 'postgres', {
      hosts: ['127.0.0.1'],
      usage: 'server',
    });
    passwordFile = join(dir, 'client-password');
    writeFileSync(passwordFile, `${PASSWORD}\n`);
    const initPw = join(dir, 'init-password');
    writeFileSync(initPw, PASSWORD);
    giveToPostgres(initPw);
    pg('initdb', ['-D', data(), '-U', 'postgres', '--no-sync', '--auth-local=trust', `--pwfile=${initPw}`]);
    // Only TLS with SCRAM over TCP; a plaintext connection is rejected outright.
    writeFileSync(
      join(data(), 'pg_hba.conf'),
      'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 127.0.0.1/32 reject\n',
    );
    for (const [from, to] of [
      [server.certFile, 'server.crt'],
      [server.keyFile, 'server.key'],
    ] as const) {
      copyFileSync(from, join(data(), to));
      giveToPostgres(join(data(), to), 0o600);
    }
    pg('pg_ctl', [
      '-D',
      data(),
      '-l',
      join(dir, 'log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on -c password_encryption=scram-sha-256`,
      '-w',
      'start',
    ]);
  }, 120_000);

  afterAll(async () => {
    for (const db of opened) await db.destroy().catch(() => undefined);
    try {
      if (dir) pg('pg_ctl', ['-D', data(), '-m', 'fast', '-w', 'stop']);
    } catch {
      // never started
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('given verify-full with the CA and the password from a file, when querying, then TLS and SCRAM are in use', async () => {
    const db = open(url('127.0.0.1', `sslmode=verify-full&sslrootcert=${caFile}`), passwordFile);
    const ssl = await db.raw<{ rows: { ssl: boolean; version: string }[] }>(
      'select ssl, version from pg_stat_ssl where pid = pg_backend_pid()',
    );
    expect(ssl.rows[0]?.ssl).toBe(true);
    expect(ssl.rows[0]?.version).toMatch(/^TLSv1\.[23]$/);
    const stored = await db.raw<{ rows: { scram: boolean }[] }>(
      "select rolpassword like 'SCRAM-SHA-256$%' as scram from pg_authid where rolname = 'postgres'",
    );
    expect(stored.rows[0]?.scram).toBe(true);
  });

  it('given the right CA but a wrong password, when connecting, then SCRAM authentication fails (28P01)', async () => {
    const wrong = join(dir, 'wrong-password');
    writeFileSync(wrong, 'not it');
    const err = await refusal(url('127.0.0.1', `sslmode=verify-full&sslrootcert=${caFile}`), wrong);
    expect(err.code).toBe('28P01');
  });

  it('given no TLS, when connecting with the right password, then the server rejects the connection (28000)', async () => {
    const err = await refusal(url('127.0.0.1', 'sslmode=disable'), passwordFile);
    expect(err.code).toBe('28000');
  });

  it('given another CA, when connecting with verify-full, then the server certificate is not trusted', async () => {
    const err = await refusal(
      url('127.0.0.1', `sslmode=verify-full&sslrootcert=${otherCaFile}`),
      passwordFile,
    );
    expect(err.message).toMatch(/certificate/i);
  });

  it('given sslmode=require and no CA, when connecting, then node-pg still verifies the chain (require acts as verify-full)', async () => {
    const err = await refusal(url('127.0.0.1', 'sslmode=require'), passwordFile);
    expect(err.message).toMatch(/certificate/i);
  });

  it('given a host name the certificate does not name, when connecting with verify-full, then it is refused', async () => {
    const err = await refusal(url('localhost', `sslmode=verify-full&sslrootcert=${caFile}`), passwordFile);
    expect(err.message).toMatch(/altnames|Hostname|certificate/i);
  });
});
