import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import type { Knex } from 'knex';
import { loadFhirDefinitions } from '../../libs/fhir/validate.js';
import { createFhirStore, type FhirStore } from '../../libs/fhir/import/store.js';
import { createHttpApp } from '../../libs/http/index.js';
import type { IdentityPolicy } from '../../libs/identity/index.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import type { TransactionalProducer } from '../../libs/kafka/transactional.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';
import { bundleRoutes } from './routes/bundles.js';
import { importRoutes } from './routes/import.js';
import { resourceRoutes } from './routes/resources.js';
import { createWriter } from './writer.js';

export interface FhirAdapterDeps {
  db: Knex;
  kafka: KafkaClient;
  producer: EventProducer;
  txProducer: TransactionalProducer;
  logger: Logger;
  metrics: HubMetrics;
  policy: IdentityPolicy;
  clock?: () => number;
}

export interface FhirAdapterConfig {
  /** Postgres schema of the adapter's store. */
  schema: string;
  dlqTopic: string;
  /** EventMeta.source.system of everything this adapter publishes. */
  sourceSystem: string;
  /** Largest accepted request body for resources and bundles (bytes); above it: 413. */
  maxBodyBytes: number;
  /** Absolute base URL for Location headers; derived from the request when absent. */
  baseUrl?: string;
  importChunkSize?: number;
}

export interface FhirAdapter {
  http: FastifyInstance;
  store: FhirStore;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** hub_fhir_requests_total: route patterns and status codes only, never ids or values from a request. */
function requestCounter(metrics: HubMetrics) {
  const requests =
    (metrics.registry.getSingleMetric('hub_fhir_requests_total') as
      Counter<'route' | 'method' | 'status'> | undefined) ??
    new Counter({
      name: 'hub_fhir_requests_total',
      help: 'FHIR adapter requests by route pattern, method and HTTP status',
      labelNames: ['route', 'method', 'status'],
      registers: [metrics.registry],
    });
  return (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    requests.inc({
      route: req.routeOptions.url ?? 'unknown',
      method: req.method,
      status: String(reply.statusCode),
    });
    done();
  };
}

/**
 * The adapter's HTTP surface: health/ready/metrics from libs/http, then the FHIR
 * routes (routes/*.ts), each an encapsulated plugin with its own body parsing and
 * error handler, all counted in hub_fhir_requests_total.
 */
export function buildFhirAdapter(deps: FhirAdapterDeps, cfg: FhirAdapterConfig): FhirAdapter {
  const clock = deps.clock ?? Date.now;
  const log = deps.logger.child({ svc: 'adapter-fhir' });
  const store = createFhirStore(deps.db, cfg.schema);
  const http = createHttpApp({
    logger: log,
    metrics: deps.metrics.registry,
    bodyLimit: cfg.maxBodyBytes,
    readiness: {
      postgres: async () => {
        await deps.db.raw('select 1');
        return { ok: true };
      },
      // A hung broker shows here, not only in each request's 503.
      kafka: () => {
        const h = deps.producer.health();
        return Promise.resolve(h.ok ? deps.txProducer.health() : h);
      },
    },
  });
  const writer = createWriter({ ...deps, store, sourceSystem: cfg.sourceSystem, clock });
  const count = requestCounter(deps.metrics);

  void http.register(async (fhir) => {
    fhir.addHook('onResponse', count);
    const { maxBodyBytes, baseUrl } = cfg;
    await fhir.register(resourceRoutes, { store, writer, maxBodyBytes, baseUrl, clock });
    await fhir.register(bundleRoutes, { writer, maxBodyBytes, baseUrl });
    await fhir.register(importRoutes, {
      deps: {
        store,
        producer: deps.producer,
        policy: deps.policy,
        sourceSystem: cfg.sourceSystem,
        dlqTopic: cfg.dlqTopic,
        logger: log,
        clock,
      },
      chunkSize: cfg.importChunkSize,
      maxBodyBytes,
      onDeadLetters: (n) => deps.metrics.deadLetters.inc({ consumer: 'fhir-import', reason: 'invalid' }, n),
    });
  });

  return {
    http,
    store,
    async start() {
      loadFhirDefinitions();
      await store.migrate();
      await ensureTopics(deps.kafka, [
        { name: cfg.dlqTopic, partitions: 1, replicationFactor: 1, retentionMs: -1 },
      ]);
    },
    async stop() {
      await http.close();
    },
  };
}
