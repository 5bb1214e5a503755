/**
 * The delivery service in the test's own process, on the test's topics and
 * schema (real Kafka, registry and Postgres).
 */
import { AUDIT_TOPIC } from '../../libs/audit/topic.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import {
  buildDeliveryService,
  type DeliveryConfig,
  type DeliveryService,
} from '../../services/delivery/app.js';
import type { TestContext } from './harness.js';

/** Started; the caller stops it. Its audit and dead-letter topics are the context's to remove. */
export async function startDeliveryInProcess(
  ctx: TestContext,
  overrides: Partial<DeliveryConfig> = {},
): Promise<{ svc: DeliveryService; auditTopic: string }> {
  const auditTopic = ctx.topic(AUDIT_TOPIC);
  const dlq = ctx.topic('hub.dlq.delivery');
  ctx.extraTopics.push(auditTopic, dlq);
  await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
  const svc = buildDeliveryService(
    {
      db: ctx.db,
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      logger: ctx.logger,
      metrics: createMetrics({ defaultMetrics: false }),
    },
    {
      schema: ctx.schema,
      auditTopic,
      dlqTopic: dlq,
      topic: ctx.topic,
      pollMs: 200,
      fhirBase: 'https://hub.test/fhir',
      portalSchema: 'portal',
      ...overrides,
    },
  );
  await svc.start();
  return { svc, auditTopic };
}
