import { resolve } from 'node:path';
import {
  loadConfig,
  databaseEnv,
  httpEnv,
  kafkaEnv,
  logEnv,
  topicNamer,
  z,
  schemaNameEnv,
  portEnv,
  startEnv,
} from '../../libs/config/index.js';
import { AUDIT_TOPIC } from '../../libs/audit/topic.js';
import {
  DEV_AUDIENCE,
  DEV_ISSUER,
  cachedVerifier,
  createTokenVerifier,
  ensureDevKeys,
} from '../../libs/auth/jwt.js';
import { createDb } from '../../libs/db/index.js';
import { createEventCodec } from '../../libs/events/codec.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import { createEventProducer } from '../../libs/kafka/producer.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { buildApi } from './app.js';
import { installShutdown, startService } from '../../libs/lifecycle/index.js';

const config = loadConfig(
  z.object({
    ...kafkaEnv,
    ...databaseEnv,
    ...logEnv,
    ...startEnv,
    HTTP_HOST: httpEnv.HTTP_HOST,
    HTTP_PORT: portEnv(8098),
    PUBLIC_BASE_URL: z.url().optional(),
    /** Production: the identity provider's JWKS endpoint. Without it, the local dev key set is used. */
    AUTH_JWKS_URL: z.url().optional(),
    AUTH_DEV_KEYS_DIR: z.string().default('.hub/dev-keys'),
    AUTH_ISSUER: z.string().min(1).default(DEV_ISSUER),
    AUTH_AUDIENCE: z.string().min(1).default(DEV_AUDIENCE),
    PORTAL_SCHEMA: schemaNameEnv('portal'),
    BILLING_SCHEMA: schemaNameEnv('billing'),
    ANALYTICS_SCHEMA: schemaNameEnv('analytics'),
    AUDIT_SCHEMA: schemaNameEnv('audit'),
    AUDIT_TOPIC: z.string().optional(),
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
  }),
);

const topic = topicNamer(config.HUB_TOPIC_SUFFIX);
const logger = createLogger({ name: 'api', level: config.LOG_LEVEL });
const db = createDb(config.DATABASE_URL, { pool: { min: 0, max: 10 } });
const kafka = createKafkaClient({
  brokers: config.KAFKA_BROKERS,
  clientId: config.KAFKA_CLIENT_ID ?? 'api',
  logger,
});
// The producer only writes raw JSON audit records; the codec is never used for them.
const codec = createEventCodec(createRegistryClient(config.SCHEMA_REGISTRY_URL));
const producer = createEventProducer({ kafka, codec, ackTimeoutMs: config.KAFKA_ACK_TIMEOUT_MS });
const metrics = createMetrics();

let stopApi: (() => Promise<void>) | null = null;
installShutdown({
  logger,
  async stop() {
    if (stopApi) await stopApi();
    await producer.disconnect();
    await db.destroy();
  },
});

let verifier;
if (config.AUTH_JWKS_URL) {
  verifier = createTokenVerifier({
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
    jwksUrl: config.AUTH_JWKS_URL,
  });
} else {
  const keys = await ensureDevKeys(resolve(config.AUTH_DEV_KEYS_DIR));
  logger.warn(
    { dir: config.AUTH_DEV_KEYS_DIR },
    'no AUTH_JWKS_URL: accepting tokens signed by the local development key',
  );
  verifier = createTokenVerifier({
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
    jwks: keys.jwks,
  });
}
const api = await buildApi(
  { db, kafka, producer, logger, metrics, verifier: cachedVerifier(verifier) },
  {
    portalSchema: config.PORTAL_SCHEMA,
    billingSchema: config.BILLING_SCHEMA,
    analyticsSchema: config.ANALYTICS_SCHEMA,
    auditSchema: config.AUDIT_SCHEMA,
    auditTopic: config.AUDIT_TOPIC ?? topic(AUDIT_TOPIC),
    auditProjector: config.AUDIT_PROJECTOR,
    clinicalTopics: clinicalTopics(topic),
    ...(config.PUBLIC_BASE_URL ? { publicBaseUrl: config.PUBLIC_BASE_URL.replace(/\/$/, '') } : {}),
    rateLimit: { max: config.RATE_LIMIT_MAX, windowMs: config.RATE_LIMIT_WINDOW_MS },
    queryTimeoutMs: config.QUERY_TIMEOUT_MS,
    bodyLimit: config.BODY_LIMIT,
  },
);
stopApi = () => api.stop();
// Slow clients and stuck requests are cut off rather than holding sockets.
api.http.server.requestTimeout = config.REQUEST_TIMEOUT_MS;
api.http.server.headersTimeout = Math.min(config.REQUEST_TIMEOUT_MS, 10_000);
await startService({
  name: 'api',
  logger,
  http: api.http,
  config,
  producer,
  steps: [
    { name: 'postgres (audit schema) and kafka (audit topic and consumer group)', run: () => api.start() },
  ],
});
