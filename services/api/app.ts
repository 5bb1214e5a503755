import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import { Counter, Histogram } from 'prom-client';
import { migrateAudit } from '../../libs/audit/store.js';
import {
  createAuditProjector,
  createAuditSink,
  ensureAuditTopic,
  type AuditProjector,
} from '../../libs/audit/topic.js';
import type { TokenVerifier } from '../../libs/auth/jwt.js';
import { createHttpApp } from '../../libs/http/index.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';
import { adminRoutes } from './admin.js';
import { analyticsRoutes } from './analytics.js';
import { billingRoutes } from './billing.js';
import { createBinaryReader } from './binary.js';
import { fhirRoutes } from './fhir.js';
import { createPortalReader } from './queries.js';
import { installSecurity } from './security.js';

export interface ApiDeps {
  db: Knex;
  kafka: KafkaClient;
  producer: EventProducer;
  logger: Logger;
  metrics: HubMetrics;
  verifier: TokenVerifier;
}

export interface ApiConfig {
  /** Stable schemas of the read models (views that follow rebuilds). */
  portalSchema: string;
  billingSchema: string;
  analyticsSchema: string;
  /** Where the audit table lives (created by the API's migration). */
  auditSchema: string;
  auditTopic: string;
  /** Run the audit-topic → table projector in this process. */
  auditProjector: boolean;
  auditGroupId?: string;
  /** Clinical topic names, for the who-reads-what view. */
  clinicalTopics: readonly string[];
  /** Absolute base for Bundle links (`https://api.example.org`); from the Host header if absent. */
  publicBaseUrl?: string;
  rateLimit: { max: number; windowMs: number };
  queryTimeoutMs: number;
  bodyLimit: number;
  observer?: string;
}

export interface Api {
  http: FastifyInstance;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The query API: FHIR portal, billing, analytics and admin routes over the
 * read models, every PHI request authenticated, scoped and audited. Built
 * from injected clients; main.ts owns config, connections and signals.
 */
export async function buildApi(deps: ApiDeps, cfg: ApiConfig): Promise<Api> {
  const log = deps.logger.child({ svc: 'api' });
  let projector: AuditProjector | null = null;
  const http = createHttpApp({
    logger: log,
    metrics: deps.metrics.registry,
    bodyLimit: cfg.bodyLimit,
    readiness: {
      postgres: async () => {
        await deps.db.raw('select 1');
        return { ok: true };
      },
      audit: () => {
        if (!cfg.auditProjector) return Promise.resolve({ ok: true });
        if (!projector) return Promise.resolve({ ok: false, detail: 'starting' });
        // The consumer polls every 100 ms even when idle; silence means it is stuck or gone.
        const idle = Date.now() - projector.lastProgressAt();
        return Promise.resolve(
          idle < 60_000 ? { ok: true } : { ok: false, detail: `no progress for ${idle} ms` },
        );
      },
    },
  });
  const audited = new Counter({
    name: 'hub_api_audit_events_total',
    help: 'AuditEvents written for API requests, by outcome (0 success, 4 denied/invalid, 8 failed)',
    labelNames: ['outcome'],
    registers: [deps.metrics.registry],
  });
  const auditFailures = new Counter({
    name: 'hub_api_audit_failures_total',
    help: 'Requests refused with 503 because their AuditEvent could not be written',
    registers: [deps.metrics.registry],
  });

  // Labels are route templates and status codes, never paths: paths carry patient ids.
  const requestSeconds = new Histogram({
    name: 'hub_api_request_seconds',
    help: 'API request duration by route template and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
    registers: [deps.metrics.registry],
  });
  http.addHook('onResponse', (req, reply, done) => {
    requestSeconds.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });

  await http.register(swagger, {
    openapi: {
      info: {
        title: 'Clinical hub query API',
        version: '0.1.0',
        description:
          'Patient portal (FHIR R4), billing and analytics read APIs. Bearer JWT with SMART-style scopes; every request on PHI is audited.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      security: [{ bearer: [] }],
    },
  });
  await http.register(swaggerUi, { routePrefix: '/docs' });

  installSecurity(http, {
    verifier: deps.verifier,
    audit: createAuditSink(deps.producer, cfg.auditTopic),
    observer: cfg.observer ?? 'hub-api',
    logger: log,
    onAudit: (outcome) => audited.inc({ outcome }),
    onAuditFailure: () => auditFailures.inc(),
  });

  // After the auth hook, so the limit is per verified token holder; per address otherwise.
  await http.register(rateLimit, {
    global: true,
    max: cfg.rateLimit.max,
    timeWindow: cfg.rateLimit.windowMs,
    // One bucket per user of each client application: a portal app's patients do not share one limit.
    keyGenerator: (req: FastifyRequest) =>
      req.principal ? `client:${req.principal.clientId}:${req.principal.subject}` : `ip:${req.ip}`,
    allowList: (req: FastifyRequest) => !req.routeOptions.config.security,
  });

  const baseUrl = (req: FastifyRequest) => cfg.publicBaseUrl ?? `${req.protocol}://${req.host}`;
  const reader = createPortalReader(deps.db, cfg.portalSchema, cfg.queryTimeoutMs);
  const binaries = createBinaryReader(deps.db, cfg.portalSchema, cfg.queryTimeoutMs);
  await http.register(fhirRoutes, { prefix: '/fhir', reader, binaries, logger: log, baseUrl });
  await http.register(billingRoutes, {
    prefix: '/billing',
    db: deps.db,
    schema: cfg.billingSchema,
    timeoutMs: cfg.queryTimeoutMs,
    baseUrl,
  });
  await http.register(analyticsRoutes, {
    prefix: '/analytics',
    db: deps.db,
    schema: cfg.analyticsSchema,
    timeoutMs: cfg.queryTimeoutMs,
  });
  await http.register(adminRoutes, {
    prefix: '/admin',
    db: deps.db,
    auditSchema: cfg.auditSchema,
    kafka: deps.kafka,
    clinicalTopics: cfg.clinicalTopics,
  });

  return {
    http,
    async start() {
      await migrateAudit(deps.db, cfg.auditSchema);
      await ensureAuditTopic(deps.kafka, cfg.auditTopic);
      if (cfg.auditProjector) {
        const p = createAuditProjector({
          kafka: deps.kafka,
          db: deps.db,
          schema: cfg.auditSchema,
          topic: cfg.auditTopic,
          groupId: cfg.auditGroupId ?? `hub.audit.projector.${cfg.auditSchema}`,
          logger: log,
        });
        try {
          await p.start();
        } catch (err) {
          // A half-started consumer is let go, so that start() can be tried again.
          await p.stop().catch(() => undefined);
          throw err;
        }
        projector = p;
      }
      await http.ready();
    },
    async stop() {
      await http.close();
      const p = projector;
      projector = null;
      if (p) await p.stop();
    },
  };
}
