/**
 * Supervision of the service processes `hub up` runs: a service that exits,
 * at any time, is reported (exit code or signal, and the code and message of
 * the last error it logged) and restarted with exponential backoff while the
 * others keep running. A service that keeps exiting uses up its restart
 * budget; then everything is stopped and the failure names the service.
 * Spawning is injected, so tests run it with real, tiny child processes.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { HubError } from '../errors/index.js';
import { probeReadiness } from './services.js';

export interface SupervisedService {
  name: string;
  /** HTTP base URL; GET {baseUrl}/ready answering 200 means the service is ready. */
  baseUrl: string;
}

/** Delay before restart n (0-based) is `firstMs * 2^n`, at most `maxMs`. */
export interface Backoff {
  firstMs: number;
  maxMs: number;
}

/** At most `restarts` restarts of one service within any `windowMs`; one more exit stops everything. */
export interface RestartBudget {
  restarts: number;
  windowMs: number;
}

export const RESTART_BACKOFF: Backoff = { firstMs: 500, maxMs: 15_000 };
export const RESTART_BUDGET: RestartBudget = { restarts: 5, windowMs: 60_000 };

export interface SupervisorOptions<S extends SupervisedService> {
  services: readonly S[];
  /** Starts one process of a service, with stdout and stderr piped. */
  spawn(service: S): ChildProcess;
  /** Supervision events: exits, restarts, an exhausted budget. */
  say(line: string): void;
  /** Every output line of a service, as it wrote it. */
  echo?(service: string, line: string): void;
  backoff?: Backoff;
  budget?: RestartBudget;
  /** SIGTERM, then SIGKILL after this long. */
  stopGraceMs?: number;
  /** How often readiness is polled while starting. */
  pollMs?: number;
}

/** The last error a service logged: only its code and message, never other fields (they may hold data). */
export interface LoggedError {
  code?: string;
  msg?: string;
}

/** A pino JSON line at level error or fatal → its code and msg; anything else → undefined. Pure. */
export function loggedError(line: string): LoggedError | undefined {
  if (!line.startsWith('{')) return undefined;
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null) return undefined;
  const { level, code, msg } = o as { level?: unknown; code?: unknown; msg?: unknown };
  const isError = typeof level === 'number' ? level >= 50 : level === 'error' || level === 'fatal';
  if (!isError) return undefined;
  const out: LoggedError = {};
  if (typeof code === 'string') out.code = code.slice(0, 64);
  if (typeof msg === 'string') out.msg = msg.slice(0, 200);
  return out;
}

/** "exited with code 1 (last error: HUB_DB_UNAVAILABLE database unreachable)". Pure. */
export function describeExit(code: number | null, signal: string | null, last: LoggedError | null): string {
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  const what = last ? [last.code, last.msg].filter(Boolean).join(' ') : '';
  return `${how} (${what ? `last error: ${what}` : 'no error line logged'})`;
}

/** The delay before restart number `n` (0-based). Pure. */
export function backoffMs(b: Backoff, n: number): number {
  return Math.min(b.firstMs * 2 ** n, b.maxMs);
}

const secs = (ms: number) => `${Number((ms / 1000).toFixed(1))}s`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Slot<S> {
  service: S;
  child: ChildProcess | null;
  /** Resolves when the current child has exited and been handled. */
  exited: Promise<void>;
  restartTimer: NodeJS.Timeout | null;
  /** When each restart within the budget window happened. */
  restarts: number[];
  lastError: LoggedError | null;
  /** Answered /ready with 200 since its last (re)start. */
  ready: boolean;
}

export class Supervisor<S extends SupervisedService> {
  private readonly slots: Slot<S>[];
  private readonly backoff: Backoff;
  private readonly budget: RestartBudget;
  private stopping: Promise<void> | null = null;
  private failure: HubError | null = null;
  private resolveFailed!: (err: HubError) => void;
  /** Resolves, after everything has been stopped, when a service used up its restart budget. */
  readonly failed: Promise<HubError>;

  constructor(private readonly o: SupervisorOptions<S>) {
    this.backoff = o.backoff ?? RESTART_BACKOFF;
    this.budget = o.budget ?? RESTART_BUDGET;
    this.slots = o.services.map((service) => ({
      service,
      child: null,
      exited: Promise.resolve(),
      restartTimer: null,
      restarts: [],
      lastError: null,
      ready: false,
    }));
    this.failed = new Promise((resolve) => (this.resolveFailed = resolve));
  }

  start(): void {
    for (const slot of this.slots) this.launch(slot);
  }

  /** The pid of a service's current process (tests, reports). */
  pid(name: string): number | undefined {
    return this.slots.find((s) => s.service.name === name)?.child?.pid;
  }

