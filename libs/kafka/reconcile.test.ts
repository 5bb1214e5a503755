import { describe, expect, it } from 'vitest';
import { exitCodeOf, HubError } from '../errors/index.js';
import { resolveTopics } from './admin.js';
import { reconcileTopicsWith, topicDrift, type ObservedTopic, type ReconcileAdmin } from './reconcile.js';

const [wantedLocal] = resolveTopics('local', [{ name: 'clinical.order.v1', partitions: 6, retentionMs: -1 }]);
const [wantedProd] = resolveTopics('production', [
  { name: 'clinical.order.v1', partitions: 6, retentionMs: -1, maxMessageBytes: 20_971_520 },
]);

const observed = (o: {
  partitions?: number;
  replicas?: number[];
  configs?: Record<string, string>;
}): ObservedTopic => ({
  partitions: o.partitions ?? 6,
  replicas: o.replicas ?? Array<number>(o.partitions ?? 6).fill(1),
  configs: new Map<string, string | null>(
    Object.entries({
      'min.insync.replicas': '1',
      'retention.ms': '-1',
      'cleanup.policy': 'delete',
      'unclean.leader.election.enable': 'false',
      'max.message.bytes': '1048588',
      ...o.configs,
    }),
  ),
});

describe('topicDrift', () => {
  it('given a topic as the environment says, then no drift', () => {
    expect(topicDrift(wantedLocal!, observed({}))).toEqual([]);
  });

  it('given a single-copy topic in production, then the factor needs a reassignment and min.isr waits for it', () => {
    const d = topicDrift(wantedProd!, observed({ configs: { 'max.message.bytes': '20971520' } }));
    expect(d.map((x) => [x.setting, x.actual, x.wanted, x.remedy])).toEqual([
      ['replication.factor', '1', '3', 'reassign'],
      ['min.insync.replicas', '1', '2', 'reassign'],
    ]);
    expect(d[0]?.note).toContain('kafka-reassign-partitions');
  });

  it('given fewer partitions, then an increase on request; given more, then never decreased', () => {
    expect(topicDrift(wantedLocal!, observed({ partitions: 3 }))).toEqual([
      {
        setting: 'partitions',
        actual: '3',
        wanted: '6',
        remedy: 'increase-partitions',
        note: 'run with --increase-partitions',
      },
    ]);
    expect(topicDrift(wantedLocal!, observed({ partitions: 12 }))[0]).toMatchObject({
      setting: 'partitions',
      remedy: 'manual',
    });
  });

  it('given configs that can be made safer, then alter; given ones that would lose records, then manual', () => {
    const d = topicDrift(
      { ...wantedLocal!, maxMessageBytes: 20_971_520 },
      observed({
        configs: {
          'min.insync.replicas': '2',
          'retention.ms': '604800000',
          'unclean.leader.election.enable': 'true',
          'cleanup.policy': 'compact',
        },
      }),
    );
    expect(d.map((x) => [x.setting, x.remedy])).toEqual([
      ['min.insync.replicas', 'alter'],
      ['unclean.leader.election.enable', 'alter'],
      ['retention.ms', 'alter'],
      ['cleanup.policy', 'manual'],
      ['max.message.bytes', 'alter'],
    ]);
    // a shorter retention than the topic has would delete records: reported, not applied
    const shorter = topicDrift({ ...wantedLocal!, retentionMs: 3_600_000 }, observed({}));
    expect(shorter).toEqual([expect.objectContaining({ setting: 'retention.ms', remedy: 'manual' })]);
  });

  it('given uneven replica counts (a reassignment half done), then the range is shown', () => {
    const d = topicDrift(
      wantedProd!,
      observed({
        replicas: [3, 3, 1, 3, 3, 3],
        configs: { 'min.insync.replicas': '2', 'max.message.bytes': '20971520' },
      }),
    );
    expect(d).toEqual([
      expect.objectContaining({ setting: 'replication.factor', actual: '1-3', wanted: '3' }),
    ]);
  });
});

describe('reconcileTopicsWith refusals', () => {
  /** An admin that records calls and answers a cluster of `brokers` nodes. */
  function fakeAdmin(brokers: number) {
    const calls: string[] = [];
    const fail = (name: string) => () => {
      calls.push(name);
      return Promise.reject(new Error(`${name} not expected`));
    };
    const admin = {
      describeCluster: () => {
        calls.push('describeCluster');
        return Promise.resolve({
          brokers: Array.from({ length: brokers }, (_, i) => ({
            nodeId: i + 1,
            host: '127.0.0.1',
            port: 9092 + i,
          })),
          controller: 1,
          clusterId: 'test',
        });
      },
      listTopics: fail('listTopics'),
      createTopics: fail('createTopics'),
      fetchTopicMetadata: fail('fetchTopicMetadata'),
      fetchTopicOffsets: fail('fetchTopicOffsets'),
      describeConfigs: fail('describeConfigs'),
      alterConfigs: fail('alterConfigs'),
      createPartitions: fail('createPartitions'),
    } as unknown as ReconcileAdmin;
    return { admin, calls };
  }
  const thin = { name: 'clinical.order.v1', partitions: 6, retentionMs: -1, replicationFactor: 1 };

  it('given production with a replication factor below 3, then HUB_CONFIG_INVALID (exit 2) before asking the cluster', async () => {
    const { admin, calls } = fakeAdmin(3);
    const err = await reconcileTopicsWith(admin, [thin], { environment: 'production' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('HUB_CONFIG_INVALID');
    expect(exitCodeOf(err)).toBe(2);
    expect((err as HubError).message).toContain('topic clinical.order.v1: replication factor 1 < 3');
    expect((err as HubError).message).toContain('--force');
    expect(calls).toEqual([]);
  });

  it('given --force, then the refusal is lifted (and the cluster asked)', async () => {
    const { admin, calls } = fakeAdmin(3);
    await reconcileTopicsWith(admin, [thin], {
      environment: 'production',
      force: true,
      timeoutMs: 200,
    }).catch(() => undefined);
    expect(calls.slice(0, 2)).toEqual(['describeCluster', 'listTopics']);
  });

  it('given fewer brokers than the replication factor, then a clear HUB_CONFIG_INVALID naming both', async () => {
    const { admin, calls } = fakeAdmin(1);
    await expect(
      reconcileTopicsWith(admin, [{ name: 'a', partitions: 1, retentionMs: -1 }], { environment: 'cluster' }),
    ).rejects.toMatchObject({
      code: 'HUB_CONFIG_INVALID',
      message: expect.stringContaining(
        'the cluster has 1 broker(s) but environment cluster needs replication factor 3',
      ) as string,
    });
    expect(calls).toEqual(['describeCluster']);
  });
});
