import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patientRegistered } from '../../test/support/fixtures.js';
import { createTestContext, uniqueId, type TestContext } from '../../test/support/harness.js';
import { ensureTopics } from './admin.js';
import { createConsumerRunner } from './consumer.js';
import { deleteGroupIfUnused } from './groups.js';

/** Consumer groups the hub is done with, against the real broker. */
describe('deleteGroupIfUnused', () => {
  let ctx: TestContext;
  let dlq: string;

  beforeAll(async () => {
    ctx = await createTestContext('groups');
    dlq = `hub.dlq.${ctx.id}`;
    ctx.extraTopics.push(dlq);
    await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  it('keeps a group that still has a member, deletes it with its offsets once the member left, and ignores a group that does not exist', async () => {
    // Given a runner that applied an event and committed it to its group
    const topic = ctx.topicFor('PatientRegistered');
    await ctx.producer.publish([patientRegistered('PD1', 'Deleted', 'd-1')]);
    const groupId = uniqueId('g');
    let applied!: () => void;
    const done = new Promise<void>((r) => (applied = r));
    const runner = createConsumerRunner({
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      groupId,
      topics: [topic],
      dlqTopic: dlq,
      logger: ctx.logger,
      handle: () => {
        applied();
        return Promise.resolve();
      },
    });
    await runner.start();
    await done;

    // When it is asked to delete the group while the runner is a member, then it keeps it
    expect(await deleteGroupIfUnused(ctx.kafka, groupId)).toBe(false);

    // When the runner has left (its stop commits the applied offsets first), then it deletes it, offsets and all
    await runner.stop();
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      const committed = async () =>
        (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions.filter(
          (p) => Number(p.offset) >= 0,
        );
      expect((await committed()).length).toBeGreaterThan(0);
      expect(await deleteGroupIfUnused(ctx.kafka, groupId)).toBe(true);
      expect(await committed()).toEqual([]);
    } finally {
      await admin.disconnect();
    }

    // ... and a group that does not exist (any more) is no error
    expect(await deleteGroupIfUnused(ctx.kafka, groupId)).toBe(false);
  });
});
