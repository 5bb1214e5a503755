import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, eventually, uniqueId, type TestContext } from '../../test/support/harness.js';
import { patientRegistered } from '../../test/support/fixtures.js';
import { privateBroker, type PrivateBroker } from '../../test/support/private-broker.js';
import { catalogTopicDefinitions } from '../events/contracts.js';
import { ensureTopics } from './admin.js';
import { createKafkaClient, type KafkaClient } from './client.js';
import { createConsumerRunner, type ConsumerRunner } from './consumer.js';
import { createEventProducer, type EventProducer } from './producer.js';

const PAUSE_MS = 40_000;

/**
 * A broker that hangs for longer than kafkajs' 30 s request timeout (a
 * private one, paused with SIGSTOP): afterwards the runner must be a member
 * of its group again, not a consumer that fetches outside any group (seen:
 * group Empty, nothing committed, while the projector went on applying).
 */
describe('consumer runner after a broker hang', () => {
  let ctx: TestContext;
  let broker: PrivateBroker;
  let kafka: KafkaClient;
  let producer: EventProducer;
  let runner: ConsumerRunner | undefined;

  beforeAll(async () => {
    ctx = await createTestContext('hang');
    broker = await privateBroker(ctx, 'hang-broker');
    await broker.start();
    kafka = createKafkaClient({ brokers: broker.brokers, clientId: ctx.id, logger: ctx.logger });
    await ensureTopics(kafka, [
      ...catalogTopicDefinitions(ctx.topic).filter((t) => t.name === ctx.topicFor('PatientRegistered')),
      { name: `hub.dlq.${ctx.id}`, partitions: 1, replicationFactor: 1, retentionMs: -1 },
    ]);
    producer = createEventProducer({ kafka, codec: ctx.codec, topicFor: ctx.topicFor });
    await producer.connect();
  }, 240_000);

  afterAll(async () => {
    const pid = await broker?.pid().catch(() => 0);
    if (pid) process.kill(pid, 'SIGCONT');
    await runner?.stop();
    await producer?.disconnect().catch(() => undefined);
    await broker?.remove();
    await ctx?.cleanup();
  }, 120_000);

  it('given a broker hung past the request timeout, then the runner is a member of its group again and keeps applying', async () => {
    const groupId = uniqueId('hang');
    const seen = new Set<string>();
    runner = createConsumerRunner({
      kafka,
      codec: ctx.codec,
      producer,
      groupId,
      topics: [ctx.topicFor('PatientRegistered')],
      dlqTopic: `hub.dlq.${ctx.id}`,
      logger: ctx.logger,
      handle: (b) => {
        for (const r of b.records) seen.add(r.event.data.meta.eventId);
        return Promise.resolve();
      },
    });
    await runner.start();
    const admin = kafka.admin();
    await admin.connect();
    const groupState = async () => {
      const { groups } = await admin.describeGroups([groupId]);
      return { state: groups[0]?.state, members: groups[0]?.members.length ?? 0 };
    };
    try {
      // Given a member applying events
      const before = patientRegistered('HANG-1', 'Before', 'hang-1');
      await producer.publish([before]);
      await eventually(async () => Promise.resolve(seen.has(before.data.meta.eventId) ? true : undefined), {
        timeoutMs: 60_000,
        what: 'the first event applied',
      });
      expect(await groupState()).toEqual({ state: 'Stable', members: 1 });

      // When the broker hangs for longer than the client's request timeout
      const pid = await broker.pid();
      process.kill(pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, PAUSE_MS));
      process.kill(pid, 'SIGCONT');

      // Then the group has its member again, and new events are applied
      const after = await eventually(
        async () => {
          const g = await groupState().catch(() => null);
          return g?.state === 'Stable' && g.members === 1 ? g : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 500, what: 'the group Stable with one member after the hang' },
      );
      expect(after).toEqual({ state: 'Stable', members: 1 });
      const next = patientRegistered('HANG-2', 'After', 'hang-2');
      await producer.publish([next]);
      await eventually(() => Promise.resolve(seen.has(next.data.meta.eventId) ? true : undefined), {
        timeoutMs: 60_000,
        what: 'an event applied after the hang',
      });
      // ... and stays a member (a lost member shows Empty again after its session)
      await new Promise((r) => setTimeout(r, 8_000));
      expect(await groupState()).toEqual({ state: 'Stable', members: 1 });
    } finally {
      await admin.disconnect();
    }
  }, 300_000);
});
