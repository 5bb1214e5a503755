import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProjectionRunner, migrateProjection, storedOffsets } from '../../libs/db/projection.js';
import { ensureTopics, endOffsets } from '../../libs/kafka/admin.js';
import type { ConsumerRunner } from '../../libs/kafka/consumer.js';
import { patientRegistered, patientUpdated, patientsMerged } from '../../test/support/fixtures.js';
import { createTestContext, eventually, uniqueId, type TestContext } from '../../test/support/harness.js';
import { findPatient, patientDirectoryProjection } from './projection.js';

/** The projection runner against real Kafka and Postgres: exactly-once in effect. */
describe('patient directory projection', () => {
  let ctx: TestContext;
  let dlq: string;
  let topic: string;
  const projection = () => patientDirectoryProjection(topic);

  beforeAll(async () => {
    ctx = await createTestContext('pdir');
    topic = ctx.topicFor('PatientRegistered');
    dlq = `hub.dlq.${ctx.id}`;
    ctx.extraTopics.push(dlq);
    await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    await migrateProjection(ctx.db, ctx.schema, projection());
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  function runner(groupId: string): ConsumerRunner {
    return createProjectionRunner({
      projection: projection(),
      schema: ctx.schema,
      groupId,
      db: ctx.db,
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      dlqTopic: dlq,
      logger: ctx.logger,
    });
  }

  async function caughtUp(): Promise<void> {
    const ends = await endOffsets(ctx.kafka, topic);
    await eventually(
      async () => {
        const stored = await storedOffsets(ctx.db, ctx.schema, topic);
        for (const [p, end] of ends) {
          if (end === 0n) continue;
          if ((stored.get(p) ?? -1n) !== end - 1n) return undefined;
        }
        return true;
      },
      { what: 'projection to reach the end of the topic' },
    );
  }

  async function appliedCount(): Promise<number> {
    const rows: { n: string }[] = await ctx.db
      .withSchema(ctx.schema)
      .from('applied_events')
      .count({ n: '*' });
    return Number(rows[0]?.n);
  }

  it('applies each event once, even when the source resends it', async () => {
    await ctx.producer.publish([
      patientRegistered('P1', 'Alpha', 'm1'),
      patientRegistered('P2', 'Bravo', 'm2'),
      patientUpdated('P1', 'Alpha-Updated', 'm3'),
      patientRegistered('P1', 'Alpha', 'm1'), // resend of m1: same deterministic event id
    ]);
    const r = runner(uniqueId('g'));
    await r.start();
    await caughtUp();
    await r.stop();
    expect(await findPatient(ctx.db, ctx.schema, 'P1')).toMatchObject({
      family: 'Alpha-Updated',
      version: 2,
    });
    expect(await findPatient(ctx.db, ctx.schema, 'P2')).toMatchObject({ family: 'Bravo', version: 1 });
    expect(await appliedCount()).toBe(3);
  });

  it('resumes from its stored offsets after a restart, even with a brand-new consumer group, without duplicating', async () => {
    await ctx.producer.publish([patientUpdated('P2', 'Bravo-2', 'm4'), patientsMerged('P1', 'P2', 'm5')]);
    // A new group has no Kafka offsets: without the stored checkpoints it would replay from 0.
    const r = runner(uniqueId('g-new'));
    await r.start();
    await caughtUp();
    await r.stop();
    expect(await findPatient(ctx.db, ctx.schema, 'P1')).toMatchObject({ version: 3 });
    expect(await findPatient(ctx.db, ctx.schema, 'P2')).toMatchObject({
      family: 'Bravo-2',
      version: 3,
      mergedInto: 'P1',
    });
    expect(await appliedCount()).toBe(5);
  });
});
