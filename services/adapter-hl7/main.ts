import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  httpEnv,
  kafkaEnv,
  loadConfig,
  logEnv,
  topicNamer,
  z,
  portEnv,
  startEnv,
} from '../../libs/config/index.js';
import { createEventCodec } from '../../libs/events/codec.js';
import {
  INGEST_TOPICS,
  catalogTopicDefinitions,
  largeRecordTopicBytes,
} from '../../libs/events/contracts.js';
import { EVENT_CONTRACTS } from '../../libs/events/index.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../../libs/hl7/mllp.js';
import {
  deprecatedIdentityVariables,
  identityEnvDeprecation,
  identityPolicyFromSite,
} from '../../libs/identity/index.js';
import { senderTimeZones, siteConfigFromEnv } from '../../libs/site-config/index.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import { createEventProducer } from '../../libs/kafka/producer.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { createMetrics, producerMetricsHooks } from '../../libs/telemetry/metrics.js';
import { buildHl7Adapter } from './app.js';
import { installShutdown, startService } from '../../libs/lifecycle/index.js';

const config = loadConfig(
  z
    .object({
      ...kafkaEnv,
      ...logEnv,
      ...startEnv,
      HTTP_HOST: httpEnv.HTTP_HOST,
      HTTP_PORT: portEnv(8092),
      MLLP_HOST: z.string().default('127.0.0.1'),
      MLLP_PORT: portEnv(2575),
      MLLP_TLS_CERT: z.string().min(1).optional(),
      MLLP_TLS_KEY: z.string().min(1).optional(),
      // 16 MiB: lab and imaging systems send PDF reports as base64 ED in OBX-5 (1-10 MB is
      // normal). Above 64 MiB one message would approach Kafka's 100 MiB request limit
      // (raw copy + decoded attachment); see docs/large-messages.md.
      MLLP_MAX_MESSAGE_BYTES: z.coerce
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(DEFAULT_MAX_MESSAGE_BYTES),
      MLLP_FRAME_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
      MLLP_MAX_CONNECTIONS: z.coerce.number().int().min(1).default(1000),
      MLLP_STOP_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
      HL7_RECENT_IDS: z.coerce.number().int().min(0).default(100_000),
      KAFKA_PRODUCER_RETRIES: z.coerce.number().int().min(0).max(20).default(5),
      /** Path of the site configuration (JSON or YAML): sender time zones, assigning authorities. */
      HUB_SITE_CONFIG: z.string().optional(),
      /** Deprecated (one release): use `enterpriseSystems` / `authorities` in HUB_SITE_CONFIG. */
      HUB_ENTERPRISE_ID_SYSTEMS: z.string().optional(),
      HUB_AUTHORITY_ALIASES: z.string().optional(),
    })
    .refine((c) => Boolean(c.MLLP_TLS_CERT) === Boolean(c.MLLP_TLS_KEY), {
      message: 'MLLP_TLS_CERT and MLLP_TLS_KEY go together',
      path: ['MLLP_TLS_CERT'],
    }),
);

// Refuses to start (HUB_CONFIG_INVALID) on an invalid file, and without a time zone: HL7 v2 times
// without an offset are the sender's local time, and assuming UTC would shift every one of them.
const site = siteConfigFromEnv(config.HUB_SITE_CONFIG);
const timeZoneFor = senderTimeZones(site, config.HUB_SITE_CONFIG);
const policy = identityPolicyFromSite(site, config);

const topic = topicNamer(config.HUB_TOPIC_SUFFIX);
const logger = createLogger({ name: 'adapter-hl7', level: config.LOG_LEVEL });
const deprecation = identityEnvDeprecation(config);
if (deprecation) logger.warn({ deprecated: deprecatedIdentityVariables(config) }, deprecation);
const kafka = createKafkaClient({
  brokers: config.KAFKA_BROKERS,
  clientId: config.KAFKA_CLIENT_ID ?? 'adapter-hl7',
  logger,
});
const codec = createEventCodec(createRegistryClient(config.SCHEMA_REGISTRY_URL));
const metrics = createMetrics();
const topicFor = (t: keyof typeof EVENT_CONTRACTS) => topic(EVENT_CONTRACTS[t].topic);
const producer = createEventProducer({
  kafka,
  codec,
  topicFor,
  retries: config.KAFKA_PRODUCER_RETRIES,
  // The adapter applies the ack timeout itself, keeping each write so that a
  // resend of a message still on its way is not written a second time.
  ackTimeoutMs: config.KAFKA_ACK_TIMEOUT_MS,
  rejectAtAckTimeout: false,
  onPublished: (t, type, n) => metrics.eventsPublished.inc({ topic: t, type }, n),
  ...producerMetricsHooks(metrics),
});
const rawTopic = topic(INGEST_TOPICS.hl7Raw);
const dlqTopic = topic(INGEST_TOPICS.hl7Dlq);
const attachmentTopic = topicFor('AttachmentStored');
const adapter = buildHl7Adapter(
  {
    producer,
    logger,
    metrics,
    clock: Date.now,
    idGenerator: randomUUID,
    policy,
    timeZoneFor,
    mapper: mapHl7Message,
  },
  {
    host: config.MLLP_HOST,
    port: config.MLLP_PORT,
    tls:
      config.MLLP_TLS_CERT && config.MLLP_TLS_KEY
        ? { cert: readFileSync(config.MLLP_TLS_CERT), key: readFileSync(config.MLLP_TLS_KEY) }
        : undefined,
    maxMessageBytes: config.MLLP_MAX_MESSAGE_BYTES,
    frameTimeoutMs: config.MLLP_FRAME_TIMEOUT_MS,
    maxConnections: config.MLLP_MAX_CONNECTIONS,
    rawTopic,
    dlqTopic,
    recentIdsCapacity: config.HL7_RECENT_IDS,
    stopGraceMs: config.MLLP_STOP_GRACE_MS,
    ackTimeoutMs: config.KAFKA_ACK_TIMEOUT_MS,
  },
);

installShutdown({
  logger,
  stoppingMessage: 'stopping: no new connections, finishing in-flight messages',
  stoppedMessage: 'adapter-hl7 stopped',
  async stop() {
    await adapter.stop();
    await producer.disconnect();
  },
});

let mllp: { host: string; port: number } | undefined;
await startService({
  name: 'adapter-hl7',
  logger,
  http: adapter.http,
  config,
  producer,
  steps: [
    {
      // Also raises max.message.bytes of these topics on an existing install, to fit the frame limit.
      name: 'kafka (raw, dead-letter and attachment topics)',
      run: () =>
        ensureTopics(
          kafka,
          catalogTopicDefinitions(topic)
            .filter((t) => t.name === rawTopic || t.name === dlqTopic || t.name === attachmentTopic)
            .map((t) => ({ ...t, maxMessageBytes: largeRecordTopicBytes(config.MLLP_MAX_MESSAGE_BYTES) })),
        ).then(() => undefined),
    },
    { name: 'schema registry (event schemas)', run: () => codec.warmUp(undefined, topicFor) },
    // Last: senders are accepted only once every write they need can be made.
    {
      name: 'MLLP listener',
      run: async () => {
        mllp = await adapter.start();
      },
    },
  ],
  readyFields: () => ({
    mllp: mllp ? `${mllp.host}:${mllp.port}` : null,
    tls: Boolean(config.MLLP_TLS_CERT),
  }),
});
