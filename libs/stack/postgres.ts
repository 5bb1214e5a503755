// The host's PostgreSQL: reachable (started through the Debian cluster wrapper
// when it is local and down), with the app's and the registry's databases present.
import { readdir } from 'node:fs/promises';
import pg from 'pg';
import { HubError } from '../errors/index.js';
import type { Log, StackConfig } from './config.js';
import { errno, run, sleep } from './process.js';

const MANUAL_START =
  'start it (e.g. `pg_ctlcluster <version> main start` or `service postgresql start`) ' +
  'or point PG_HOST/PG_PORT/DATABASE_URL at a running server';

function pgClient(cfg: StackConfig, database: string): pg.Client {
  return new pg.Client({
    host: cfg.postgres.host,
    port: cfg.postgres.port,
    user: cfg.postgres.user,
    password: cfg.postgres.password,
    database,
    connectionTimeoutMillis: 3000,
  });
}

/** null when the server answers, else why not. */
export async function pgReachable(cfg: StackConfig): Promise<Error | null> {
  const c = pgClient(cfg, 'postgres');
  try {
    await c.connect();
    await c.query('select 1');
    return null;
  } catch (err) {
    return err as Error;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The newest Debian-style cluster version (/etc/postgresql/<n>), if this is such a host. */
async function debianClusterVersion(): Promise<string | undefined> {
  try {
    return (await readdir('/etc/postgresql'))
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a))[0];
  } catch {
    return undefined; // not a Debian-style install
  }
}

async function startLocalCluster(cfg: StackConfig, where: string, log: Log): Promise<void> {
  // The Debian cluster wrapper is the one start method that needs neither systemd nor a password.
  const version = await debianClusterVersion();
  if (!version)
    throw new HubError('HUB_INFRA_FAILED', `postgres: nothing listening on ${where}; ${MANUAL_START}`);
  log(`postgres: not reachable on ${where}, starting cluster ${version}/main`);
  try {
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], {
      timeoutMs: 60_000,
    });
  } catch (err) {
    throw new HubError(
      'HUB_INFRA_FAILED',
      `postgres: nothing listening on ${where} and pg_ctlcluster failed: ${(err as Error).message}; ${MANUAL_START}`,
      { cause: err },
    );
  }
  const deadline = Date.now() + 30_000;
  for (;;) {
    const err = await pgReachable(cfg);
    if (!err) {
      log('postgres: started');
      return;
    }
    if (Date.now() > deadline)
      throw new HubError(
        'HUB_INFRA_FAILED',
        `postgres: still unreachable on ${where} after start: ${err.message}; ${MANUAL_START}`,
        { cause: err },
      );
    await sleep(500);
  }
}

/** Only a local server that refuses connections is ours to start; anything else is reported. */
export async function ensurePostgres(cfg: StackConfig, log: Log): Promise<void> {
  const first = await pgReachable(cfg);
  if (!first) return;
  const where = `${cfg.postgres.host}:${cfg.postgres.port}`;
  const local = ['127.0.0.1', 'localhost', '::1'].includes(cfg.postgres.host);
  const refused = errno(first) === 'ECONNREFUSED' || /ECONNREFUSED|connect/.test(first.message);
  if (cfg.postgres.external || !local || !refused) {
    throw new HubError(
      'HUB_INFRA_FAILED',
      `postgres: cannot connect to ${where} as ${cfg.postgres.user}: ${first.message}` +
        (cfg.postgres.external
          ? ' (check DATABASE_URL)'
          : ' (start PostgreSQL or set PG_HOST/PG_PORT/DATABASE_URL)'),
      { cause: first },
    );
  }
  await startLocalCluster(cfg, where, log);
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

export async function ensureDatabase(
  cfg: StackConfig,
  db: string,
  recreate: boolean,
  log: Log,
): Promise<void> {
  const c = pgClient(cfg, 'postgres');
  await c.connect();
  try {
    if (recreate) {
      // FORCE: a registry killed without cleanup can leave sessions that would block the drop.
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`);
    }
    const { rowCount } = await c.query('select 1 from pg_database where datname = $1', [db]);
    if (rowCount) return;
    try {
      await c.query(`CREATE DATABASE ${quoteIdent(db)}`);
      log(`postgres: ${recreate ? 'recreated' : 'created'} database ${db}`);
    } catch (err) {
      // 42P04 duplicate_database / 23505: a concurrent start created it first.
      const code = (err as { code?: string }).code;
      if (code !== '42P04' && code !== '23505') throw err;
    }
  } finally {
    await c.end().catch(() => undefined);
  }
}
