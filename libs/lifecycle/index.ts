import { toHubError } from '../errors/index.js';
import type { Logger } from '../telemetry/logger.js';

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

/**
 * How every service stops: SIGTERM and SIGINT (and a fatal error, through the
 * returned function) run the stop steps once and then exit. Called from a
 * main.ts, the only place that installs signal handlers. Only the error's
 * code is logged: a failed stop can carry a query or a payload.
 */
export function installShutdown(o: ShutdownOptions): Shutdown {
  let stopping = false;
  const shutdown: Shutdown = async (why, code = 0) => {
    if (stopping) return;
    stopping = true;
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
