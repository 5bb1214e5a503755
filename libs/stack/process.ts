// Child processes, pids and log files: the plumbing every component start and stop uses.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HubError } from '../errors/index.js';
import type { Log } from './config.js';

export const LOG_TAIL_LINES = 20;
const STOP_GRACE_MS = 30_000;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const noop: Log = () => {};
export const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; failures carry the tail of its output. */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 32 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolveRun({ stdout, stderr });
        if (errno(err) === 'ENOENT') {
          reject(
            new HubError('HUB_INFRA_FAILED', `${cmd} not found on PATH`, {
              cause: err,
              details: { command: cmd, notFound: true },
            }),
          );
          return;
        }
        const out = `${stdout}\n${stderr}`.trim().split('\n').slice(-LOG_TAIL_LINES).join('\n');
        reject(
          new HubError(
            'HUB_INFRA_FAILED',
            `${cmd} ${args.join(' ')} failed (${err.message.split('\n')[0]}):\n${out}`,
            { cause: err, details: { command: cmd } },
          ),
        );
      },
    );
  });
}

/** Whether run() failed because the command is not installed (so a fallback may be tried). */
export function commandNotFound(err: unknown): boolean {
  return err instanceof HubError && err.details['notFound'] === true;
}

export function javaBin(): string {
  const home = process.env['JAVA_HOME'];
  return home ? join(home, 'bin', 'java') : 'java';
}

export function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Alive and not a zombie: kill(0) alone succeeds for unreaped children. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errno(err) === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no procfs (macOS): trust kill(0)
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

export async function commandLineOf(pid: number): Promise<string> {
  const fromProc = commandLine(pid);
  if (fromProc) return fromProc;
  try {
    return (await run('ps', ['-o', 'command=', '-p', String(pid)])).stdout;
  } catch {
    return '';
  }
}

export async function readLogTail(path: string, lines = LOG_TAIL_LINES): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return '(no log file)';
  }
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    const all = buf.toString('utf8').split('\n');
    if (all.at(-1) === '') all.pop();
    return all.slice(-lines).join('\n') || '(log is empty)';
  } finally {
    await fh.close();
  }
}

export async function logContains(path: string, needle: string): Promise<boolean> {
  try {
    return (await readFile(path, 'utf8')).includes(needle);
  } catch {
    return false;
  }
}

/** A component's startup failure, with the end of its log: the JVM's own words are the diagnosis. */
export async function failure(name: string, what: string, logPath: string): Promise<HubError> {
  const tail = await readLogTail(logPath);
  return new HubError(
    'HUB_INFRA_FAILED',
    `${name}: ${what}; last ${LOG_TAIL_LINES} lines of ${logPath}:\n${tail}`,
  );
}

export function signalGroup(pid: number, sig: NodeJS.Signals): void {
  // Each JVM leads its own process group; signalling the group also reaches anything it forked.
  try {
    process.kill(-pid, sig);
    return;
  } catch {
    /* not a group leader (or already gone): fall back to the pid */
  }
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(100);
  }
  return !isAlive(pid);
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
export async function terminate(name: string, pid: number, log: Log): Promise<void> {
  if (!isAlive(pid)) return;
  const t0 = Date.now();
  signalGroup(pid, 'SIGTERM');
  if (await waitForExit(pid, STOP_GRACE_MS)) {
    log(`${name}: stopped (pid ${pid}) in ${secs(Date.now() - t0)}`);
    return;
  }
  log(`${name}: no exit ${STOP_GRACE_MS / 1000}s after SIGTERM, sending SIGKILL (pid ${pid})`);
  signalGroup(pid, 'SIGKILL');
  if (!(await waitForExit(pid, 5_000)))
    throw new HubError('HUB_INFRA_FAILED', `${name}: pid ${pid} survived SIGKILL`);
}
