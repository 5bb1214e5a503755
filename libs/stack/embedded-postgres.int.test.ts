import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../test/support/processes.js';
import { createDb, toDbError, type Knex } from '../db/index.js';
import { HubError } from '../errors/index.js';
import { stackConfig, type StackConfig } from './config.js';
import { embeddedRunning, stopEmbedded } from './embedded-postgres.js';
import { ensureDatabase, ensurePostgres } from './postgres.js';
import { isAlive } from './process.js';

/**
 * The project's own PostgreSQL, as `hub up` starts it on a machine without
 * one: a PRIVATE cluster on a free port (where nothing answers) with its data
 * under .hub/<test id>, never the shared server. It runs as the postgres
 * system user when the tests run as root.
 */
describe('embedded PostgreSQL (private cluster, SCRAM)', () => {
  let cfg: StackConfig;
  let dir: string;
  let pid: number;
  let url: string;
  const opened: Knex[] = [];
  const lines: string[] = [];
  const log = (m: string) => lines.push(m);
  const open = (u: string) => {
    const db = createDb(u, { pool: { min: 0, max: 1 } });
    opened.push(db);
    return db;
  };
  /** The pools' idle connections would count as another user of the server and keep it up. */
  const closeAll = async () => {
    for (const db of opened.splice(0)) await db.destroy().catch(() => undefined);
  };
  const withPassword = (u: string, password: string | null) => {
    const x = new URL(u);
    x.password = password === null ? '' : encodeURIComponent(password);
    return x.toString();
  };

  beforeAll(async () => {
    dir = join(stackConfig('test', {}).repoDir, '.hub', `pg-${randomUUID().slice(0, 8)}`);
    // Only what this test sets: the shared stack's DATABASE_URL must not leak in.
    cfg = stackConfig('test', { PG_PORT: String(await freePort()), HUB_POSTGRES_DIR: dir });
  });

  afterAll(async () => {
    await closeAll();
    await stopEmbedded(cfg, log, { evenIfUsed: true }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('given nothing answers on the port and no DATABASE_URL, when the stack ensures Postgres, then it initialises and starts the embedded server', async () => {
    const t0 = Date.now();
    const pg = await ensurePostgres(cfg, log);
    const firstStartMs = Date.now() - t0;
    process.stderr.write(`[embedded-postgres] first start (initdb + start) ${firstStartMs} ms\n`);
    expect(pg.started).not.toBeNull();
    pid = pg.started?.pid ?? 0;
    expect(isAlive(pid)).toBe(true);
    expect(pg.settings.user).toBe('hub');
    expect(pg.settings.password.length).toBeGreaterThanOrEqual(32);
    url = pg.settings.url;
    expect(new URL(url).port).toBe(String(cfg.postgres.port));
    expect((await embeddedRunning(cfg))?.pid).toBe(pid);
    await ensureDatabase({ ...cfg, postgres: pg.settings }, cfg.postgres.database, false, log);
    expect(lines.join('\n')).toContain(`created database ${cfg.postgres.database}`);
  });

  it('given the embedded server, when the hub connects through knex with the password, then SCRAM is the only way in', async () => {
    const db = open(url);
    const who = await db.raw<{ rows: { user: string; db: string }[] }>(
      'select current_user as user, current_database() as db',
    );
    expect(who.rows[0]).toEqual({ user: 'hub', db: 'hub_test' });
    const stored = await db.raw<{ rows: { scram: boolean }[] }>(
      "select rolpassword like 'SCRAM-SHA-256$%' as scram from pg_authid where rolname = 'hub'",
    );
    expect(stored.rows[0]?.scram).toBe(true);
    const rules = await db.raw<{ rows: { auth_method: string }[] }>(
      'select distinct auth_method from pg_hba_file_rules',
    );
    expect(rules.rows.map((r) => r.auth_method)).toEqual(['scram-sha-256']);
  });

  it('given a wrong password, when connecting, then authentication fails (28P01) and no error text holds the password', async () => {
    const wrong = 'not-the-Password-42';
    const err: unknown = await open(withPassword(url, wrong))
      .raw('select 1')
      .catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('28P01');
    expect(String((err as Error).message)).toMatch(/password authentication failed for user "hub"/);
    expect(String((err as Error).message)).not.toContain(wrong);
    expect(toDbError(err).message).not.toContain(wrong);
    // No password at all is refused too: the server does not trust local connections.
    const none: unknown = await open(withPassword(url, null))
      .raw('select 1')
      .catch((e: unknown) => e);
    expect(none).toBeInstanceOf(Error);
  });

  it('given DATABASE_URL names it with a wrong password, when the stack ensures Postgres, then it says why without the password', async () => {
    const wrong = 'Wrong%Password:9';
    const external = stackConfig('test', { DATABASE_URL: withPassword(url, wrong), HUB_POSTGRES_DIR: dir });
    const err: unknown = await ensurePostgres(external, log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    const msg = (err as HubError).message;
    expect(msg).toMatch(/password authentication failed for user "hub" \(check DATABASE_URL\)/);
    expect(msg).not.toContain(wrong);
    expect(msg).not.toContain(encodeURIComponent(wrong));
  });

  it('given the embedded server runs, when the stack ensures Postgres again, then it is reused', async () => {
    const pg = await ensurePostgres(cfg, log);
    expect(pg.started).toBeNull();
    expect(pg.settings.url).toBe(url);
  });

  it('given it was stopped, when started again, then the data and the password are kept', async () => {
    await closeAll();
    expect(await stopEmbedded(cfg, log)).toBe(true);
    expect(isAlive(pid)).toBe(false);
    expect(await embeddedRunning(cfg)).toBeNull();
    const t0 = Date.now();
    const pg = await ensurePostgres(cfg, log);
    process.stderr.write(`[embedded-postgres] restart (existing data) ${Date.now() - t0} ms\n`);
    expect(pg.started?.pid).not.toBe(pid);
    expect(pg.settings.url).toBe(url);
    const db = open(url);
    const rows = await db.raw<{ rows: unknown[] }>('select 1 from pg_database where datname = ?', [
      'hub_test',
    ]);
    expect(rows.rows).toHaveLength(1);
  });

  it('given another session is connected, when the stack stops it, then it is left running for that user', async () => {
    await closeAll();
    const db = open(url);
    await db.raw('select 1'); // holds the pool's one connection open
    expect(await stopEmbedded(cfg, log)).toBe(false);
    expect(lines.at(-1)).toMatch(/left running .*1 other session/);
    await db.destroy();
    expect(await stopEmbedded(cfg, log)).toBe(true);
  });
});
