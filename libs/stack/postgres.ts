// The stack's PostgreSQL: DATABASE_URL's server; else whatever answers on
// PG_HOST:PG_PORT (127.0.0.1:5432); else, when nothing listens there, the
// project's embedded server (embedded-postgres.ts), started on that port. The
// app's and the registry's databases are made present in it.
import { HubError } from '../errors/index.js';
import type { Log, StackConfig } from './config.js';
import {
  connectError,
  pgClient,
  runningEmbeddedSettings,
  startEmbedded,
  type EmbeddedServer,
} from './embedded-postgres.js';
import { acquireLock } from './lock.js';
import { errno } from './process.js';

/** null when the server answers cfg's settings, else why not. */
export function pgReachable(cfg: StackConfig): Promise<Error | null> {
  return connectError(cfg.postgres);
}

/** The settings the stack uses, and the embedded server when this call started it. */
export interface PostgresReady {
  settings: StackConfig['postgres'];
  started: EmbeddedServer | null;
}

/**
 * Only a local address where nothing listens gets the embedded server; a
 * server that answers but refuses us, or a remote one, is reported.
 */
export async function ensurePostgres(cfg: StackConfig, log: Log): Promise<PostgresReady> {
  const where = `${cfg.postgres.host}:${cfg.postgres.port}`;
  // Ours first: it wants the password from its own file, which PG_USER/PG_PASSWORD do not carry.
  const own = await runningEmbeddedSettings(cfg);
  if (own) {
    log(`postgres: embedded server already running (pid ${own.pid}) on ${where}, reusing`);
    return { settings: own.settings, started: null };
  }
  const first = await pgReachable(cfg);
  if (!first) return { settings: cfg.postgres, started: null };
  const local = ['127.0.0.1', 'localhost', '::1'].includes(cfg.postgres.host);
  const refused = errno(first) === 'ECONNREFUSED' || /ECONNREFUSED/.test(first.message);
  if (cfg.postgres.external || !local || !refused) {
    throw new HubError(
      'HUB_INFRA_FAILED',
      `postgres: cannot connect to ${where} as ${cfg.postgres.user}: ${first.message}` +
        (cfg.postgres.external
          ? ' (check DATABASE_URL)'
          : ' (start PostgreSQL, free the port, or set PG_HOST/PG_PORT/DATABASE_URL)'),
      { cause: first },
    );
  }
  log(`postgres: nothing answers on ${where} and DATABASE_URL is not set: using the embedded server`);
  // Every profile shares the server: a dev and a test start racing must not both initdb or start it.
  const release = await acquireLock(cfg.postgres.embeddedDir, log);
  try {
    const raced = await runningEmbeddedSettings(cfg);
    if (raced) return { settings: raced.settings, started: null };
    const server = await startEmbedded(cfg, log);
    return { settings: server.settings, started: server };
  } finally {
    await release();
  }
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

export async function ensureDatabase(
  cfg: StackConfig,
  db: string,
  recreate: boolean,
  log: Log,
): Promise<void> {
  const c = pgClient(cfg.postgres, 'postgres');
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
