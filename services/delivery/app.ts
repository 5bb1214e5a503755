import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import { createAuditSink, ensureAuditTopic } from '../../libs/audit/topic.js';
import { portalDemographics, senderFor } from '../../libs/delivery/channels/index.js';
import type { DestinationRule } from '../../libs/delivery/destinations.js';
import { createDeliveryMetrics } from '../../libs/delivery/metrics.js';
import { migrateDelivery } from '../../libs/delivery/store.js';
import { createDeliverySupervisor, type DeliverySupervisor } from '../../libs/delivery/supervisor.js';
import type { EventCodec } from '../../libs/events/codec.js';
import { createHttpApp, postgresReady } from '../../libs/http/index.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';

export interface DeliveryDeps {
  db: Knex;
  kafka: KafkaClient;
  codec: EventCodec;
  producer: EventProducer;
  logger: Logger;
  metrics: HubMetrics;
  now?: () => number;
}

export interface DeliveryConfig {
  schema: string;
  auditTopic: string;
  dlqTopic: string;
  topic(catalogName: string): string;
  pollMs?: number;
  /** The hub's FHIR base URL, for references in FHIR notifications. */
  fhirBase: string;
  /** The portal read model's stable schema: demographics for HL7 messages about a patient by id. */
  portalSchema: string;
  /** DELIVERY_ALLOWED_DESTINATIONS: where deliveries may go (null: anywhere). */
  destinations?: readonly DestinationRule[] | null;
}

export interface DeliveryService {
  http: FastifyInstance;
  supervisor: DeliverySupervisor;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * delivery: subscriptions (delivery schema) → receivers that cannot read
 * Kafka (signed webhook, FHIR rest-hook, HL7 v2 over MLLP). Its port serves
 * /health, /ready and /metrics only: subscriptions are managed through the
 * API and `hub subscriptions`.
 */
export function buildDeliveryService(deps: DeliveryDeps, cfg: DeliveryConfig): DeliveryService {
  const now = deps.now ?? Date.now;
  const supervisor = createDeliverySupervisor({
    db: deps.db,
    schema: cfg.schema,
    kafka: deps.kafka,
    codec: deps.codec,
    producer: deps.producer,
    logger: deps.logger,
    metrics: createDeliveryMetrics(deps.metrics.registry),
    audit: createAuditSink(deps.producer, cfg.auditTopic),
    topic: cfg.topic,
    dlqTopic: cfg.dlqTopic,
    observer: 'delivery',
    now,
    senderFor: (sub) =>
      senderFor(sub, {
        now,
        logger: deps.logger,
        fhirBase: cfg.fhirBase,
        patientOf: portalDemographics(deps.db, cfg.portalSchema),
      }),
    ...(cfg.pollMs ? { pollMs: cfg.pollMs } : {}),
    destinations: cfg.destinations ?? null,
  });
  let started = false;
  const http = createHttpApp({
    logger: deps.logger,
    metrics: deps.metrics.registry,
    codeOnlyNotFound: true,
    readiness: {
      postgres: postgresReady(deps.db),
      subscriptions: () => Promise.resolve(started ? { ok: true } : { ok: false, detail: 'starting' }),
    },
  });
  return {
    http,
    supervisor,
    async start() {
      await migrateDelivery(deps.db, cfg.schema);
      await ensureAuditTopic(deps.kafka, cfg.auditTopic);
      // Its dead-letter topic, as adapter-fhir does: brokers do not auto-create topics. Where the
      // operator made both up front (secure profile, Strimzi), this only describes them: no CREATE needed.
      await ensureTopics(deps.kafka, [{ name: cfg.dlqTopic, partitions: 1, retentionMs: -1 }]);
      await supervisor.start();
      started = true;
    },
    async stop() {
      started = false;
      await supervisor.stop();
    },
  };
}
