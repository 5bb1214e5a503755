import {
  loadConfig,
  databaseEnv,
  httpEnv,
  kafkaEnv,
  logEnv,
  topicNamer,
  z,
} from '../../libs/config/index.js';
import { createDb } from '../../libs/db/index.js';
import { createEventCodec } from '../../libs/events/codec.js';
import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import { createEventProducer } from '../../libs/kafka/producer.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { buildAnalyticsProjector } from './app.js';

const config = loadConfig(
  z.object({
    ...kafkaEnv,
    ...databaseEnv,
    ...logEnv,
    HTTP_HOST: httpEnv.HTTP_HOST,
    HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8096),
    PROJECTION_SCHEMA: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/)
      .default('analytics'),
    DLQ_TOPIC: z.string().optional(),
    CONSUMER_GROUP_PREFIX: z.string().optional(),
    /** Comma-separated dead-letter topics to count (catalog names; the topic suffix is applied). */
    DEAD_LETTER_TOPICS: z
      .string()
      .default(
        `${INGEST_TOPICS.hl7Dlq},hub.dlq.adapter-fhir,hub.dlq.patient-directory,hub.dlq.projector-billing,hub.dlq.projector-portal,hub.dlq.projector-analytics`,
      ),
  }),
);

const topic = topicNamer(config.HUB_TOPIC_SUFFIX);
const logger = createLogger({ name: 'projector-analytics', level: config.LOG_LEVEL });
const db = createDb(config.DATABASE_URL);
const kafka = createKafkaClient({
  brokers: config.KAFKA_BROKERS,
  clientId: config.KAFKA_CLIENT_ID ?? 'projector-analytics',
  logger,
});
const codec = createEventCodec(createRegistryClient(config.SCHEMA_REGISTRY_URL));
const producer = createEventProducer({ kafka, codec });
const metrics = createMetrics();
const svc = buildAnalyticsProjector(
  { db, kafka, codec, producer, logger, metrics },
  {
    stableSchema: config.PROJECTION_SCHEMA,
    dlqTopic: config.DLQ_TOPIC ?? topic('hub.dlq.projector-analytics'),
    topicFor: topic,
    deadLetterTopics: config.DEAD_LETTER_TOPICS.split(',')
      .map((t) => t.trim())
      .filter(Boolean)
      .map(topic),
    ...(config.CONSUMER_GROUP_PREFIX ? { groupPrefix: config.CONSUMER_GROUP_PREFIX } : {}),
  },
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping');
  try {
    await svc.stop();
    await producer.disconnect();
    await db.destroy();
    process.exit(0);
  } catch (err) {
    logger.error({ err }, 'unclean stop');
    process.exit(1);
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

try {
  await producer.connect();
  await svc.start();
  const address = await svc.http.listen({ host: config.HTTP_HOST, port: config.HTTP_PORT });
  logger.info({ address, schema: svc.activeSchema() }, 'projector-analytics ready');
} catch (err) {
  logger.fatal({ err }, 'projector-analytics failed to start');
  process.exit(1);
}
