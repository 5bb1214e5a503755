import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, uniqueId, type TestContext } from '../../test/support/harness.js';
import { patientRegistered } from '../../test/support/fixtures.js';
import { HubError } from '../errors/index.js';
import { ensureTopics } from './admin.js';
import { createConsumerRunner, type DeadLetter, type DecodedRecord } from './consumer.js';

/** Producer, codec and consumer runner against the real broker and registry. */
describe('consumer runner', () => {
  let ctx: TestContext;
  let dlq: string;

  beforeAll(async () => {
    ctx = await createTestContext('consumer');
    dlq = `hub.dlq.${ctx.id}`;
    ctx.extraTopics.push(dlq);
    await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  async function readDlq(count: number) {
    const got: { headers: Record<string, string>; value: Buffer | null; key: string | null }[] = [];
    const c = ctx.kafka.consumer({ groupId: uniqueId('dlq-reader') });
    await c.connect();
    await c.subscribe({ topic: dlq, fromBeginning: true });
    await new Promise<void>((resolve) => {
      void c.run({
        eachMessage: ({ message }) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
          got.push({ headers, value: message.value, key: message.key?.toString() ?? null });
          if (got.length >= count) resolve();
          return Promise.resolve();
        },
      });
    });
    await c.disconnect();
    return got;
  }

  it('delivers events in order per patient, dead-letters undecodable records with a reason, and keeps going', async () => {
    const topic = ctx.topicFor('PatientRegistered');
    await ctx.producer.publish([patientRegistered('PA', 'One', 'c1'), patientRegistered('PA', 'Two', 'c2')]);
    // Not Avro in the Confluent wire format: a producer that bypassed the hub.
    await ctx.producer.publishRaw([{ topic, key: 'PA', value: Buffer.from('{"not":"avro"}') }]);
    await ctx.producer.publish([patientRegistered('PA', 'Three', 'c3')]);

    const seen: DecodedRecord[] = [];
    const dead: DeadLetter[] = [];
    let done!: () => void;
    const allSeen = new Promise<void>((r) => (done = r));
    const runner = createConsumerRunner({
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      groupId: uniqueId('g'),
      topics: [topic],
      dlqTopic: dlq,
      logger: ctx.logger,
      handle: (b) => {
        seen.push(...b.records);
        if (seen.length >= 3) done();
        return Promise.resolve();
      },
      onDeadLetter: (d) => dead.push(d),
    });
    await runner.start();
    await allSeen;
    await runner.stop();

    const families = seen.map((r) =>
      r.event.type === 'PatientRegistered' ? r.event.data.demographics.names[0]?.family : '',
    );
    expect(families).toEqual(['One', 'Two', 'Three']);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.reasonCode).toBe('HUB_EVENT_UNDECODABLE');
    const [parked] = await readDlq(1);
    expect(parked?.value?.toString()).toBe('{"not":"avro"}');
    expect(parked?.key).toBe('PA');
    expect(parked?.headers['hub-dlq-reason-code']).toBe('HUB_EVENT_UNDECODABLE');
    expect(parked?.headers['hub-dlq-source-topic']).toBe(topic);
  });

  it('isolates a poison event that the handler rejects: the rest of the batch is handled, the culprit parked', async () => {
    const topic = ctx.topicFor('PatientRegistered');
    // Same patient, so the three land in one partition and one batch.
    await ctx.producer.publish([
      patientRegistered('PB', 'Good1', 'p1'),
      patientRegistered('PB', 'Poison', 'p2'),
      patientRegistered('PB', 'Good2', 'p3'),
    ]);
    const handled: string[] = [];
    const checkpoints: bigint[] = [];
    const dead: DeadLetter[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const runner = createConsumerRunner({
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      groupId: uniqueId('g'),
      topics: [topic],
      dlqTopic: dlq,
      logger: ctx.logger,
      handle: (b) => {
        const recs = b.records.filter((r) => r.key === 'PB');
        const names = recs.map((r) =>
          r.event.type === 'PatientRegistered' ? (r.event.data.demographics.names[0]?.family ?? '') : '',
        );
        if (names.includes('Poison')) {
          return Promise.reject(new HubError('HUB_PROJECTION_FAILED', 'cannot apply this event'));
        }
        handled.push(...names);
        checkpoints.push(b.lastOffset);
        if (handled.includes('Good2')) done();
        return Promise.resolve();
      },
      onDeadLetter: (d) => dead.push(d),
    });
    await runner.start();
    await finished;
    await runner.stop();
    expect(handled).toEqual(expect.arrayContaining(['Good1', 'Good2']));
    expect(handled).not.toContain('Poison');
    // (The first test's undecodable record is on this topic too and is parked again for this group.)
    const poisoned = dead.filter((d) => d.reasonCode === 'HUB_PROJECTION_FAILED');
    expect(poisoned).toHaveLength(1);
    // The checkpoint still moves past the parked record.
    expect(checkpoints.at(-1)).toBeGreaterThan(BigInt(poisoned[0]!.offset));
  });
});
