import type { IdentityPolicy } from '../../libs/identity/index.js';
import { createTransactionalProducer, type TransactionalProducer } from '../../libs/kafka/transactional.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { buildFhirAdapter, type FhirAdapter } from '../../services/adapter-fhir/app.js';
import type { TestContext } from './harness.js';

/** The FHIR adapter in-process on a test's topics and schema, with its own transactional producer. */
export interface TestFhirAdapter {
  adapter: FhirAdapter;
  tx: TransactionalProducer;
  stop(): Promise<void>;
}

export async function startTestFhirAdapter(
  ctx: TestContext,
  o: {
    policy: IdentityPolicy;
    maxBodyBytes: number;
    baseUrl?: string;
    /** Runs before each transaction commits (e.g. to inject a failure). */
    beforeCommit?: () => Promise<void>;
  },
): Promise<TestFhirAdapter> {
  const dlqTopic = `hub.dlq.adapter-fhir.${ctx.id}`;
  ctx.extraTopics.push(dlqTopic);
  const tx = createTransactionalProducer({
    kafka: ctx.kafka,
    codec: ctx.codec,
    transactionalId: `tx-${ctx.id}`,
    topicFor: ctx.topicFor,
    ...(o.beforeCommit ? { beforeCommit: o.beforeCommit } : {}),
  });
  await tx.connect();
  const adapter = buildFhirAdapter(
    {
      db: ctx.db,
      kafka: ctx.kafka,
      producer: ctx.producer,
      txProducer: tx,
      logger: ctx.logger,
      metrics: createMetrics({ defaultMetrics: false }),
      policy: o.policy,
    },
    {
      schema: ctx.schema,
      dlqTopic,
      sourceSystem: 'fhir-test',
      maxBodyBytes: o.maxBodyBytes,
      ...(o.baseUrl ? { baseUrl: o.baseUrl } : {}),
    },
  );
  await adapter.start();
  return {
    adapter,
    tx,
    async stop() {
      await adapter.stop();
      await tx.disconnect();
    },
  };
}
