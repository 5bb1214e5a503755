// Entry point: config, connections, signals and start-up are the shared service kit's (libs/service).
import { databaseEnv, schemaNameEnv, z } from '../../libs/config/index.js';
import { auditTrailEnv, chainKeyFromEnv } from '../../libs/audit/key.js';
import { AUDIT_TOPIC, auditDlqTopic } from '../../libs/audit/topic.js';
import { authEnv, verifierFromEnv } from '../../libs/auth/env.js';
import { IDENTITY_SCHEMA } from '../../libs/identity/store.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { runService } from '../../libs/service/index.js';
import { heapEnv } from '../../libs/service/runtime.js';
import { buildApi } from './app.js';

/**
 * The base of Bundle links: PUBLIC_BASE_URL, else the address the API listens
 * on (a wildcard address as localhost). Never a request's Host header, which
 * any client sets: set PUBLIC_BASE_URL behind a proxy or on a public name.
 */
function publicBaseUrlOf(c: { PUBLIC_BASE_URL?: string | undefined; HTTP_HOST: string; HTTP_PORT: number }) {
  if (c.PUBLIC_BASE_URL) return c.PUBLIC_BASE_URL.replace(/\/+$/, '');
  const host = c.HTTP_HOST === '0.0.0.0' || c.HTTP_HOST === '::' ? 'localhost' : c.HTTP_HOST;
  return `http://${host.includes(':') ? `[${host}]` : host}:${c.HTTP_PORT}`;
}

await runService({
  name: 'api',
  port: 8098,
  env: {
    ...databaseEnv,
    PUBLIC_BASE_URL: z.url().optional(),
    ...authEnv(),
    PORTAL_SCHEMA: schemaNameEnv('portal'),
    BILLING_SCHEMA: schemaNameEnv('billing'),
    ANALYTICS_SCHEMA: schemaNameEnv('analytics'),
    AUDIT_SCHEMA: schemaNameEnv('audit'),
    DELIVERY_SCHEMA: schemaNameEnv('delivery'),
    IDENTITY_SCHEMA: schemaNameEnv(IDENTITY_SCHEMA),
    AUDIT_TOPIC: z.string().optional(),
    ...auditTrailEnv,
    AUDIT_PROJECTOR: z
      .enum(['true', 'false'])
      .default('true')
      .transform((v) => v === 'true'),
    RATE_LIMIT_MAX: z.coerce.number().int().min(1).default(1200),
    RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(100).default(60_000),
    QUERY_TIMEOUT_MS: z.coerce.number().int().min(50).default(5000),
    REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(15_000),
    BODY_LIMIT: z.coerce
      .number()
      .int()
      .min(1024)
      .default(16 * 1024),
    // Above the kit's 160: the first FHIR Subscription loads the FHIR definitions (about 136 MiB
    // while they are parsed) beside the API's own objects; at 160 that load fit beside 60 MiB of
    // other live objects and ran out of heap beside 80.
    NODE_HEAP_MB: heapEnv(192),
  },
  // The producer only writes raw JSON audit records: the shared one, without event topics.
  connect: async (k) => ({
    db: k.database(k.config.DATABASE_URL, { pool: { min: 0, max: 10 } }),
    verifier: await verifierFromEnv(k.config, k.logger),
  }),
  build: async (k, c) => {
    const cfg = k.config;
    const api = await buildApi(
      { ...c, kafka: k.kafka, producer: k.producer, logger: k.logger, metrics: k.metrics },
      {
        portalSchema: cfg.PORTAL_SCHEMA,
        billingSchema: cfg.BILLING_SCHEMA,
        analyticsSchema: cfg.ANALYTICS_SCHEMA,
        auditSchema: cfg.AUDIT_SCHEMA,
        deliverySchema: cfg.DELIVERY_SCHEMA,
        identitySchema: cfg.IDENTITY_SCHEMA,
        auditTopic: cfg.AUDIT_TOPIC ?? k.topic(AUDIT_TOPIC),
        auditProjector: cfg.AUDIT_PROJECTOR,
        auditDlqTopic: cfg.AUDIT_DLQ_TOPIC ?? auditDlqTopic(k.topic),
        auditChainKey: chainKeyFromEnv(cfg, k.logger),
        auditLag: { maxLag: cfg.AUDIT_MAX_LAG, stallMs: cfg.AUDIT_STALL_MS },
        clinicalTopics: clinicalTopics(k.topic),
        publicBaseUrl: publicBaseUrlOf(cfg),
        rateLimit: { max: cfg.RATE_LIMIT_MAX, windowMs: cfg.RATE_LIMIT_WINDOW_MS },
        queryTimeoutMs: cfg.QUERY_TIMEOUT_MS,
        bodyLimit: cfg.BODY_LIMIT,
      },
    );
    // Slow clients and stuck requests are cut off rather than holding sockets.
    api.http.server.requestTimeout = cfg.REQUEST_TIMEOUT_MS;
    api.http.server.headersTimeout = Math.min(cfg.REQUEST_TIMEOUT_MS, 10_000);
    return {
      http: api.http,
      steps: [
        {
          name: 'postgres (audit, delivery and identity schemas) and kafka (audit topic and consumer group)',
          run: () => api.start(),
        },
      ],
      stop: () => api.stop(),
    };
  },
});
