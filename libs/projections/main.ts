import { authEnv, verifierFromEnv } from '../auth/env.js';
import { databaseEnv, schemaNameEnv, z } from '../config/index.js';
import { OPERATOR_AUDIENCE } from '../http/operator.js';
import { dlqTopicFor } from '../kafka/dlq.js';
import { runService } from '../service/index.js';
import { BACKGROUND_NICE, niceEnv } from '../service/runtime.js';
import { producerMetricsHooks } from '../telemetry/metrics.js';
import { BULK_MIN_EVENTS } from './runner.js';
import type { ProjectorConfig, ProjectorDeps, ProjectorService } from './service.js';

/** What every projector reads besides the shared service variables. */
function projectorEnv(defaultSchema: string) {
  return {
    ...databaseEnv,
    // Operator tokens for /version and /views.
    ...authEnv(OPERATOR_AUDIENCE),
    PROJECTION_SCHEMA: schemaNameEnv(defaultSchema),
    DLQ_TOPIC: z.string().optional(),
    CONSUMER_GROUP_PREFIX: z.string().optional(),
    // A transaction of at least this many events (only a consumer far behind the log forms one) writes by binary COPY.
    PROJECTION_BULK_MIN_EVENTS: z.coerce.number().int().min(1).default(BULK_MIN_EVENTS),
    // Behind the ingest adapters on a shared host: a projector's lag is caught up later, an ACK is waited for.
    CPU_NICE: niceEnv(BACKGROUND_NICE),
  };
}

type ProjectorEnv = z.infer<z.ZodObject<ReturnType<typeof projectorEnv>>>;

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
 * The service kit (libs/service) for a projector: each projector's main.ts
 * is a single call to this, so that they differ only in their read model.
 * A consumer that gave up after its bounded retries is already not-ready;
 * the process then stops and exits 1, for the supervisor to restart it and
 * alerts to fire.
 */
export async function runProjectorMain<E extends z.ZodRawShape>(spec: ProjectorMainSpec<E>): Promise<void> {
  await runService({
    name: spec.name,
    port: spec.defaultPort,
    env: { ...projectorEnv(spec.defaultSchema), ...(spec.env ?? ({} as E)) },
    producer: (k) => producerMetricsHooks(k.metrics),
    connect: async (k) => ({
      db: k.database((k.config as ProjectorEnv).DATABASE_URL),
      operatorVerifier: await verifierFromEnv(k.config as ProjectorEnv, k.logger),
    }),
    build: (k, { db, operatorVerifier }) => {
      const env = k.config as ProjectorEnv;
      const svc = spec.build(
        {
          db,
          kafka: k.kafka,
          codec: k.codec,
          producer: k.producer,
          logger: k.logger,
          metrics: k.metrics,
          operatorVerifier,
          onFatal: (err) => {
            k.logger.fatal({ code: err.code }, 'consumer gave up after its retries; exiting');
            void k.exit(`fatal ${err.code}`, 1);
          },
        },
        {
          stableSchema: env.PROJECTION_SCHEMA,
          dlqTopic: env.DLQ_TOPIC ?? dlqTopicFor(spec.name, k.topic),
          topicFor: k.topic,
          ...(env.CONSUMER_GROUP_PREFIX ? { groupPrefix: env.CONSUMER_GROUP_PREFIX } : {}),
          bulkMinEvents: env.PROJECTION_BULK_MIN_EVENTS,
        },
        k.config as z.infer<z.ZodObject<E>>,
      );
      return {
        http: svc.http,
        steps: [{ name: 'postgres (read model) and kafka (consumer group)', run: () => svc.start() }],
        stop: () => svc.stop(),
        readyFields: () => ({ schema: svc.activeSchema() }),
      };
    },
  });
}
