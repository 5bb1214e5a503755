import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { eventually } from '../../test/support/harness.js';
import { freePort, repoDir } from '../../test/support/processes.js';
import { Supervisor, type SupervisedService, type SupervisorOptions } from './services-supervisor.js';

/**
 * The supervisor `hub up` runs its services under, with real child
 * processes: test/support/fake-service.ts serves /ready and exits when told.
 */
interface Fake extends SupervisedService {
  env: Record<string, string>;
}

const fakeScript = join(repoDir, 'test', 'support', 'fake-service.ts');

async function fake(name: string, env: Record<string, string> = {}): Promise<Fake> {
  const port = await freePort();
  return { name, baseUrl: `http://127.0.0.1:${port}`, env: { PORT: String(port), ...env } };
}

/** Who answers /health on a base URL: the pid of the process, or undefined. */
async function pidAt(base: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) });
    return ((await res.json()) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('Supervisor (hub up) with real processes', () => {
  let dir: string;
  let sup: Supervisor<Fake> | undefined;
  let said: string[];
  const spawns: { name: string; at: number }[] = [];

  function supervise(services: Fake[], o: Partial<SupervisorOptions<Fake>> = {}): Supervisor<Fake> {
    said = [];
    spawns.length = 0;
    sup = new Supervisor<Fake>({
      services,
      spawn: (s) => {
        spawns.push({ name: s.name, at: Date.now() });
        return spawn(process.execPath, ['--import', 'tsx', fakeScript], {
          cwd: repoDir,
          env: { ...process.env, ...s.env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      },
      say: (l) => said.push(l),
      backoff: { firstMs: 200, maxMs: 1000 },
      pollMs: 100,
      stopGraceMs: 5000,
      ...o,
    });
    sup.start();
    return sup;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hub-supervisor-'));
  });
  afterEach(async () => {
    await sup?.stopAll();
    sup = undefined;
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('regression: a service that exits under hub up is restarted and the others keep running', async () => {
    // given two ready services
    const a = await fake('svc-a');
    const b = await fake('svc-b');
    const s = supervise([a, b]);
    await s.waitAllReady(30_000);
    const [a0, b0] = [await pidAt(a.baseUrl), await pidAt(b.baseUrl)];
    expect(a0).toBeTypeOf('number');
    // when one of them exits with code 3
    await fetch(`${a.baseUrl}/exit?code=3`).catch(() => undefined);
    // then the exit is reported with its code and the last error's code and message only
    await eventually(() => Promise.resolve(said.some((l) => l.startsWith('svc-a exited')) || undefined), {
      what: 'the exit report',
    });
    expect(said).toContain('svc-a exited with code 3 (last error: HUB_TEST_CRASH told to exit)');
    expect(said.join('\n')).not.toContain('CANARY');
    expect(said).toContain('svc-a: restarting in 0.2s (restart 1 of 5 allowed within 60s)');
    // and the other keeps running, untouched
    expect(await pidAt(b.baseUrl)).toBe(b0);
    // and the exited one comes back as a new process
    const a1 = await eventually(
      async () => {
        const p = await pidAt(a.baseUrl);
        return p !== undefined && p !== a0 ? p : undefined;
      },
      { timeoutMs: 30_000, what: 'svc-a restarted' },
    );
    expect(alive(a1)).toBe(true);
    expect(await pidAt(b.baseUrl)).toBe(b0);
    expect(spawns.map((x) => x.name)).toEqual(['svc-a', 'svc-b', 'svc-a']);
  });

  it('regression: a service that exits during start is restarted and counts once it is ready', async () => {
    // given a service whose first start fails, next to one that starts fine
    const flaky = await fake('svc-flaky', { EXIT_ONCE_MARKER: join(dir, 'flaky-started-once') });
    const fine = await fake('svc-fine');
    const s = supervise([flaky, fine]);
    // when / then: start completes, the failed start having been reported and retried
    await s.waitAllReady(30_000);
    expect(said).toContain(
      'svc-flaky exited with code 1 (last error: HUB_TEST_CRASH first start fails on purpose)',
    );
    expect(spawns.filter((x) => x.name === 'svc-flaky')).toHaveLength(2);
    expect(await pidAt(fine.baseUrl)).toBe(s.pid('svc-fine'));
  });

  it('a service that keeps exiting is restarted with doubling delays until its budget is used up, then everything stops', async () => {
    // given a service that always exits at start, next to a healthy one, and a budget of 3 restarts
    const crashing = await fake('svc-crash', { EXIT_ON_START: '2' });
    const healthy = await fake('svc-ok');
    const s = supervise([crashing, healthy], { budget: { restarts: 3, windowMs: 60_000 } });
    const starting = s.waitAllReady(60_000).catch((e: unknown) => e);
    // when the budget is used up
    const err = await s.failed;
    // then the failure names the service and why, after 1 start + 3 restarts
    expect(err).toBeInstanceOf(HubError);
    expect(err.message).toBe(
      'svc-crash exited 4 times within 60s (restart budget 3 used up); ' +
        'it last exited with code 2 (last error: HUB_TEST_CRASH exiting at start on purpose)',
    );
    expect(await starting).toBe(err);
    expect(said.filter((l) => l.startsWith('svc-crash: restarting in'))).toEqual([
      'svc-crash: restarting in 0.2s (restart 1 of 3 allowed within 60s)',
      'svc-crash: restarting in 0.4s (restart 2 of 3 allowed within 60s)',
      'svc-crash: restarting in 0.8s (restart 3 of 3 allowed within 60s)',
    ]);
    // and the restarts were spaced by at least the backoff
    const at = spawns.filter((x) => x.name === 'svc-crash').map((x) => x.at);
    expect(at).toHaveLength(4);
    [200, 400, 800].forEach((ms, i) => expect(at[i + 1]! - at[i]!).toBeGreaterThanOrEqual(ms - 20));
    // and the healthy one was stopped too
    expect(said.at(-1)).toMatch(/svc-crash exited 4 times .*: stopping everything$/);
    expect(await pidAt(healthy.baseUrl)).toBeUndefined();
  });

  it('a start that does not finish in time names the services not ready and what their /ready said', async () => {
    // given a service whose /ready keeps failing its kafka check
    const stuck = await fake('svc-stuck', { READY: '0' });
    const fine = await fake('svc-fine');
    const s = supervise([stuck, fine]);
    // when / then
    await expect(s.waitAllReady(3000)).rejects.toMatchObject({
      code: 'HUB_INFRA_FAILED',
      message: 'not ready after 3s: svc-stuck (kafka: HUB_KAFKA_UNAVAILABLE)',
    });
  });
});
