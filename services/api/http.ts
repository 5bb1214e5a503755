import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { AuditSink } from '../../libs/audit/topic.js';
import type { TokenVerifier } from '../../libs/auth/jwt.js';
import { createHttpApp, pathlessFrameworkError, type ReadinessCheck } from '../../libs/http/index.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { AdminReader } from './readers/admin.js';
import type { AnalyticsReader } from './readers/analytics.js';
import type { BillingReader } from './readers/billing.js';
import type { BinaryReader } from './readers/binary.js';
import type { PortalReader } from './readers/portal.js';
import { adminRoutes } from './routes/admin.js';
import { analyticsRoutes } from './routes/analytics.js';
import { billingRoutes } from './routes/billing.js';
import { fhirRoutes } from './routes/fhir.js';
import { fhirSubscriptionRoutes } from './routes/fhir-subscription.js';
import { identityRoutes, type IdentityRoutesOptions } from './routes/identity.js';
import { subscriptionRoutes } from './routes/subscriptions.js';
import { createPatientContexts } from './patient-context.js';
import { badUrlHandler, installSecurity, unroutedHandler, type SecurityOptions } from './security.js';

/** Everything the routes read, behind interfaces: Postgres in production, fakes in `inject` tests. */
export interface ApiReaders {
  portal: PortalReader;
  binaries: BinaryReader;
  billing: BillingReader;
  analytics: AnalyticsReader;
  admin: AdminReader;
}

export interface ApiHttpOptions {
  readers: ApiReaders;
  /** Stable schema of the analytics read model (KPI views are planned over it). */
  analyticsSchema: string;
  verifier: TokenVerifier;
  /** Only `record` is used: one AuditEvent per answer. */
  audit: Pick<AuditSink, 'record'>;
  /** AuditEvent.source.observer. */
  observer: string;
  logger: Logger;
  metrics: Registry;
  readiness?: Record<string, ReadinessCheck>;
  /**
   * Base of Bundle links and fullUrls (`https://api.example.org`): configuration
   * only, never the request's Host or X-Forwarded-* headers ('' gives relative links).
   */
  publicBaseUrl: string;
  rateLimit: { max: number; windowMs: number };
  bodyLimit: number;
  /**
   * Outbound subscriptions (issue 20): the API's database handle and the delivery schema.
   * Without it, /subscriptions and /fhir/Subscription are not served.
   */
  subscriptions?: { db: Knex; schema: string };
  /** The master patient index's steward routes (issue 21). Without it, /identity is not served. */
  identity?: IdentityRoutesOptions;
}

/** Request durations, and the audit records written or refused; labels are templates and codes, never paths. */
function apiMetrics(http: FastifyInstance, registry: Registry) {
  const audited = new Counter({
    name: 'hub_api_audit_events_total',
    help: 'AuditEvents written for API requests, by outcome (0 success, 4 denied/invalid, 8 failed)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const auditFailures = new Counter({
    name: 'hub_api_audit_failures_total',
    help: 'Requests refused with 503 because their AuditEvent could not be written',
    registers: [registry],
  });
  // Paths carry patient ids: route templates only.
  const requestSeconds = new Histogram({
    name: 'hub_api_request_seconds',
    help: 'API request duration by route template and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
    registers: [registry],
  });
  http.addHook('onResponse', (req, reply, done) => {
    requestSeconds.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });
  return { audited, auditFailures };
}

/** OpenAPI 3 at /docs/json, browsable at /docs: every route registered after this is listed. */
async function registerDocs(http: FastifyInstance): Promise<void> {
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
}

/**
 * The query API's HTTP surface over its readers: shared health/ready/metrics,
 * docs, the security hooks (authentication, authorization, audit) on the
 * root so that every route plugin is under them, the rate limit, and one
 * encapsulated plugin per area (FHIR answers OperationOutcome, the others JSON).
 */
export async function buildApiHttp(o: ApiHttpOptions): Promise<FastifyInstance> {
  // The router's refusals (an undecodable URL) are audited like unrouted requests, once security is set up.
  let badUrl: ReturnType<typeof badUrlHandler> | null = null;
  const http = createHttpApp({
    logger: o.logger,
    metrics: o.metrics,
    bodyLimit: o.bodyLimit,
    ...(o.readiness ? { readiness: o.readiness } : {}),
    frameworkErrors: (err, req, reply) => {
      if (badUrl) void badUrl(err, req, reply);
      else pathlessFrameworkError(err, req, reply);
    },
  });
  const { audited, auditFailures } = apiMetrics(http, o.metrics);
  await registerDocs(http);
  const security: SecurityOptions = {
    verifier: o.verifier,
    audit: o.audit,
    observer: o.observer,
    logger: o.logger,
    patientContexts: createPatientContexts({ lookup: (id) => o.readers.portal.patientContext(id) }),
    onAudit: (outcome) => audited.inc({ outcome }),
    onAuditFailure: () => auditFailures.inc(),
  };
  installSecurity(http, security);
  badUrl = badUrlHandler(security);
  // After the auth hook, so the limit is per verified token holder; per address otherwise.
  await http.register(rateLimit, {
    global: true,
    max: o.rateLimit.max,
    timeWindow: o.rateLimit.windowMs,
    // One bucket per user of each client application: a portal app's patients do not share one limit.
    keyGenerator: (req: FastifyRequest) =>
      req.principal ? `client:${req.principal.clientId}:${req.principal.subject}` : `ip:${req.ip}`,
    allowList: (req: FastifyRequest) => !req.routeOptions.config.security,
  });
  // Unrouted requests under a PHI area are audited, and limited like the routes (the limiter's own
  // hook does not run on not-found answers).
  http.setNotFoundHandler({ preHandler: http.rateLimit() }, unroutedHandler(security));

  const publicBaseUrl = o.publicBaseUrl;
  const baseUrl = () => publicBaseUrl;
  const { portal, binaries, billing, analytics, admin } = o.readers;
  await http.register(fhirRoutes, { prefix: '/fhir', reader: portal, binaries, baseUrl });
  await http.register(billingRoutes, { prefix: '/billing', reader: billing, baseUrl });
  await http.register(analyticsRoutes, {
    prefix: '/analytics',
    schema: o.analyticsSchema,
    reader: analytics,
  });
  await http.register(adminRoutes, { prefix: '/admin', reader: admin });
  if (o.subscriptions) {
    const { db, schema } = o.subscriptions;
    await http.register(subscriptionRoutes, { prefix: '/subscriptions', db, schema });
    await http.register(fhirSubscriptionRoutes, { prefix: '/fhir', db, schema, baseUrl });
  }
  if (o.identity) await http.register(identityRoutes, { prefix: '/identity', ...o.identity });
  return http;
}
