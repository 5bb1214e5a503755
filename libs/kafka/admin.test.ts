import { KafkaJSAggregateError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from 'kafkajs';
import type { ITopicConfig } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { ensureTopicsWith, isRetriableKafkaError, type TopicAdmin, type TopicDefinition } from './admin.js';

/** A protocol error as kafkajs builds it from a broker's error code. */
function protocolError(type: string, message: string, retriable = true): KafkaJSProtocolError {
  return Object.assign(new KafkaJSProtocolError(message), { type, retriable });
}

const notHosted = () =>
  protocolError('UNKNOWN_TOPIC_OR_PARTITION', 'This server does not host this topic-partition');

const order: TopicDefinition = {
  name: 'clinical.order.v1',
  catalogName: 'clinical.order.v1',
  partitions: 6,
  retentionMs: -1,
};

/**
 * An admin over an in-memory broker whose metadata lags: `leaderless` lists
 * partitions without a leader, `failures` queues errors per call name.
 */
function fakeAdmin(o: {
  existing?: Record<string, number>;
  leaderless?: () => number[];
  failures?: Partial<Record<keyof TopicAdmin, Error[]>>;
}) {
  const topics = new Map(Object.entries(o.existing ?? {}));
  const calls: string[] = [];
  const requests: ITopicConfig[] = [];
  const maybeFail = (name: keyof TopicAdmin) => {
    calls.push(name);
    const e = o.failures?.[name]?.shift();
    if (e) throw e;
  };
  const admin: TopicAdmin = {
    listTopics: () => {
      maybeFail('listTopics');
      return Promise.resolve([...topics.keys()]);
    },
    createTopics: (req: { topics: ITopicConfig[] }) => {
      maybeFail('createTopics');
      for (const t of req.topics) topics.set(t.topic, t.numPartitions ?? 1);
      requests.push(...req.topics);
      return Promise.resolve(true);
    },
    fetchTopicMetadata: (req?: { topics: string[] }) => {
      maybeFail('fetchTopicMetadata');
      const names = req?.topics ?? [];
      return Promise.resolve({
        topics: names
          .filter((n) => topics.has(n))
          .map((n) => ({
            name: n,
            partitions: Array.from({ length: topics.get(n)! }, (_, p) => ({
              partitionErrorCode: 0,
              partitionId: p,
              leader: (o.leaderless?.() ?? []).includes(p) ? -1 : 1,
              replicas: [1],
              isr: [1],
            })),
          })),
      });
    },
    fetchTopicOffsets: (topic: string) => {
      maybeFail('fetchTopicOffsets');
      const n = topics.get(topic) ?? 0;
      return Promise.resolve(
        Array.from({ length: n }, (_, partition) => ({ partition, offset: '0', high: '0', low: '0' })),
      );
    },
  };
  return { admin, calls, topics, requests };
}

describe('ensureTopicsWith (the wait after creating topics)', () => {
  it('regression: waits while partitions have no leader and names them when the bound is hit', async () => {
    // given a broker whose metadata never shows leaders for partitions 2 and 5
    const { admin } = fakeAdmin({ leaderless: () => [5, 2] });
    // when topics are ensured with a short bound
    const t0 = Date.now();
    const err = await ensureTopicsWith(admin, [order], { timeoutMs: 300 }).catch((e: unknown) => e);
    // then it fails after the bound, naming the topic and the partitions
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('HUB_KAFKA_UNAVAILABLE');
    expect((err as HubError).message).toBe(
      'topic clinical.order.v1: partitions 2,5 have no leader after 300 ms',
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('regression: "does not host this topic-partition" from the offsets request is waited out', async () => {
    // given leaders that appear after a while and offsets that fail twice as on a fresh broker
    let polls = 0;
    const { admin, calls } = fakeAdmin({
      leaderless: () => (polls++ < 2 ? [0, 1, 2, 3, 4, 5] : []),
      failures: { fetchTopicOffsets: [notHosted(), notHosted()] },
    });
    // when
    const report = await ensureTopicsWith(admin, [order], { timeoutMs: 10_000 });
    // then it returns once offsets answered, and reports the topic as created
    expect(report).toEqual([{ name: order.name, action: 'created' }]);
    expect(calls.filter((c) => c === 'fetchTopicOffsets')).toHaveLength(3);
  });

  it('retries retriable refusals of the creation itself and still reports the topic as created', async () => {
    // given a controller that is not ready yet, then a metadata lag on listing
    const notController = protocolError(
      'NOT_CONTROLLER',
      'This is not the correct controller for this cluster',
    );
    const retriesExceeded = new KafkaJSNumberOfRetriesExceeded(notHosted(), {
      retryCount: 8,
      retryTime: 5000,
    });
    const { admin, calls } = fakeAdmin({
      failures: { createTopics: [notController], listTopics: [retriesExceeded] },
    });
    // when
    const report = await ensureTopicsWith(admin, [order], { timeoutMs: 10_000 });
    // then
    expect(report).toEqual([{ name: order.name, action: 'created' }]);
    expect(calls.slice(0, 4)).toEqual(['listTopics', 'listTopics', 'createTopics', 'listTopics']);
  });

  it('fails at once on a partition count that differs from the catalog', async () => {
    // given an existing topic with 3 partitions where the catalog says 6
    const { admin } = fakeAdmin({ existing: { [order.name]: 3 } });
    // when / then: no waiting, a non-retriable error that says why
    const t0 = Date.now();
    await expect(ensureTopicsWith(admin, [order], { timeoutMs: 30_000 })).rejects.toMatchObject({
      code: 'HUB_KAFKA_ERROR',
      message: 'topic clinical.order.v1 has 3 partitions, the catalog says 6',
    });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('does not retry errors that waiting cannot fix', async () => {
    // given a creation refused for good
    const invalid = protocolError('POLICY_VIOLATION', 'Request parameters do not satisfy the policy', false);
    const { admin, calls } = fakeAdmin({ failures: { createTopics: [invalid] } });
    // when / then
    await expect(ensureTopicsWith(admin, [order], { timeoutMs: 30_000 })).rejects.toBe(invalid);
    expect(calls).toEqual(['listTopics', 'createTopics']);
  });

  it('given a replication factor above the broker count, then HUB_CONFIG_INVALID naming the environment, at once', async () => {
    // given a one-broker cluster refusing 3 copies
    const invalid = protocolError(
      'INVALID_REPLICATION_FACTOR',
      'Replication factor: 3 larger than available brokers: 1.',
      false,
    );
    const { admin, calls } = fakeAdmin({ failures: { createTopics: [invalid] } });
    // when / then
    await expect(
      ensureTopicsWith(admin, [order], { environment: 'production', timeoutMs: 30_000 }),
    ).rejects.toMatchObject({
      code: 'HUB_CONFIG_INVALID',
      message:
        'topics clinical.order.v1: the cluster has fewer brokers than replication factor 3 of environment production (KAFKA_TOPIC_ENV)',
    });
    expect(calls).toEqual(['listTopics', 'createTopics']);
  });
});

describe('ensureTopicsWith (settings of new topics)', () => {
  const entriesOf = (t: ITopicConfig | undefined) =>
    Object.fromEntries((t?.configEntries ?? []).map((e) => [e.name, e.value]));

  it('given production, then 3 copies, min.insync.replicas 2 and no unclean election', async () => {
    const { admin, requests } = fakeAdmin({});
    await ensureTopicsWith(admin, [order, { name: 'hub.dlq.x', partitions: 1, retentionMs: -1 }], {
      environment: 'production',
      timeoutMs: 5_000,
    });
    expect(requests.map((r) => [r.topic, r.numPartitions, r.replicationFactor])).toEqual([
      ['clinical.order.v1', 6, 3],
      ['hub.dlq.x', 1, 3],
    ]);
    for (const r of requests) {
      expect(entriesOf(r)).toMatchObject({
        'min.insync.replicas': '2',
        'unclean.leader.election.enable': 'false',
        'retention.ms': '-1',
      });
    }
  });

  it('given no environment (a local stack), then one copy and min.insync.replicas 1', async () => {
    const { admin, requests } = fakeAdmin({});
    await ensureTopicsWith(admin, [order], { timeoutMs: 5_000 });
    expect(requests[0]?.replicationFactor).toBe(1);
    expect(entriesOf(requests[0])['min.insync.replicas']).toBe('1');
  });
});

describe('isRetriableKafkaError', () => {
  it('sees retriable causes behind kafkajs wrappers and aggregates', () => {
    expect(isRetriableKafkaError(notHosted())).toBe(true);
    expect(
      isRetriableKafkaError(new KafkaJSNumberOfRetriesExceeded(notHosted(), { retryCount: 1, retryTime: 1 })),
    ).toBe(true);
    const exists = protocolError('TOPIC_ALREADY_EXISTS', 'Topic with this name already exists', false);
    const leader = protocolError('LEADER_NOT_AVAILABLE', 'There is no leader for this topic-partition');
    expect(isRetriableKafkaError(new KafkaJSAggregateError('Topic creation errors', [exists, leader]))).toBe(
      true,
    );
    expect(isRetriableKafkaError(new KafkaJSAggregateError('Topic creation errors', [exists]))).toBe(false);
    expect(isRetriableKafkaError(new Error('boom'))).toBe(false);
    expect(isRetriableKafkaError(new HubError('HUB_KAFKA_ERROR', 'refused'))).toBe(false);
    expect(isRetriableKafkaError(new HubError('HUB_KAFKA_UNAVAILABLE', 'later'))).toBe(true);
  });
});
