import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchema } from '../db/index.js';
import { ensureTopics } from '../kafka/admin.js';
import { analyticsProjection } from '../read-models/analytics/model.js';
import { billingProjection } from '../read-models/billing/model.js';
import { portalProjection } from '../read-models/portal/model.js';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import { syntheticEvents } from '../../test/support/hospital-day.js';
import { lagOf, tableHashes } from './inspect.js';
import { createProjectionRunner, migrateProjection, type ApplyPath } from './runner.js';
import { clinicalTopics } from './topics.js';

const EVENTS = 12_000;
const PROJECTIONS = { portal: portalProjection, billing: billingProjection, analytics: analyticsProjection };
type Name = keyof typeof PROJECTIONS;

/**
 * The bulk path (binary COPY while catching up) against the per-event path
 * (statements), over the same log with resends in it: every read model's
 * tables hash equal, so which path a transaction took never shows in what
 * it wrote. The resends are among the batches of a catch-up, as in a real
 * log: the bulk path drops them itself (regression: each made its whole
 * batch fall back to the statement path).
 */
describe(`bulk catch-up equals per-event apply over ${EVENTS} events with resends`, () => {
  let ctx: TestContext;
  let topics: string[];
  const dlq = () => `hub.dlq.bulk.${ctx.id}`;

  beforeAll(async () => {
    ctx = await createTestContext('bulk');
    topics = clinicalTopics(ctx.topic);
    ctx.extraTopics.push(dlq());
    await ensureTopics(ctx.kafka, [{ name: dlq(), partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    const events = syntheticEvents(EVENTS, 11);
    for (let i = 0; i < events.length; i += 2000) await ctx.producer.publish(events.slice(i, i + 2000));
    // Resends: the same event ids again, later in the log.
    await ctx.producer.publish(events.filter((_, i) => i % 97 === 0));
  });
  afterAll(async () => {
    for (const n of Object.keys(PROJECTIONS))
      for (const p of ['bulk', 'stmt']) await dropSchema(ctx.db, `${ctx.schema}_${n}_${p}`);
    await ctx.cleanup();
  });

  async function build(name: Name, bulkMinEvents: number, suffix: string) {
    const schema = `${ctx.schema}_${name}_${suffix}`;
    const projection = PROJECTIONS[name](topics);
    await migrateProjection(ctx.db, schema, projection);
    const paths: Record<ApplyPath, number> = { bulk: 0, 'per-event': 0 };
    const runner = createProjectionRunner({
      projection,
      schema,
      groupId: `hub.bulk.${name}.${suffix}.${ctx.id}`,
      db: ctx.db,
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      dlqTopic: dlq(),
      logger: ctx.logger,
      bulkMinEvents,
      onTransaction: (path) => paths[path]++,
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
    return { hashes: await tableHashes(ctx.db, schema), paths };
  }

  it.each(Object.keys(PROJECTIONS) as Name[])('%s: hash-equal tables either way', async (name) => {
    const bulk = await build(name, 1, 'bulk');
    const stmt = await build(name, Number.POSITIVE_INFINITY, 'stmt');
    expect(bulk.paths.bulk).toBeGreaterThan(0);
    // Resends are dropped on the bulk path itself: none sends its batch back to the statements.
    expect(bulk.paths['per-event']).toBe(0);
    expect(stmt.paths.bulk).toBe(0);
    expect(bulk.hashes).toEqual(stmt.hashes);
  });
});
