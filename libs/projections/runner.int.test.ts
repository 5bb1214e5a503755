import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portalProjection } from '../read-models/portal/model.js';
import { createTestContext, eventually, uniqueId, type TestContext } from '../../test/support/harness.js';
import { patientRegistered } from '../../test/support/fixtures.js';
import { endOffsets, ensureTopics } from '../kafka/admin.js';
import { dropSchema } from '../db/index.js';
import { HubError } from '../errors/index.js';
import { createProjectionRunner, migrateProjection, storedOffsets, type Projection } from './runner.js';

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

  it('regression: a batch applied one fetch ahead whose transaction fails after kafkajs fetched on is fetched again, and every event lands once (issue 23)', async () => {
    // Given a log the pipelined runner has already resolved in kafkajs before its transactions commit
    const topic = ctx.topicFor('PatientRegistered');
    const schema = `${ctx.schema}_pipe`;
    const ids = Array.from({ length: 30 }, (_, i) => `PP${i}`);
    await ctx.producer.publish(ids.map((id) => patientRegistered(id, 'Family', `m-${id}`)));
    const ends = [...(await endOffsets(ctx.kafka, topic))].filter(([, end]) => end > 0n);
    const base = portalProjection([topic]);
    // And a store that fails (retriable) the transactions holding one partition's first record,
    // until that batch gives up (its group's, then both attempts of its own), while the rest lands
    const [first] = ends.map(([p]) => p).sort((x, y) => x - y);
    let failures = 3;
    const projection: Projection = {
      ...base,
      async apply(trx, s, records, opts) {
        if (failures > 0 && records.some((r) => r.partition === first && r.offset === 0n)) {
          failures -= 1;
          throw new HubError('HUB_KAFKA_ERROR', 'injected store failure', { retriable: true });
        }
        await base.apply(trx, s, records, opts);
      },
    };
    await migrateProjection(ctx.db, schema, projection);
    const runner = createProjectionRunner({
      projection,
      schema,
      db: ctx.db,
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      dlqTopic: dlq,
      logger: ctx.logger,
      maxRetries: 1,
    });
    try {
      // When it runs
      await runner.start();
      // Then the failed batch is fetched again (no later fetch brings it), and each partition reaches its end
      await eventually(
        async () => {
          const cp = await storedOffsets(ctx.db, schema, topic);
          return ends.every(([p, end]) => cp.get(p) === end - 1n) ? true : undefined;
        },
        { timeoutMs: 30_000, what: 'checkpoints at the end offsets after the failed batch' },
      );
      expect(failures).toBe(0);
      // And every event was applied once: no gap behind the failed batch, no event twice
      const applied = await ctx.db
        .withSchema(schema)
        .from('applied_events')
        .where({ topic })
        .count<{ n: string }[]>({ n: '*' });
      const published = ends.reduce((n, [, end]) => n + Number(end), 0);
      expect(Number(applied[0]?.n)).toBe(published);
      const patients = await ctx.db
        .withSchema(schema)
        .from('patients')
        .whereIn('patient_id', ids)
        .count<{ n: string }[]>({ n: '*' });
      expect(Number(patients[0]?.n)).toBe(ids.length);
    } finally {
      await runner.stop();
      await dropSchema(ctx.db, schema);
    }
  });

  it('regression: projector offsets are visible to standard consumer-group tools (checkpoints committed to the group, also on a start with nothing new)', async () => {
    // Given a projection runner that commits its checkpoints to its group
    const topic = ctx.topicFor('PatientRegistered');
    const schema = `${ctx.schema}_grp`;
    const projection = portalProjection([topic]);
    await migrateProjection(ctx.db, schema, projection);
    const runnerOn = (groupId: string) =>
      createProjectionRunner({
        projection,
        schema,
        groupId,
        db: ctx.db,
        kafka: ctx.kafka,
        codec: ctx.codec,
        producer: ctx.producer,
        dlqTopic: dlq,
        logger: ctx.logger,
        commitGroupOffsets: true,
      });
    const groupOffsets = async (groupId: string) => {
      const admin = ctx.kafka.admin();
      await admin.connect();
      try {
        const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
        return new Map((t?.partitions ?? []).map((p) => [p.partition, p.offset]));
      } finally {
        await admin.disconnect();
      }
    };
    const ends = [...(await endOffsets(ctx.kafka, topic))].filter(([, end]) => end > 0n);
    const atEnd = (offsets: Map<number, string>) =>
      ends.every(([p, end]) => offsets.get(p) === end.toString());
    try {
      // When it has applied the topic (its checkpoints reach the end offsets)
      const first = uniqueId('g');
      const runner = runnerOn(first);
      await runner.start();
      try {
        await eventually(
          async () => {
            const cp = await storedOffsets(ctx.db, schema, topic);
            return ends.every(([p, end]) => cp.get(p) === end - 1n) ? true : undefined;
          },
          { what: 'checkpoints at the end offsets' },
        );
        // Then its group's committed offsets follow, while it runs: checkpoint + 1
        await eventually(async () => (atEnd(await groupOffsets(first)) ? true : undefined), {
          timeoutMs: 5_000,
          what: 'group offsets at the end offsets',
        });
      } finally {
        await runner.stop();
      }

      // When a runner starts on a group that never committed, with nothing new to apply
      const second = uniqueId('g');
      const idle = runnerOn(second);
      await idle.start();
      try {
        // Then its group shows the checkpoints as well (no lag shown for an idle projector)
        await eventually(async () => (atEnd(await groupOffsets(second)) ? true : undefined), {
          timeoutMs: 5_000,
          what: 'group offsets of an idle start at the end offsets',
        });
      } finally {
        await idle.stop();
      }
    } finally {
      await dropSchema(ctx.db, schema);
    }
  });
});
