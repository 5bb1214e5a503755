import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portalProjection } from '../../services/projector-portal/projection.js';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import { patientRegistered } from '../../test/support/fixtures.js';
import { ensureTopics } from '../kafka/admin.js';
import { createProjectionRunner, migrateProjection } from './projection.js';

/** The projection runner against the real broker, registry and Postgres. */
describe('projection runner', () => {
  let ctx: TestContext;
  let dlq: string;

  beforeAll(async () => {
    ctx = await createTestContext('projrun');
    dlq = `hub.dlq.${ctx.id}`;
    ctx.extraTopics.push(dlq);
    await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  it('applies the partitions of a fetch in one transaction, with each partition checkpointed at its last offset', async () => {
    const topic = ctx.topicFor('PatientRegistered');
    const ids = Array.from({ length: 24 }, (_, i) => `PR${i}`);
    await ctx.producer.publish(ids.map((id) => patientRegistered(id, 'Family', `m-${id}`)));
    const admin = ctx.kafka.admin();
    await admin.connect();
    const ends = (await admin.fetchTopicOffsets(topic)).filter((o) => BigInt(o.high) > 0n);
    await admin.disconnect();
    // Keys spread over the partitions: a group has something to save.
    expect(ends.length).toBeGreaterThan(1);

    const projection = portalProjection([topic]);
    await migrateProjection(ctx.db, ctx.schema, projection);
    let transactions = 0;
    const countBegin = (q: { sql?: string }) => {
      if (/^begin/i.test(q.sql ?? '')) transactions++;
    };
    ctx.db.on('query', countBegin);
    const runner = createProjectionRunner({
      projection,
      schema: ctx.schema,
      db: ctx.db,
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      dlqTopic: dlq,
      logger: ctx.logger,
    });
    try {
      await runner.start();
      const checkpoints = await eventually(
        async () => {
          const rows = await ctx.db
            .withSchema(ctx.schema)
            .from('checkpoints')
            .where({ topic })
            .select<{ partition: number; last_offset: string }[]>('partition', 'last_offset');
          return rows.length === ends.length ? rows : undefined;
        },
        { what: 'a checkpoint for every partition' },
      );
      const expected = new Map(ends.map((o) => [o.partition, String(BigInt(o.high) - 1n)]));
      expect(new Map(checkpoints.map((c) => [c.partition, String(c.last_offset)]))).toEqual(expected);
      const patients = await ctx.db
        .withSchema(ctx.schema)
        .from('patients')
        .count<{ n: string }[]>({ n: '*' });
      expect(Number(patients[0]?.n)).toBe(ids.length);
      // One transaction per partition before grouping; the first fetch holds them all.
      expect(transactions).toBeLessThan(ends.length);
    } finally {
      ctx.db.off('query', countBegin);
      await runner.stop();
    }
  });
});
