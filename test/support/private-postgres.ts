import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';

/**
 * Running a PRIVATE Postgres (initdb + pg_ctl on a free port in a temp dir)
 * for tests that must stop it or configure it (TLS, pg_hba): never the
 * shared server of the test stack.
 */
export function pgBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(base, v, 'bin', 'pg_ctl'))) return join(base, v, 'bin');
  return undefined;
}

export const isRoot = userInfo().uid === 0;

/** Runs a Postgres program (initdb, pg_ctl); as the postgres user when this is root, which they refuse. */
export function runPg(bin: string, cmd: string, args: string[]): void {
  const full = join(bin, cmd);
  if (isRoot) execFileSync('runuser', ['-u', 'postgres', '--', full, ...args], { stdio: 'pipe' });
  else execFileSync(full, args, { stdio: 'pipe' });
}

/** Hands a path to the postgres user (when this is root), optionally with a mode (e.g. 0o600 for a key). */
export function giveToPostgres(path: string, mode?: number): void {
  if (!isRoot) return;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  chownSync(path, uid, -1);
  if (mode !== undefined) execFileSync('chmod', [mode.toString(8), path]);
}
