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
} from '../config/index.js';
import { createDb } from '../db/index.js';
import { createEventCodec } from '../events/codec.js';
import { createRegistryClient } from '../events/registry.js';
import { createKafkaClient } from '../kafka/client.js';
import { createEventProducer } from '../kafka/producer.js';
import { createLogger } from '../telemetry/logger.js';
import { createMetrics, producerMetricsHooks } from '../telemetry/metrics.js';
import type { ProjectorConfig, ProjectorDeps, ProjectorService } from './service.js';
import { installShutdown, startService } from '../lifecycle/index.js';

const baseEnv = {
  ...kafkaEnv,
  ...databaseEnv,
  ...logEnv,
  ...startEnv,
  HTTP_HOST: httpEnv.HTTP_HOST,
  DLQ_TOPIC: z.string().optional(),
  CONSUMER_GROUP_PREFIX: z.string().optional(),
};

export interface ProjectorMainSpec<E extends z.ZodRawShape> {
  /** Service name: logger, Kafka client id and dead-letter topic `hub.dlq.<name>`. */
  name: string;
  defaultPort: number;
  defaultSchema: string;
  /** Service-specific variables, validated with the shared ones. */
  env?: E;
  build(
    deps: ProjectorDeps,
    cfg: ProjectorConfig & { topicFor: (catalogName: string) => string },
    env: z.infer<z.ZodObject<E>>,
  ): ProjectorService;
}

/**
 * The composition root shared by the projector services. Each service's
 * main.ts is a single call to this, so config validation, connections,
 * signals and exit codes behave identically in all of them: SIGTERM/SIGINT
 * finish the batch in flight and exit 0; a consumer that gave up after its
 * bounded retries exits 1 so that the supervisor restarts it and alerts fire.
 */
export async function runProjectorMain<E extends z.ZodRawShape>(spec: ProjectorMainSpec<E>): Promise<void> {
  const shape = {
    ...baseEnv,
    HTTP_PORT: portEnv(spec.defaultPort),
    PROJECTION_SCHEMA: schemaNameEnv(spec.defaultSchema),
    ...(spec.env ?? {}),
  };
  const config = loadConfig(z.object(shape)) as z.infer<z.ZodObject<typeof baseEnv>> & {
    HTTP_PORT: number;
    PROJECTION_SCHEMA: string;
  };
  const topic = topicNamer(config.HUB_TOPIC_SUFFIX);
  const logger = createLogger({ name: spec.name, level: config.LOG_LEVEL });
  const db = createDb(config.DATABASE_URL);
  const kafka = createKafkaClient({
    brokers: config.KAFKA_BROKERS,
    clientId: config.KAFKA_CLIENT_ID ?? spec.name,
    logger,
  });
  const codec = createEventCodec(createRegistryClient(config.SCHEMA_REGISTRY_URL));
  const metrics = createMetrics();
  const producer = createEventProducer({
    kafka,
    codec,
    ackTimeoutMs: config.KAFKA_ACK_TIMEOUT_MS,
    ...producerMetricsHooks(metrics),
  });

  const shutdown = installShutdown({
    logger,
    async stop() {
      await svc.stop();
      await producer.disconnect();
      await db.destroy();
    },
  });

  const svc = spec.build(
    {
      db,
      kafka,
      codec,
      producer,
      logger,
      metrics,
      onFatal: (err) => {
        logger.fatal({ code: err.code }, 'consumer gave up after its retries; exiting');
        void shutdown(`fatal ${err.code}`, 1);
      },
    },
    {
      stableSchema: config.PROJECTION_SCHEMA,
      dlqTopic: config.DLQ_TOPIC ?? topic(`hub.dlq.${spec.name}`),
      topicFor: topic,
      ...(config.CONSUMER_GROUP_PREFIX ? { groupPrefix: config.CONSUMER_GROUP_PREFIX } : {}),
    },
    config as unknown as z.infer<z.ZodObject<E>>,
  );

  await startService({
    name: spec.name,
    logger,
    http: svc.http,
    config,
    producer,
    steps: [{ name: 'postgres (read model) and kafka (consumer group)', run: () => svc.start() }],
    readyFields: () => ({ schema: svc.activeSchema() }),
  });
}
