// Entry point: config, connections, signals and start-up are the shared service kit's (libs/service).
import { hostname } from 'node:os';
import { databaseEnv, schemaNameEnv, z } from '../../libs/config/index.js';
import { dlqTopicFor } from '../../libs/kafka/dlq.js';
import { createTransactionalProducer } from '../../libs/kafka/transactional.js';
import { eventPublisher, runService } from '../../libs/service/index.js';
import { loadSite, siteEnv } from '../../libs/service/site.js';
import { buildFhirAdapter } from './app.js';

await runService({
  name: 'adapter-fhir',
  port: 8093,
  env: {
    ...databaseEnv,
    ...siteEnv,
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
  },
  producer: eventPublisher,
  connect: (k) => ({
    policy: loadSite(k.config, k.logger).policy,
    txProducer: k.closing(
      createTransactionalProducer({
        kafka: k.kafka,
        codec: k.codec,
        topicFor: k.topicFor,
        // Stable per host so that a restarted instance fences its predecessor's open transaction.
        transactionalId: k.config.FHIR_TRANSACTIONAL_ID ?? `adapter-fhir-${hostname()}-${k.topic('tx')}`,
        ackTimeoutMs: k.config.KAFKA_ACK_TIMEOUT_MS,
      }),
      (p) => p.disconnect(),
    ),
    db: k.database(k.config.DATABASE_URL),
  }),
  build: (k, c) => {
    const svc = buildFhirAdapter(
      { ...c, kafka: k.kafka, producer: k.producer, logger: k.logger, metrics: k.metrics },
      {
        schema: k.config.FHIR_STORE_SCHEMA,
        dlqTopic: k.config.DLQ_TOPIC ?? dlqTopicFor('adapter-fhir', k.topic),
        sourceSystem: k.config.FHIR_SOURCE_SYSTEM,
        maxBodyBytes: k.config.FHIR_MAX_BODY_BYTES,
        importChunkSize: k.config.FHIR_IMPORT_CHUNK_SIZE,
        ...(k.config.FHIR_BASE_URL ? { baseUrl: k.config.FHIR_BASE_URL.replace(/\/+$/, '') } : {}),
      },
    );
    return {
      http: svc.http,
      steps: [
        // initTransactions: the transaction coordinator is "loading" on a fresh broker.
        { name: 'kafka (transaction coordinator)', run: () => c.txProducer.connect() },
        { name: 'schema registry (event schemas)', run: () => k.codec.warmUp(undefined, k.topicFor) },
        { name: 'postgres (resource store) and dead-letter topic', run: () => svc.start() },
      ],
      stop: () => svc.stop(),
      readyFields: () => ({ schema: k.config.FHIR_STORE_SCHEMA }),
    };
  },
});