  private launch(slot: Slot<S>): void {
    slot.restartTimer = null;
    slot.lastError = null;
    slot.ready = false;
    const child = this.o.spawn(slot.service);
    slot.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.o.echo?.(slot.service.name, line);
        const err = loggedError(line);
        if (err) slot.lastError = err;
      });
    }
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    slot.exited = new Promise<void>((resolve) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        // The last lines may still be in the pipe: wait for it to close, briefly.
        void Promise.race([closed, sleep(1000)]).then(() => {
          if (slot.child === child) slot.child = null;
          this.onExit(slot, code, signal);
          resolve();
        });
      };
      child.once('exit', onExit);
      child.once('error', (err) => {
        // Spawning itself failed: no 'exit' follows.
        if (child.pid === undefined) {
          slot.lastError = { msg: `could not start: ${err.message.split('\n')[0]}` };
          onExit(null, null);
        }
      });
    });
  }

  private onExit(slot: Slot<S>, code: number | null, signal: NodeJS.Signals | null): void {
    slot.ready = false;
    if (this.stopping) return;
    const name = slot.service.name;
    this.o.say(`${name} ${describeExit(code, signal, slot.lastError)}`);
    const now = Date.now();
    slot.restarts = slot.restarts.filter((t) => now - t < this.budget.windowMs);
    if (slot.restarts.length >= this.budget.restarts) {
      this.exhausted(slot, code, signal);
      return;
    }
    const delay = backoffMs(this.backoff, slot.restarts.length);
    slot.restarts.push(now);
    this.o.say(
      `${name}: restarting in ${secs(delay)} (restart ${slot.restarts.length} of ${this.budget.restarts} allowed within ${secs(this.budget.windowMs)})`,
    );
    slot.restartTimer = setTimeout(() => this.launch(slot), delay);
  }

  private exhausted(slot: Slot<S>, code: number | null, signal: NodeJS.Signals | null): void {
    const err = new HubError(
      'HUB_INTERNAL',
      `${slot.service.name} exited ${this.budget.restarts + 1} times within ${secs(this.budget.windowMs)} ` +
        `(restart budget ${this.budget.restarts} used up); it last ${describeExit(code, signal, slot.lastError)}`,
      { details: { service: slot.service.name } },
    );
    this.failure = err;
    this.o.say(`${err.message}: stopping everything`);
    void this.stopAll().then(() => this.resolveFailed(err));
  }

  /**
   * Resolves once every service has answered /ready with 200 since its last
   * (re)start; a service restarted meanwhile counts once its new process is
   * ready. Rejects when the budget of one is used up, or after `timeoutMs`
   * naming the services not ready and what their /ready said.
   */
  async waitAllReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.stopping) throw new HubError('HUB_INFRA_FAILED', 'stopped before every service was ready');
      await Promise.all(this.slots.filter((s) => !s.ready).map((s) => this.probe(s)));
      if (this.slots.every((s) => s.ready)) return;
      if (Date.now() > deadline) throw await this.notReadyError(timeoutMs);
      await Promise.race([sleep(this.o.pollMs ?? 300), this.failed]);
    }
  }

  private async probe(slot: Slot<S>): Promise<void> {
    const child = slot.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const r = await probeReadiness(slot.service.baseUrl, 2000);
    // Counts only for the process that is still the current one.
    if (r.state === 'ready' && slot.child === child && child.exitCode === null) slot.ready = true;
  }

  private async notReadyError(timeoutMs: number): Promise<HubError> {
    const waiting = this.slots.filter((s) => !s.ready);
    const parts = await Promise.all(
      waiting.map(async (s) => {
        if (!s.child) return `${s.service.name} (not running: restart pending)`;
        const r = await probeReadiness(s.service.baseUrl, 2000);
        const said = r.state === 'not running' ? `nothing listening on ${s.service.baseUrl} yet` : r.failing;
        return `${s.service.name} (${said})`;
      }),
    );
    return new HubError('HUB_INFRA_FAILED', `not ready after ${secs(timeoutMs)}: ${parts.join(', ')}`, {
      details: { services: waiting.map((s) => s.service.name) },
    });
  }

  /** Stops every service (SIGTERM, SIGKILL after the grace period) and cancels pending restarts. Idempotent. */
  stopAll(): Promise<void> {
    this.stopping ??= Promise.all(this.slots.map((s) => this.stopOne(s))).then(() => undefined);
    return this.stopping;
  }

  private async stopOne(slot: Slot<S>): Promise<void> {
    if (slot.restartTimer) clearTimeout(slot.restartTimer);
    slot.restartTimer = null;
    const child = slot.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return slot.exited;
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), this.o.stopGraceMs ?? 20_000);
    await slot.exited;
    clearTimeout(kill);
  }
}
