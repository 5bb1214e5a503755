import kafkajs, { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpoints, eventually, uniqueId } from '../../test/support/harness.js';
import { HubError } from '../errors/index.js';
import { createLogger } from '../telemetry/logger.js';
import {
  deleteTopics,
  ensureTopics,
  listTopics,
  waitForGroupCoordinator,
  type TopicDefinition,
} from './admin.js';
import { createKafkaClient, type KafkaClient } from './client.js';

/** Topic creation against the real broker: it returns only once the topics can be used. */
describe('ensureTopics (real broker)', () => {
  let kafka: KafkaClient;
  /** A second client that does not retry: what it sees is what a service starting now would see first. */
  let strict: Kafka;
  const created: string[] = [];

  beforeAll(() => {
    const brokers = endpoints().kafkaBrokers;
    kafka = createKafkaClient({
      brokers,
      clientId: uniqueId('admin-int'),
      logger: createLogger({ name: 'admin-int', level: 'silent' }),
    });
    strict = new Kafka({
      brokers,
      clientId: uniqueId('admin-int-strict'),
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    });
  });
  afterAll(async () => {
    await deleteTopics(kafka, created);
  });

  it('regression: on return every partition of every new topic has a leader and answers offsets ("does not host this topic-partition")', async () => {
    // given three new topics of six partitions
    const id = uniqueId('ensure');
    const defs: TopicDefinition[] = ['a', 'b', 'c'].map((x) => ({
      name: `test.${x}.${id}`,
      partitions: 6,
      replicationFactor: 1,
      retentionMs: -1,
    }));
    created.push(...defs.map((d) => d.name));
    // when they are ensured
    const report = await ensureTopics(kafka, defs);
    // then they were created and a fresh client without retries gets leaders and offsets at once
    expect(report).toEqual(defs.map((d) => ({ name: d.name, action: 'created' })));
    const admin = strict.admin();
    await admin.connect();
    try {
      const meta = await admin.fetchTopicMetadata({ topics: defs.map((d) => d.name) });
      for (const d of defs) {
        const m = meta.topics.find((t) => t.name === d.name);
        expect(m?.partitions.map((p) => p.leader >= 0)).toEqual(Array(6).fill(true));
        const offs = await admin.fetchTopicOffsets(d.name);
        expect(offs.map((o) => [o.partition, o.high]).sort()).toEqual(
          [0, 1, 2, 3, 4, 5].map((p) => [p, '0']),
        );
      }
    } finally {
      await admin.disconnect();
    }
    // and ensuring them again reports them as existing
    expect(await ensureTopics(kafka, defs)).toEqual(defs.map((d) => ({ name: d.name, action: 'exists' })));
  });

  it('a wait that cannot finish within its bound fails with a HubError naming the topic', async () => {
    // given a new topic and a bound no broker can meet
    const name = `test.bound.${uniqueId('ensure')}`;
    created.push(name);
    // when
    const err = await ensureTopics(kafka, [{ name, partitions: 6, replicationFactor: 1, retentionMs: -1 }], {
      timeoutMs: 1,
    }).catch((e: unknown) => e);
    // then
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('HUB_KAFKA_UNAVAILABLE');
    expect((err as HubError).message).toContain(name);
    expect((err as HubError).message).toMatch(/after 1 ms/);
    // (the creation request may still land: wait for it so that afterAll removes the topic)
    await eventually(async () => ((await listTopics(kafka)).includes(name) ? true : undefined), {
      timeoutMs: 2_000,
    }).catch(() => undefined);
  });

  it('an existing topic with another partition count is refused at once', async () => {
    // given a topic with one partition
    const name = `test.count.${uniqueId('ensure')}`;
    created.push(name);
    await ensureTopics(kafka, [{ name, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    // when it is ensured with six / then
    await expect(
      ensureTopics(kafka, [{ name, partitions: 6, replicationFactor: 1, retentionMs: -1 }]),
    ).rejects.toMatchObject({
      code: 'HUB_KAFKA_ERROR',
      message: `topic ${name} has 1 partitions, the catalog says 6`,
    });
  });

  it('raises max.message.bytes of an existing topic (an older install) and keeps its own settings', async () => {
    // given a topic created before the limit existed, with the log's retention and the default limit
    const name = `test.limit.${uniqueId('ensure')}`;
    created.push(name);
    await ensureTopics(kafka, [{ name, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    const configsOf = async () => {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const r = await admin.describeConfigs({
          resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name }],
          includeSynonyms: false,
        });
        return new Map(r.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]));
      } finally {
        await admin.disconnect();
      }
    };
    expect(Number((await configsOf()).get('max.message.bytes'))).toBeLessThan(20 * 1024 * 1024);
    // when it is ensured with a 20 MiB limit
    const def = {
      name,
      partitions: 1,
      replicationFactor: 1,
      retentionMs: -1,
      maxMessageBytes: 20 * 1024 * 1024,
    };
    const [report] = await ensureTopics(kafka, [def]);
    // then the limit is raised and retention.ms is still -1 (a full replace would have reset it)
    expect(report).toMatchObject({ name, action: 'exists', raisedMaxMessageBytes: { to: 20 * 1024 * 1024 } });
    await eventually(
      async () => {
        const c = await configsOf();
        return c.get('max.message.bytes') === String(20 * 1024 * 1024) ? c : undefined;
      },
      { timeoutMs: 10_000 },
    );
    const after = await configsOf();
    expect(after.get('retention.ms')).toBe('-1');
    expect(after.get('cleanup.policy')).toBe('delete');
    // and ensuring again changes nothing; a smaller definition never lowers it
    expect((await ensureTopics(kafka, [def]))[0]).toEqual({ name, action: 'exists' });
    expect((await ensureTopics(kafka, [{ ...def, maxMessageBytes: 2 * 1024 * 1024 }]))[0]).toEqual({
      name,
      action: 'exists',
    });
    expect((await configsOf()).get('max.message.bytes')).toBe(String(20 * 1024 * 1024));
  });

  it('waitForGroupCoordinator returns once a group coordinator answers', async () => {
    // given the running broker / when / then
    await expect(waitForGroupCoordinator(kafka, { timeoutMs: 30_000 })).resolves.toBeUndefined();
  });
});
