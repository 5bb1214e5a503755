import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import type { Knex } from 'knex';
import { createAuditSink, ensureAuditTopic } from '../../libs/audit/topic.js';
import type { TokenVerifier } from '../../libs/auth/jwt.js';
import { loadFhirDefinitions } from '../../libs/fhir/validate.js';
import { resourceValidator } from '../../libs/fhir/validate-pool.js';
import { createFhirStore, type FhirStore } from '../../libs/fhir/import/store.js';
import { createHttpApp, postgresReady } from '../../libs/http/index.js';
import type { IdentityPolicy } from '../../libs/identity/index.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import type { TransactionalProducer } from '../../libs/kafka/transactional.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';
import type { FhirClients } from './clients.js';
import { bundleRoutes } from './routes/bundles.js';
import { importRoutes } from './routes/import.js';
import { resourceRoutes } from './routes/resources.js';
import {
  badUrlHandler,
  callerOf,
  installIngestSecurity,
  unroutedHandler,
  type IngestSecurityOptions,
} from './security.js';
import { advisoryLock } from './lock.js';
import { createWriter } from './writer.js';

export interface FhirAdapterDeps {
  db: Knex;
  kafka: KafkaClient;
  producer: EventProducer;
  txProducer: TransactionalProducer;
  logger: Logger;
  metrics: HubMetrics;
  policy: IdentityPolicy;
  /** Bearer tokens of the backend clients (audience hub-ingest by default, libs/auth/env). */
  verifier: TokenVerifier;
  clock?: () => number;
  /**
   * A pool of its own for the write locks across instances (lock.ts advisoryLock); absent,
   * writes are serialised in this process only (one instance).
   */
  lockDb?: Knex | undefined;
}

export interface FhirAdapterConfig {
  /** Postgres schema of the adapter's store. */
  schema: string;
  dlqTopic: string;
  /** Where every request's AuditEvent goes (the API's audit topic). */
  auditTopic: string;
  /** client_id → the source systems it may write as (FHIR_CLIENTS_FILE). */
  clients: FhirClients;
  /** The source system of resources stored before each was recorded with its own (FHIR_SOURCE_SYSTEM). */
  sourceSystem: string;
  /** Largest accepted request body for resources and bundles (bytes); above it: 413. */
  maxBodyBytes: number;
  /** Public base URL for links (Location, fullUrl); relative links when absent, never the Host header. */
  baseUrl?: string;
  importChunkSize?: number;
  /** The most bytes of one $import body (FHIR_IMPORT_MAX_BYTES); default 1 GiB. */
  importMaxBytes?: number;
  /** Worker threads that validate Bundle entries (FHIR_VALIDATE_THREADS); 0 or absent: on the request thread. */
  validateThreads?: number;
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

/** hub_fhir_audit_failures_total: answers replaced by a 503 because their AuditEvent was not written. */
function auditFailureCounter(metrics: HubMetrics): Counter {
  return (
    (metrics.registry.getSingleMetric('hub_fhir_audit_failures_total') as Counter | undefined) ??
    new Counter({
      name: 'hub_fhir_audit_failures_total',
      help: 'FHIR adapter answers refused (503) because their AuditEvent could not be written',
      registers: [metrics.registry],
    })
  );
}

/**
 * The adapter's HTTP surface: health/ready/metrics from libs/http, then the FHIR
 * routes (routes/*.ts), each an encapsulated plugin with its own body parsing and
 * error handler, all under the security hooks (security.ts: bearer token, client,
 * scopes, audit) and counted in hub_fhir_requests_total.
 */
export function buildFhirAdapter(deps: FhirAdapterDeps, cfg: FhirAdapterConfig): FhirAdapter {
  const clock = deps.clock ?? Date.now;
  const log = deps.logger.child({ svc: 'adapter-fhir' });
  const store = createFhirStore(deps.db, cfg.schema);
  const auditFailures = auditFailureCounter(deps.metrics);
  const security: IngestSecurityOptions = {
    verifier: deps.verifier,
    clients: cfg.clients,
    audit: createAuditSink(deps.producer, cfg.auditTopic),
    observer: 'adapter-fhir',
    logger: log,
    onAuditFailure: () => auditFailures.inc(),
  };
  const badUrl = badUrlHandler(security);
  const http = createHttpApp({
    logger: log,
    metrics: deps.metrics.registry,
    bodyLimit: cfg.maxBodyBytes,
    // An undecodable URL or an over-long id: 400 OperationOutcome, audited, without the path.
    frameworkErrors: (err, req, reply) => void badUrl(err, req, reply),
    readiness: {
      postgres: postgresReady(deps.db),
      // A hung broker shows here, not only in each request's 503.
      kafka: () => {
        const h = deps.producer.health();
        return Promise.resolve(h.ok ? deps.txProducer.health() : h);
      },
    },
  });
  const across = deps.lockDb ? advisoryLock(deps.lockDb, cfg.schema) : undefined;
  const writer = createWriter({ ...deps, store, clock, across });
  const count = requestCounter(deps.metrics);
  const validator = resourceValidator(cfg.validateThreads ?? 0);
  // Every path but health, ready and metrics is a FHIR one: an unrouted request is audited (404, no path echoed).
  http.setNotFoundHandler(unroutedHandler(security));

  void http.register(async (fhir) => {
    fhir.addHook('onResponse', count);
    installIngestSecurity(fhir, security);
    const { maxBodyBytes, baseUrl } = cfg;
    await fhir.register(resourceRoutes, { store, writer, maxBodyBytes, baseUrl, clock, callerOf });
    await fhir.register(bundleRoutes, { writer, maxBodyBytes, baseUrl, callerOf, validator });
    await fhir.register(importRoutes, {
      sourceSystemOf: (req) => callerOf(req).sourceSystem,
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
      maxImportBytes: cfg.importMaxBytes,
      maxBodyBytes,
      onDeadLetters: (n) => deps.metrics.deadLetters.inc({ consumer: 'fhir-import', reason: 'invalid' }, n),
    });
  });

  return {
    http,
    store,
    async start() {
      loadFhirDefinitions();
      await store.migrate({ unownedSourceSystem: cfg.sourceSystem });
      await ensureTopics(deps.kafka, [{ name: cfg.dlqTopic, partitions: 1, retentionMs: -1 }]);
      await ensureAuditTopic(deps.kafka, cfg.auditTopic);
    },
    async stop() {
      await http.close();
      await validator.close();
    },
  };
}
