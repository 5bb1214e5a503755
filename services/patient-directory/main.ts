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
import { createDb } from '../../libs/db/index.js';
import { createEventCodec } from '../../libs/events/codec.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { createKafkaClient } from '../../libs/kafka/client.js';
import { createEventProducer } from '../../libs/kafka/producer.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { buildPatientDirectory } from './app.js';
import { PATIENT_TOPIC } from './projection.js';
import { installShutdown, startService } from '../../libs/lifecycle/index.js';

const config = loadConfig(
  z.object({
    ...kafkaEnv,
    ...databaseEnv,
    ...logEnv,
    ...startEnv,
    HTTP_HOST: httpEnv.HTTP_HOST,
    HTTP_PORT: portEnv(8091),
    PROJECTION_SCHEMA: schemaNameEnv('patient_directory'),
    DLQ_TOPIC: z.string().optional(),
    CONSUMER_GROUP: z.string().optional(),
  }),
);

const topic = topicNamer(config.HUB_TOPIC_SUFFIX);
const logger = createLogger({ name: 'patient-directory', level: config.LOG_LEVEL });
const db = createDb(config.DATABASE_URL);
const kafka = createKafkaClient({
  brokers: config.KAFKA_BROKERS,
  clientId: config.KAFKA_CLIENT_ID ?? 'patient-directory',
  logger,
});
const codec = createEventCodec(createRegistryClient(config.SCHEMA_REGISTRY_URL));
const producer = createEventProducer({ kafka, codec, ackTimeoutMs: config.KAFKA_ACK_TIMEOUT_MS });
const metrics = createMetrics();
const svc = buildPatientDirectory(
  {
    db,
    kafka,
    codec,
    producer,
    logger,
    metrics,
    onFatal: (err) => {
      // Not-ready is already reported; exiting lets the supervisor restart us, loudly.
      logger.fatal({ code: err.code }, 'consumer gave up after bounded retries, exiting');
      void shutdown('fatal', 1);
    },
  },
  {
    schema: config.PROJECTION_SCHEMA,
    patientTopic: topic(PATIENT_TOPIC),
    dlqTopic: config.DLQ_TOPIC ?? topic('hub.dlq.patient-directory'),
    ...(config.CONSUMER_GROUP ? { groupId: config.CONSUMER_GROUP } : {}),
  },
);

const shutdown = installShutdown({
  logger,
  async stop() {
    await svc.stop();
    await producer.disconnect();
    await db.destroy();
  },
});

await startService({
  name: 'patient-directory',
  logger,
  http: svc.http,
  config,
  producer,
  steps: [{ name: 'postgres (read model) and kafka (consumer group)', run: () => svc.start() }],
  readyFields: () => ({ schema: config.PROJECTION_SCHEMA }),
});
