import type { FastifyInstance } from 'fastify';
import { isHubError, toHubError } from '../errors/index.js';
import type { Logger } from '../telemetry/logger.js';
import { errorLabel, gateReadiness, runStartupSteps, type StartupStep } from './startup.js';

export { isTransientStartupError, type StartupStep } from './startup.js';

export interface ShutdownOptions {
  logger: Logger;
  /** The service's stop steps (stop serving, drain, disconnect clients), in order. */
  stop(): Promise<void>;
  /** Logged when stopping starts; 'stopping' by default. */
  stoppingMessage?: string;
  /** Logged after a clean stop, before exiting. */
  stoppedMessage?: string;
}

/** Stops the service once, then exits with `code` (1 if a stop step failed). */
export type Shutdown = (why: string, code?: number) => Promise<void>;

/** Set once a shutdown began: start-up then stops retrying and leaves the exit code to the shutdown. */
let shuttingDown = false;

/** Whether a stop began: what fails after it is the stop's doing, and the stop owns the exit code. */
export function shutdownBegun(): boolean {
  return shuttingDown;
}

/**
 * How every service stops: SIGTERM and SIGINT (and a fatal error, through the
 * returned function) run the stop steps once and then exit. Called by the
 * service kit (libs/service runService), the only place that installs signal
 * handlers. Only the error's code is logged: a failed stop can carry a query
 * or a payload.
 */
export function installShutdown(o: ShutdownOptions): Shutdown {
  let stopping = false;
  const shutdown: Shutdown = async (why, code = 0) => {
    if (stopping) return;
    stopping = true;
    shuttingDown = true;
    o.logger.info({ why }, o.stoppingMessage ?? 'stopping');
    try {
      await o.stop();
      if (o.stoppedMessage) o.logger.info(o.stoppedMessage);
    } catch (err) {
      o.logger.error({ code: toHubError(err).code }, 'unclean stop');
      code = 1;
    }
    process.exit(code);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  return shutdown;
}

export interface ServiceStartOptions {
  name: string;
  logger: Logger;
  http: FastifyInstance;
  /** Where to listen and the start-up retry budget (httpEnv, startEnv), as validated by the service kit. */
  config: { HTTP_HOST: string; HTTP_PORT: number; HUB_START_BUDGET_MS: number };
  /** Every service writes to Kafka: connecting its producer is always the first step. */
  producer: { connect(): Promise<void> };
  /** The service's own connections and preparations, in order; each retried while its failure is transient. */
  steps: readonly StartupStep[];
  /** Extra fields for the "<name> ready" log line. */
  readyFields?(): Record<string, unknown>;
}

/**
 * How every service starts: the HTTP port listens first with /ready saying
 * what start-up waits for, then the steps run with bounded retries; "<name>
 * ready" is logged once they are done. After the budget (or on a failure
 * that is not transient) the service logs what it was waiting for and exits
 * 1, for its supervisor to restart it.
 */
export async function startService(o: ServiceStartOptions): Promise<void> {
  const gate = gateReadiness(o.http);
  try {
    const address = await o.http.listen({ host: o.config.HTTP_HOST, port: o.config.HTTP_PORT });
    const steps = [{ name: 'kafka (producer connect)', run: () => o.producer.connect() }, ...o.steps];
    await runStartupSteps(steps, {
      logger: o.logger,
      budgetMs: o.config.HUB_START_BUDGET_MS,
      onWaiting: gate.waiting,
      cancelled: () => shuttingDown,
    });
    if (shuttingDown) return;
    gate.open();
    o.logger.info({ address, ...(o.readyFields?.() ?? {}) }, `${o.name} ready`);
  } catch (err) {
    // SIGTERM during start-up: the stop steps tear down what a start step was
    // using, so that step fails; the shutdown owns the exit (0), not this.
    if (shuttingDown) return;
    const h = toHubError(err);
    // The message is the hub's own (step name and error label), never a driver's text.
    o.logger.fatal(
      { code: h.code },
      `${o.name} failed to start: ${isHubError(err) ? h.message : errorLabel(err)}`,
    );
    process.exit(1);
  }
}
