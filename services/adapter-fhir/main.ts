import { hostname } from 'node:os';
import {
  databaseEnv,
  httpEnv,
  kafkaEnv,
  loadConfig,
  logEnv,
  topicNamer,
  z,
  schemaNameEnv,
  portEnv,
  startEnv,
} from '../../libs/config/index.js';
import { createDb } from '../../libs/db/index.js';
import { EVENT_CONTRACTS } from '../../libs/events/index.js';
import { createEventCodec } from '../../libs/events/codec.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import {
  deprecatedIdentityVariables,
  identityEnvDeprecation,
  identityPolicyFromSite,
} from '../../libs/identity/index.js';
import { siteConfigFromEnv } from '../../libs/site-config/index.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import { createEventProducer } from '../../libs/kafka/producer.js';
import { createTransactionalProducer } from '../../libs/kafka/transactional.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { createMetrics, producerMetricsHooks } from '../../libs/telemetry/metrics.js';
import { buildFhirAdapter } from './app.js';
import { installShutdown, startService } from '../../libs/lifecycle/index.js';

const config = loadConfig(
  z.object({
    ...kafkaEnv,
    ...databaseEnv,
    ...logEnv,
    ...startEnv,
    HTTP_HOST: httpEnv.HTTP_HOST,
    HTTP_PORT: portEnv(8093),
    FHIR_STORE_SCHEMA: schemaNameEnv('adapter_fhir'),
    // A DiagnosticReport carries its PDF base64 in presentedForm (docs/large-messages.md): 24 MiB
    // of JSON is at most 18 MiB of content, under the attachment topic's 20 MiB max.message.bytes.
    FHIR_MAX_BODY_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(24 * 1024 * 1024),
    FHIR_SOURCE_SYSTEM: z.string().min(1).default('fhir-api'),
    FHIR_BASE_URL: z.url().optional(),
    FHIR_TRANSACTIONAL_ID: z.string().min(1).optional(),
    FHIR_IMPORT_CHUNK_SIZE: z.coerce.number().int().min(1).max(10_000).default(1000),
    DLQ_TOPIC: z.string().optional(),
    /** Path of the site configuration (JSON or YAML): assigning authorities, enterprise systems. */
    HUB_SITE_CONFIG: z.string().optional(),
    /** Deprecated (one release): use `enterpriseSystems` / `authorities` in HUB_SITE_CONFIG. */
    HUB_ENTERPRISE_ID_SYSTEMS: z.string().optional(),
    HUB_AUTHORITY_ALIASES: z.string().optional(),
  }),
);
// Validated once here (HUB_CONFIG_INVALID listing every problem); unset: no registered authorities.
const site = siteConfigFromEnv(config.HUB_SITE_CONFIG);
const policy = identityPolicyFromSite(site, config);

const topic = topicNamer(config.HUB_TOPIC_SUFFIX);
const topicFor = (t: keyof typeof EVENT_CONTRACTS) => topic(EVENT_CONTRACTS[t].topic);
const logger = createLogger({ name: 'adapter-fhir', level: config.LOG_LEVEL });
const deprecation = identityEnvDeprecation(config);
if (deprecation) logger.warn({ deprecated: deprecatedIdentityVariables(config) }, deprecation);
const metrics = createMetrics();
const db = createDb(config.DATABASE_URL);
const kafka = createKafkaClient({
  brokers: config.KAFKA_BROKERS,
  clientId: config.KAFKA_CLIENT_ID ?? 'adapter-fhir',
  logger,
});
const codec = createEventCodec(createRegistryClient(config.SCHEMA_REGISTRY_URL));
const producer = createEventProducer({
  kafka,
  codec,
  topicFor,
  onPublished: (t, type, n) => metrics.eventsPublished.inc({ topic: t, type }, n),
  ...producerMetricsHooks(metrics),
  ackTimeoutMs: config.KAFKA_ACK_TIMEOUT_MS,
});
const txProducer = createTransactionalProducer({
  kafka,
  codec,
  topicFor,
  // Stable per host so that a restarted instance fences its predecessor's open transaction.
  transactionalId: config.FHIR_TRANSACTIONAL_ID ?? `adapter-fhir-${hostname()}-${topic('tx')}`,
  ackTimeoutMs: config.KAFKA_ACK_TIMEOUT_MS,
});
const svc = buildFhirAdapter(
  {
    db,
    kafka,
    producer,
    txProducer,
    logger,
    metrics,
    policy,
  },
  {
    schema: config.FHIR_STORE_SCHEMA,
    dlqTopic: config.DLQ_TOPIC ?? topic('hub.dlq.adapter-fhir'),
    sourceSystem: config.FHIR_SOURCE_SYSTEM,
    maxBodyBytes: config.FHIR_MAX_BODY_BYTES,
    importChunkSize: config.FHIR_IMPORT_CHUNK_SIZE,
    ...(config.FHIR_BASE_URL ? { baseUrl: config.FHIR_BASE_URL.replace(/\/+$/, '') } : {}),
  },
);

installShutdown({
  logger,
  async stop() {
    await svc.stop();
    await producer.disconnect();
    await txProducer.disconnect();
    await db.destroy();
  },
});

await startService({
  name: 'adapter-fhir',
  logger,
  http: svc.http,
  config,
  producer,
  steps: [
    // initTransactions: the transaction coordinator is "loading" on a fresh broker.
    { name: 'kafka (transaction coordinator)', run: () => txProducer.connect() },
    { name: 'schema registry (event schemas)', run: () => codec.warmUp(undefined, topicFor) },
    { name: 'postgres (resource store) and dead-letter topic', run: () => svc.start() },
  ],
  readyFields: () => ({ schema: config.FHIR_STORE_SCHEMA }),
});
