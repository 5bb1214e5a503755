import type { FastifyInstance } from 'fastify';
import { HubError, isHubError } from '../errors/index.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * Start-up is where a fresh cluster is least ready: a just-formatted KRaft
 * broker answers before every partition has a leader, its group coordinator
 * reports "loading" for seconds, the registry may still be booting. Those
 * conditions are transient; a service treats them during start exactly as it
 * treats them while running: bounded retries with backoff, not-ready
 * meanwhile, and an exit (for the supervisor to restart it) only after the
 * bound, saying what it was waiting for.
 */
export interface StartupStep {
  /** What is being waited for, in words an operator reads in the log and on /ready. */
  name: string;
  run(): Promise<void>;
  /** Undoes a half-done attempt before the next one (e.g. disconnects a client). */
  undo?(): Promise<void>;
}

export interface StartupOptions {
  logger: Logger;
  /** Total time all retries of all steps may take (ms). */
  budgetMs: number;
  /** First backoff (ms); doubled per attempt up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Told what start-up is waiting for: /ready says it while not ready. */
  onWaiting?(what: string): void;
  clock?: () => number;
  sleep?(ms: number): Promise<void>;
  /** True once the service is stopping: no further attempt is made. */
  cancelled?(): boolean;
}

/** kafkajs error names whose condition passes by itself (a broker or coordinator not there yet). */
const TRANSIENT_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSBrokerNotFound',
  'KafkaJSLockTimeout',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSStaleTopicMetadataAssignment',
]);

/** Socket errors and Postgres SQLSTATEs of a server that is not (yet) reachable. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  '57P03', // cannot_connect_now: the server is starting up
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '53300', // too_many_connections
]);

/**
 * Whether a start-up failure may pass by itself. A HubError says so itself;
 * foreign errors (kafkajs, pg, sockets) are judged by their name, code or
 * their own `retriable` flag, through their cause chain. Configuration and
 * schema errors are not transient: retrying them would only delay the message.
 */
export function isTransientStartupError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e !== null && typeof e === 'object' && !seen.has(e)) {
    seen.add(e);
    if (isHubError(e)) {
      if (e.retriable) return true;
    } else {
      const x = e as { name?: unknown; code?: unknown; retriable?: unknown; errors?: unknown };
      if (x.retriable === true) return true;
      if (typeof x.name === 'string' && TRANSIENT_NAMES.has(x.name)) return true;
      if (typeof x.code === 'string' && TRANSIENT_CODES.has(x.code)) return true;
      // AggregateError (net's happy-eyeballs connect) holds the socket errors.
      if (Array.isArray(x.errors) && x.errors.some((inner) => isTransientStartupError(inner))) return true;
    }
    const next = e as { cause?: unknown; originalError?: unknown };
    e = next.cause ?? next.originalError;
  }
  return false;
}

/** A code or error name safe to log and show: never a foreign message, which can quote data. */
export function errorLabel(err: unknown): string {
  if (isHubError(err)) return err.code;
  const x = err as { name?: unknown; code?: unknown; type?: unknown } | null;
  const parts = [x?.name, x?.type, x?.code].filter((p): p is string => typeof p === 'string' && p !== '');
  return parts.length > 0 ? [...new Set(parts)].join(' ') : 'Error';
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function withinBudget(run: Promise<void>, ms: number, giveUp: () => HubError): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const out = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        const e = giveUp();
        e.details['startupBudget'] = true;
        reject(e);
      },
      Math.max(0, ms),
    );
  });
  // The abandoned attempt may still fail later; that is no longer anyone's business.
  run.catch(() => undefined);
  return Promise.race([run, out]).finally(() => clearTimeout(timer));
}

/**
 * Runs the steps in order, each retried on transient failures until the
 * shared budget is spent. Throws a HubError naming the step it was waiting
 * for when the budget runs out or a failure is not transient.
 */
export async function runStartupSteps(steps: readonly StartupStep[], o: StartupOptions): Promise<void> {
  const clock = o.clock ?? Date.now;
  const sleep = o.sleep ?? realSleep;
  const base = o.baseDelayMs ?? 250;
  const max = o.maxDelayMs ?? 5_000;
  const deadline = clock() + o.budgetMs;
  for (const step of steps) {
    o.onWaiting?.(`waiting for ${step.name}`);
    for (let attempt = 1; ; attempt++) {
      if (o.cancelled?.()) return;
      try {
        // A client's own retries (kafkajs: ~20 s per connect) must not carry start-up past the budget.
        await withinBudget(
          step.run(),
          deadline - clock(),
          () =>
            new HubError(
              'HUB_INFRA_FAILED',
              `gave up after ${Math.round(o.budgetMs / 1000)}s waiting for ${step.name} (attempt ${attempt} still running)`,
            ),
        );
        break;
      } catch (err) {
        if (isHubError(err) && err.details['startupBudget'] === true) throw err;
        const label = errorLabel(err);
        if (!isTransientStartupError(err)) {
          throw new HubError(
            isHubError(err) ? err.code : 'HUB_INTERNAL',
            `start-up step "${step.name}" failed: ${label}`,
            { cause: err, retriable: false },
          );
        }
        if (step.undo) await step.undo().catch(() => undefined);
        const delay = Math.min(base * 2 ** (attempt - 1), max);
        if (clock() + delay > deadline) {
          throw new HubError(
            isHubError(err) ? err.code : 'HUB_INFRA_FAILED',
            `gave up after ${Math.round(o.budgetMs / 1000)}s waiting for ${step.name} (${attempt} attempts, last: ${label})`,
            { cause: err, retriable: false },
          );
        }
        o.onWaiting?.(`waiting for ${step.name} (attempt ${attempt}: ${label})`);
        o.logger.warn(
          { step: step.name, attempt, delayMs: delay, code: label },
          'start-up waiting, retrying',
        );
        await sleep(delay);
      }
    }
  }
}

/**
 * A service's HTTP port answers while it starts, and its /ready says what
 * start-up is waiting for: a supervisor or an operator sees "waiting for
 * kafka" rather than a refused connection. Every other route but /health
 * and /metrics answers 503 (an OperationOutcome, as most of the hub's
 * routes speak FHIR) until start-up is done. Installed before listen().
 */
export function gateReadiness(app: FastifyInstance): {
  waiting(what: string): void;
  open(): void;
} {
  let waitingFor: string | null = 'starting';
  app.addHook('onRequest', async (req, reply) => {
    if (waitingFor === null) return;
    const path = req.url.split('?')[0];
    if (path === '/health' || path === '/metrics') return;
    if (path === '/ready') {
      await reply
        .status(503)
        .send({ status: 'not-ready', checks: { startup: { ok: false, detail: waitingFor } } });
      return;
    }
    await reply
      .status(503)
      .header('retry-after', '2')
      .send({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'transient', diagnostics: `service starting: ${waitingFor}` }],
      });
  });
  return {
    waiting(what) {
      waitingFor = what;
    },
    open() {
      waitingFor = null;
    },
  };
}
