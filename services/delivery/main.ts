// Entry point: the shared service kit validates the environment once, makes
// the clients and runs start-up; this file says what is delivery's own.
import { AUDIT_TOPIC } from '../../libs/audit/topic.js';
import { databaseEnv, schemaNameEnv, z } from '../../libs/config/index.js';
import { parseDestinations } from '../../libs/delivery/destinations.js';
import { DELIVERY_SCHEMA } from '../../libs/delivery/store.js';
import { dlqTopicFor } from '../../libs/kafka/dlq.js';
import { runService } from '../../libs/service/index.js';
import { producerMetricsHooks } from '../../libs/telemetry/metrics.js';
import { buildDeliveryService } from './app.js';

await runService({
  name: 'delivery',
  port: 8099,
  env: {
    ...databaseEnv,
    DELIVERY_SCHEMA: schemaNameEnv(DELIVERY_SCHEMA),
    PORTAL_SCHEMA: schemaNameEnv('portal'),
    /**
     * Comma-separated host, host:port or *.domain a subscription may send to;
     * unset: any. A subscription elsewhere is not started (health error,
     * reason destination-not-allowed).
     */
    DELIVERY_ALLOWED_DESTINATIONS: z
      .string()
      .optional()
      .transform((v, ctx) => {
        try {
          return v === undefined ? null : parseDestinations(v);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : 'invalid' });
          return z.NEVER;
        }
      }),
    /** The API's public base URL (as the API's PUBLIC_BASE_URL): FHIR notifications reference <base>/fhir/<type>/<id>. */
    PUBLIC_BASE_URL: z.url().default('http://127.0.0.1:8098'),
    AUDIT_TOPIC: z.string().optional(),
    DLQ_TOPIC: z.string().optional(),
    /** How often the service looks for new, changed and deleted subscriptions. */
    DELIVERY_POLL_MS: z.coerce.number().int().min(100).max(60_000).default(1_000),
  },
  producer: (k) => producerMetricsHooks(k.metrics),
  connect: (k) => ({ db: k.database(k.config.DATABASE_URL, { pool: { min: 0, max: 10 } }) }),
  build: (k, { db }) => {
    const cfg = k.config;
    const svc = buildDeliveryService(
      { db, kafka: k.kafka, codec: k.codec, producer: k.producer, logger: k.logger, metrics: k.metrics },
      {
        schema: cfg.DELIVERY_SCHEMA,
        auditTopic: cfg.AUDIT_TOPIC ?? k.topic(AUDIT_TOPIC),
        dlqTopic: cfg.DLQ_TOPIC ?? dlqTopicFor('delivery', k.topic),
        topic: k.topic,
        pollMs: cfg.DELIVERY_POLL_MS,
        fhirBase: `${cfg.PUBLIC_BASE_URL.replace(/\/+$/, '')}/fhir`,
        portalSchema: cfg.PORTAL_SCHEMA,
        destinations: cfg.DELIVERY_ALLOWED_DESTINATIONS,
      },
    );
    return {
      http: svc.http,
      steps: [{ name: 'postgres (delivery schema), audit topic and subscriptions', run: () => svc.start() }],
      stop: () => svc.stop(),
      readyFields: () => ({ subscriptions: svc.supervisor.running().size }),
    };
  },
});
