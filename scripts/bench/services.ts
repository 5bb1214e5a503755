// Hub services as child processes on the bench stack, so that their CPU,
// memory and event loop are their own (as in production) and their RSS can
// be read from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { BenchEnv } from './lib.js';

export interface ServiceChild {
  name: string;
  pid: number;
  /** Resident set size in MiB from /proc/<pid>/status (VmRSS). */
  rssMiB(): Promise<number>;
  /** SIGTERM and wait for exit (the --cpu-prof file is written then). */
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export async function rssMiBOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]);
  return kb / 1024;
}

/** User + system CPU seconds the process has used so far (/proc/<pid>/stat, 100 ticks/s). */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

/** Environment that points a hub service at the bench stack and its private topics. */
export function serviceEnv(
  env: BenchEnv,
  suffix: string,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KAFKA_BROKERS: env.stack.kafka.brokers.join(','),
    SCHEMA_REGISTRY_URL: env.stack.registryUrl,
    DATABASE_URL: env.databaseUrl,
    HUB_TOPIC_SUFFIX: suffix,
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

export interface StartOptions {
  /** Entry file relative to the repo. */
  script: string;
  env: NodeJS.ProcessEnv;
  /** Resolves true once the service answers; polled every 200 ms. */
  ready: () => Promise<boolean>;
  /** Directory for a V8 CPU profile written at exit (node --cpu-prof). */
  cpuProfDir?: string;
  timeoutMs?: number;
  /**
   * Run the TypeScript source through tsx instead of dist/: for bench-only
   * processes (the null MLLP listener) that the build (libs, services, cli,
   * deploy) does not compile. Its RSS is not a figure.
   */
  fromSource?: boolean;
}

/**
 * Services run as deployed: the compiled output of `npm run build` (dist/),
 * which the runner builds first. Through tsx they would carry its loader
 * thread (about 40 MiB more RSS) into the memory figures.
 */
export function builtEntry(repoDir: string, script: string): string {
  return join(repoDir, 'dist', script.replace(/\.ts$/, '.js'));
}

export async function startService(env: BenchEnv, name: string, o: StartOptions): Promise<ServiceChild> {
  const args = [
    ...(o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : []),
    ...(o.fromSource
      ? ['--import', 'tsx', join(env.cfg.repoDir, o.script)]
      : [builtEntry(env.cfg.repoDir, o.script)]),
  ];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: env.cfg.repoDir,
    env: o.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    // Only the tail is kept, for the error message when the service dies.
    out = (out + b.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let dead = false;
  void exited.then(() => (dead = true));
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  for (;;) {
    if (dead) throw new Error(`${name} exited during start-up:\n${out}`);
    if (await o.ready().catch(() => false)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} not ready within ${o.timeoutMs ?? 60_000} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const pid = child.pid ?? 0;
  env.log(`${name} ready (pid ${pid})`);
  return {
    name,
    pid,
    rssMiB: () => rssMiBOf(pid),
    async stop() {
      if (dead) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    },
  };
}
