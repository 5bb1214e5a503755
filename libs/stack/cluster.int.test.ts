import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogTopicDefinitions } from '../events/contracts.js';
import { ensureTopics } from '../kafka/admin.js';
import { createKafkaClient, type KafkaClient } from '../kafka/client.js';
import { reconcileTopics } from '../kafka/reconcile.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';
import { privateCluster, type PrivateCluster } from '../../test/support/kafka-cluster.js';

// Three combined KRaft nodes of this test's own (one cluster for both tests: each start
// costs a minute on this machine): production topics get 3 copies, 2 in sync, never an
// unclean leader; a record acknowledged by acks=all survives the SIGKILL of its
// partition's leader, and the killed node comes back.
describe('a 3-node KRaft cluster', () => {
  let ctx: TestContext;
  let cluster: PrivateCluster;
  let kafka: KafkaClient;
  const topic = `cluster-smoke-${Date.now()}`;

  beforeAll(async () => {
    ctx = await createTestContext('cluster');
    cluster = await privateCluster(ctx, 'cluster');
    const t0 = Date.now();
    await cluster.start();
    console.log(`3-node cluster started in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    kafka = createKafkaClient({ brokers: cluster.brokers, clientId: ctx.id, logger: ctx.logger });
  }, 300_000);

  afterAll(async () => {
    await cluster?.remove();
    await ctx?.cleanup();
  }, 120_000);

  it('creates the catalog topics with replication factor 3, min.insync.replicas 2 and no unclean election', async () => {
    // given the catalog topics and the production environment (the client's KAFKA_TOPIC_ENV)
    const defs = catalogTopicDefinitions();
    // when they are reconciled
    const production = createKafkaClient({
      brokers: cluster.brokers,
      clientId: `${ctx.id}-production`,
      logger: ctx.logger,
      topicEnvironment: 'production',
    });
    const report = await reconcileTopics(production, defs, { timeoutMs: 120_000 });
    // then all are created, and the cluster describes them as asked
    expect(report).toMatchObject({ environment: 'production', brokers: 3 });
    expect(report.topics.map((t) => t.action)).toEqual(defs.map(() => 'created'));
    const admin = production.admin();
    await admin.connect();
    try {
      const names = defs.map((d) => d.name);
      const meta = await admin.fetchTopicMetadata({ topics: names });
      for (const t of meta.topics) {
        expect(t.partitions.map((p) => p.replicas.length)).toEqual(Array<number>(6).fill(3));
      }
      const configs = await admin.describeConfigs({
        resources: names.map((name) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name })),
        includeSynonyms: false,
      });
      for (const r of configs.resources) {
        const c = new Map(r.configEntries.map((e) => [e.configName, e.configValue]));
        expect([
          r.resourceName,
          c.get('min.insync.replicas'),
          c.get('unclean.leader.election.enable'),
        ]).toEqual([r.resourceName, '2', 'false']);
      }
    } finally {
      await admin.disconnect();
    }
    // and reconciling again finds nothing to do
    const again = await reconcileTopics(production, defs, { timeoutMs: 60_000 });
    expect(again.topics.map((t) => t.action)).toEqual(defs.map(() => 'ok'));
  }, 300_000);

  it('keeps acks=all records across a leader SIGKILL and takes the node back', async () => {
    // given a topic replicated on all three nodes, with min.insync.replicas 2
    await ensureTopics(kafka, [{ name: topic, partitions: 1, replicationFactor: 3, retentionMs: -1 }]);
    const admin = kafka.admin();
    await admin.connect();
    const [cfg] = (
      await admin.describeConfigs({
        resources: [{ type: 2, name: topic, configNames: ['min.insync.replicas'] }],
        includeSynonyms: false,
      })
    ).resources;
    expect(cfg?.configEntries[0]?.configValue).toBe('2');
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(md.topics[0]?.partitions[0]?.replicas.sort()).toEqual([1, 2, 3]);
    // The controller fences a killed broker after broker.session.timeout.ms (9 s), so the
    // producer's retries must outlast that; the hub client's default gives up after ~10 s.
    const producer = kafka.producer({
      idempotent: true,
      retry: { initialRetryTime: 200, maxRetryTime: 2_000, retries: 30 },
    });
    await producer.connect();
    const send = (from: number) =>
      producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: 50 }, (_, i) => ({ key: 'k', value: `m${from + i}` })),
      });
    await send(0);

    // when the leader of partition 0 is killed
    const leader = await cluster.leaderOf(topic, 0);
    await cluster.stopNode(leader, 'SIGKILL');
    const t1 = Date.now();
    await send(50).catch((e: unknown) => {
      throw new Error(`send after kill failed after ${Date.now() - t1} ms: ${String(e)}`);
    });
    console.log(`acks=all send after the leader's SIGKILL took ${Date.now() - t1} ms`);

    // then another node leads, every acknowledged record reads back once, in order,
    // and the killed node rejoins the metadata (started while the records are read)
    expect(await cluster.leaderOf(topic, 0)).not.toBe(leader);
    const t2 = Date.now();
    const [values] = await Promise.all([
      readAll(kafka, topic, 100),
      cluster.startNode(leader).then(() => console.log(`node ${leader} back in ${Date.now() - t2} ms`)),
    ]);
    expect(values).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    expect(await cluster.pid(leader)).toBeGreaterThan(1);
    await producer.disconnect();
    await admin.disconnect();
  }, 300_000);
});

async function readAll(kafka: KafkaClient, topic: string, n: number): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: `${topic}-reader` });
  const values: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${values.length} of ${n}`)), 120_000);
    void consumer.run({
      eachMessage: ({ message }) => {
        values.push(message.value?.toString() ?? '');
        if (values.length >= n) {
          clearTimeout(timer);
          resolve();
        }
        return Promise.resolve();
      },
    });
  });
  await consumer.disconnect();
  return values;
}
