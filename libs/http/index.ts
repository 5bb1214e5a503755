import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
} from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import { HubError, toHubError } from '../errors/index.js';
import { jsonErrorHandler } from './errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Knex } from 'knex';

export { FHIR_JSON, fhirErrorHandler, jsonErrorHandler, type HttpErrorHandler } from './errors.js';

export type ReadinessCheck = () => Promise<{ ok: boolean; detail?: string }>;

/** The Postgres check of every service with a pool: one round trip answered (a failure becomes its code). */
export function postgresReady(db: Knex): ReadinessCheck {
  return async () => {
    await db.raw('select 1');
    return { ok: true };
  };
}

export interface HttpAppOptions {
  logger: Logger;
  /** Named dependency checks for /ready: each must answer within the timeout. */
  readiness?: Record<string, ReadinessCheck>;
  metrics?: Registry;
  bodyLimit?: number;
  readinessTimeoutMs?: number;
  /**
   * Answer an unknown route with `{ code: 'HUB_NOT_FOUND' }` only: fastify's
   * own 404 quotes the request URL, which can carry an id. Off for an app
   * that sets its own not-found handler (fastify allows one).
   */
  codeOnlyNotFound?: boolean;
  /** The router's own refusals (an undecodable URL, an over-long parameter); default: pathlessFrameworkError. */
  frameworkErrors?: FastifyServerOptions['frameworkErrors'];
}

/**
 * Answers the router's refusals with 400 HUB_INPUT_INVALID: fastify's own
 * answer quotes the raw path (`'/fhir/Patient/<id>%FF' is not a valid url component`),
 * which can carry an id.
 */
export function pathlessFrameworkError(err: { code?: string }, _req: unknown, reply: FastifyReply): void {
  const what = frameworkRefusal(err).message;
  void reply.status(400).send({ code: 'HUB_INPUT_INVALID', message: what, retriable: false });
}

/** The router's refusal (an undecodable URL, an over-long parameter) as a HUB_INPUT_INVALID that names no path. */
export function frameworkRefusal(err: { code?: string }): HubError {
  return new HubError(
    'HUB_INPUT_INVALID',
    err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is too long' : 'the URL is not valid',
  );
}

/**
 * The app/server split (as in fastify's own guidance): this builds an app
 * that tests drive with `inject` or a real port; main.ts decides to listen.
 * Every service gets /health (process alive), /ready (dependencies reachable
 * and making progress) and /metrics.
 */
export function createHttpApp(opts: HttpAppOptions): FastifyInstance {
  const serverOpts: FastifyServerOptions = {
    loggerInstance: opts.logger.child({ component: 'http' }),
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    // Request URLs carry patient ids: no per-request access log lines.
    logController: new LogController({ disableRequestLogging: true }),
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    frameworkErrors: opts.frameworkErrors ?? pathlessFrameworkError,
  };
  const app = Fastify(serverOpts);

  app.setErrorHandler(jsonErrorHandler);
  if (opts.codeOnlyNotFound) {
    app.setNotFoundHandler((_req, reply) =>
      reply.status(404).send({ code: 'HUB_NOT_FOUND', message: 'no such route', retriable: false }),
    );
  }

  app.get('/health', () => ({ status: 'ok' }));

  app.get('/ready', async (_req, reply) => {
    const checks = opts.readiness ?? {};
    const timeout = opts.readinessTimeoutMs ?? 2000;
    const results: Record<string, { ok: boolean; detail?: string }> = {};
    await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          results[name] = await Promise.race([
            check(),
            new Promise<{ ok: boolean; detail: string }>((resolve) =>
              setTimeout(() => resolve({ ok: false, detail: 'timeout' }), timeout).unref(),
            ),
          ]);
        } catch (err) {
          results[name] = { ok: false, detail: toHubError(err).code };
        }
      }),
    );
    const ok = Object.values(results).every((r) => r.ok);
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not-ready', checks: results });
  });

  if (opts.metrics) {
    const registry = opts.metrics;
    const checks = opts.readiness ?? {};
    const timeout = opts.readinessTimeoutMs ?? 2000;
    // Readiness as a metric, evaluated at scrape time, so that alerts see a
    // dependency (Kafka, registry, Postgres) or a stalled consumer without
    // anyone calling /ready. One per registry: a second app on it keeps the first's.
    if (Object.keys(checks).length > 0 && !registry.getSingleMetric('hub_dependency_up')) {
      new Gauge({
        name: 'hub_dependency_up',
        help: 'Readiness checks of this service: 1 ok, 0 failing (dependency = kafka, registry, postgres, consumer, ...)',
        labelNames: ['dependency'],
        registers: [registry],
        async collect() {
          await Promise.all(
            Object.entries(checks).map(async ([name, check]) => {
              let ok = false;
              try {
                const r = await Promise.race([
                  check(),
                  new Promise<{ ok: boolean }>((resolve) =>
                    setTimeout(() => resolve({ ok: false }), timeout).unref(),
                  ),
                ]);
                ok = r.ok;
              } catch {
                ok = false;
              }
              this.set({ dependency: name }, ok ? 1 : 0);
            }),
          );
        },
      });
    }
    app.get('/metrics', async (_req, reply) => {
      return reply.type(registry.contentType).send(await registry.metrics());
    });
  }
  return app;
}
