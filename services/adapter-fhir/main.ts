// Entry point: config, connections, signals and start-up are the shared service kit's (libs/service).
import { hostname } from 'node:os';
import { AUDIT_TOPIC } from '../../libs/audit/topic.js';
import { authEnv, verifierFromEnv } from '../../libs/auth/env.js';
import { databaseEnv, schemaNameEnv, z } from '../../libs/config/index.js';
import { DEFAULT_IMPORT_MAX_BYTES } from '../../libs/fhir/import/import.js';
import { dlqTopicFor } from '../../libs/kafka/dlq.js';
import { createTransactionalProducer } from '../../libs/kafka/transactional.js';
import { eventPublisher, runService } from '../../libs/service/index.js';
import { loadSite, siteEnv } from '../../libs/service/site.js';
import { buildFhirAdapter } from './app.js';
import { loadFhirClients } from './clients.js';
import { INGEST_REALM } from './security.js';

await runService({
  name: 'adapter-fhir',
  port: 8093,
  env: {
    ...databaseEnv,
    ...siteEnv,
    // Tokens for this adapter have their own audience: one issued for the API does not write here.
    ...authEnv(INGEST_REALM),
    /** client_id → the source systems it may write as (JSON or YAML); unset: every client is refused. */
    FHIR_CLIENTS_FILE: z.string().optional(),
    AUDIT_TOPIC: z.string().optional(),
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
    // The whole $import body (streamed; each line is limited to 16 MiB on its own): 1 GiB by default.
    FHIR_IMPORT_MAX_BYTES: z.coerce.number().int().min(1024).default(DEFAULT_IMPORT_MAX_BYTES),
    DLQ_TOPIC: z.string().optional(),
    // Bundle entries validated in this many worker threads; 0: on the request thread. Off by
    // default: each thread loads its own copy of the FHIR StructureDefinitions, ~75 MB more RSS
    // (peak ~430 MB under the bundle benchmark with one, against the 256 MB budget).
    FHIR_VALIDATE_THREADS: z.coerce.number().int().min(0).max(4).default(0),
  },
  producer: eventPublisher,
  connect: async (k) => ({
    policy: loadSite(k.config, k.logger).policy,
    clients: loadFhirClients(k.config.FHIR_CLIENTS_FILE),
    verifier: await verifierFromEnv(k.config, k.logger),
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
    // Write locks across instances: each holder keeps a connection through its Kafka publish,
    // so they have a pool of their own rather than starving the store's (lock.ts).
    lockDb: k.database(k.config.DATABASE_URL, { pool: { min: 0, max: 10 } }),
  }),
  build: (k, c) => {
    if (c.clients.size === 0) {
      k.logger.warn('no FHIR_CLIENTS_FILE (or no client in it): every request with a token is refused (403)');
    }
    const svc = buildFhirAdapter(
      { ...c, kafka: k.kafka, producer: k.producer, logger: k.logger, metrics: k.metrics },
      {
        schema: k.config.FHIR_STORE_SCHEMA,
        dlqTopic: k.config.DLQ_TOPIC ?? dlqTopicFor('adapter-fhir', k.topic),
        auditTopic: k.config.AUDIT_TOPIC ?? k.topic(AUDIT_TOPIC),
        clients: c.clients,
        sourceSystem: k.config.FHIR_SOURCE_SYSTEM,
        maxBodyBytes: k.config.FHIR_MAX_BODY_BYTES,
        importChunkSize: k.config.FHIR_IMPORT_CHUNK_SIZE,
        importMaxBytes: k.config.FHIR_IMPORT_MAX_BYTES,
        validateThreads: k.config.FHIR_VALIDATE_THREADS,
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
