import type { ClinicalEvent } from '../../libs/events/index.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import { lagOf, tableHashes } from '../../libs/projections/inspect.js';
import {
  createProjectionRunner,
  migrateProjection,
  type Projection,
  type ProjectionRunnerOptions,
} from '../../libs/projections/runner.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { eventually, type TestContext } from './harness.js';

/** A test's own log: the catalog's topics and a dead-letter topic under the context's names. */
export interface TestLog {
  topics: string[];
  dlq: string;
}

/**
 * Publishes `events` to the context's catalog topics in chunks of 2,000,
 * then again every `resendEvery`-th of them (the same event ids later in
 * the log, as a sender's resends are), and creates the dead-letter topic.
 */
export async function publishWithResends(
  ctx: TestContext,
  name: string,
  events: readonly ClinicalEvent[],
  resendEvery: number,
): Promise<TestLog> {
  const dlq = `hub.dlq.${name}.${ctx.id}`;
  ctx.extraTopics.push(dlq);
  await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
  for (let i = 0; i < events.length; i += 2000) await ctx.producer.publish(events.slice(i, i + 2000));
  await ctx.producer.publish(events.filter((_, i) => i % resendEvery === 0));
  return { topics: clinicalTopics(ctx.topic), dlq };
}

/**
 * Builds `projection` into `schema` (migrated first) from the start of the
 * log until it has no lag, stops it, and returns its tables' hashes: how
 * two ways of building one read model are compared.
 */
export async function buildToHead(
  ctx: TestContext,
  log: TestLog,
  projection: Projection,
  schema: string,
  runner: Partial<ProjectionRunnerOptions> = {},
): Promise<Record<string, string>> {
  await migrateProjection(ctx.db, schema, projection);
  const r = createProjectionRunner({
    projection,
    schema,
    groupId: `hub.${schema}`,
    db: ctx.db,
    kafka: ctx.kafka,
    codec: ctx.codec,
    producer: ctx.producer,
    dlqTopic: log.dlq,
    logger: ctx.logger,
    ...runner,
  });
  await r.start();
  try {
    await eventually(
      async () => ((await lagOf(ctx.db, ctx.kafka, schema, log.topics)).lag === 0n ? true : undefined),
      { timeoutMs: 180_000, intervalMs: 200, what: `${projection.name} build into ${schema}` },
    );
  } finally {
    await r.stop();
  }
  return tableHashes(ctx.db, schema);
}
