import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import { ERROR_CODES, toHubError, type ErrorCode } from '../errors/index.js';
import type { Logger } from '../telemetry/logger.js';

export type ReadinessCheck = () => Promise<{ ok: boolean; detail?: string }>;

export interface HttpAppOptions {
  logger: Logger;
  /** Named dependency checks for /ready: each must answer within the timeout. */
  readiness?: Record<string, ReadinessCheck>;
  metrics?: Registry;
  bodyLimit?: number;
  readinessTimeoutMs?: number;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  HUB_INPUT_INVALID: 400,
  HUB_EVENT_INVALID: 422,
  HUB_NOT_FOUND: 404,
  HUB_UNAUTHENTICATED: 401,
  HUB_FORBIDDEN: 403,
  HUB_AUTH_UNAVAILABLE: 503,
  HUB_KAFKA_UNAVAILABLE: 503,
  HUB_REGISTRY_UNAVAILABLE: 503,
  HUB_DB_UNAVAILABLE: 503,
};

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
  };
  const app = Fastify(serverOpts);

  app.setErrorHandler((err, _req, reply) => {
    const e = err as { statusCode?: number; code?: unknown; message?: string };
    if (e.statusCode && e.statusCode < 500 && !String(e.code).startsWith('HUB_')) {
      // Fastify's own 4xx (bad JSON, body too large, proto poisoning) say
      // nothing about the data, so their message is safe to return.
      return reply
        .status(e.statusCode)
        .send({ code: 'HUB_INPUT_INVALID', message: e.message ?? 'bad request' });
    }
    const h = toHubError(err);
    const status = STATUS[h.code] ?? 500;
    if (status >= 500) app.log.error({ code: h.code, retriable: h.retriable }, 'request failed');
    // Internal errors answer with the code's description, not the message,
    // which could come from a driver and quote data.
    const message = status >= 500 && h.code === 'HUB_INTERNAL' ? ERROR_CODES[h.code].description : h.message;
    return reply.status(status).send({ code: h.code, message, retriable: h.retriable });
  });

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
