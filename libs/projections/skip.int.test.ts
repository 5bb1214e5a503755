import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchema } from '../db/index.js';
import { ensureTopics } from '../kafka/admin.js';
import { billingProjection } from '../read-models/billing/model.js';
import { eventMix } from '../../scripts/bench/events.js';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import { syntheticEvents } from '../../test/support/hospital-day.js';
import { lagOf, tableHashes } from './inspect.js';
import { createProjectionRunner, migrateProjection, type Projection } from './runner.js';
import { clinicalTopics } from './topics.js';

// Billing is the one model that skips (libs/read-models/README.md).
const PROJECTIONS = { billing: billingProjection };
type Name = keyof typeof PROJECTIONS;

/**
 * A read model that declares fields it never reads (ReadModel.skip) is
 * decoded without them: its tables must hash equal to a build of the same
 * log decoding every field, which is what the code before skipping did.
 * Over the hospital-day synthetic log (merges, transfers, corrections) and
 * the bench's stays (five observations per result), with resends.
 */
describe('a read model decoded without the fields it skips builds the same tables', () => {
  let ctx: TestContext;
  let topics: string[];
  const dlq = () => `hub.dlq.skip.${ctx.id}`;

  beforeAll(async () => {
    ctx = await createTestContext('skip');
    topics = clinicalTopics(ctx.topic);
    ctx.extraTopics.push(dlq());
    await ensureTopics(ctx.kafka, [{ name: dlq(), partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    const events = [...syntheticEvents(6_000, 7), ...eventMix(2_000)];
    for (let i = 0; i < events.length; i += 2000) await ctx.producer.publish(events.slice(i, i + 2000));
    await ctx.producer.publish(events.filter((_, i) => i % 89 === 0));
  });
  afterAll(async () => {
    for (const n of Object.keys(PROJECTIONS))
      for (const p of ['lean', 'whole']) await dropSchema(ctx.db, `${ctx.schema}_${n}_${p}`);
    await ctx.cleanup();
  });

  async function build(name: Name, projection: Projection, suffix: string) {
    const schema = `${ctx.schema}_${name}_${suffix}`;
    await migrateProjection(ctx.db, schema, projection);
    const runner = createProjectionRunner({
      projection,
      schema,
      groupId: `hub.skip.${name}.${suffix}.${ctx.id}`,
      db: ctx.db,
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      dlqTopic: dlq(),
      logger: ctx.logger,
    });
    await runner.start();
    try {
      await eventually(
        async () => ((await lagOf(ctx.db, ctx.kafka, schema, topics)).lag === 0n ? true : undefined),
        { timeoutMs: 180_000, intervalMs: 200, what: `${name} ${suffix} build` },
      );
    } finally {
      await runner.stop();
    }
    return tableHashes(ctx.db, schema);
  }

  it.each(Object.keys(PROJECTIONS) as Name[])('%s: hash-equal to decoding every field', async (name) => {
    // Given the model's projection, which skips fields, and the same projection decoding everything
    const lean = PROJECTIONS[name](topics);
    expect(lean.skip).toBeDefined();
    const whole: Projection = { ...lean };
    delete whole.skip;
    // When each builds from the same log, then their tables are the same
    const leanHashes = await build(name, lean, 'lean');
    expect(leanHashes).toEqual(await build(name, whole, 'whole'));
    expect(Object.keys(leanHashes).length).toBeGreaterThan(0);
  });
});
