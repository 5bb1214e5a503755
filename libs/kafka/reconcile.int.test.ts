import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpoints, eventually, uniqueId } from '../../test/support/harness.js';
import { createLogger } from '../telemetry/logger.js';
import { deleteTopics } from './admin.js';
import { createKafkaClient, type KafkaClient } from './client.js';
import { reconcileTopics } from './reconcile.js';

/** `hub topics create` against the real (single) broker: drift reported, safe fixes applied, partitions only on request. */
describe('reconcileTopics (real broker)', () => {
  let kafka: KafkaClient;
  const created: string[] = [];

  beforeAll(() => {
    kafka = createKafkaClient({
      brokers: endpoints().kafkaBrokers,
      clientId: uniqueId('reconcile-int'),
      logger: createLogger({ name: 'reconcile-int', level: 'silent' }),
      topicEnvironment: 'local',
    });
  });
  afterAll(async () => {
    await deleteTopics(kafka, created);
  });

  const describeTopic = async (name: string) => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [name] });
      const r = await admin.describeConfigs({
        resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name }],
        includeSynonyms: false,
      });
      return {
        partitions: meta.topics[0]?.partitions.length ?? 0,
        configs: new Map(r.resources[0]?.configEntries.map((e) => [e.configName, e.configValue])),
      };
    } finally {
      await admin.disconnect();
    }
  };

  it('fixes min.insync.replicas, retention and unclean election, reports the rest, adds partitions only when asked', async () => {
    // given a topic made by hand: 2 partitions, min.isr 2 (no write could succeed on one copy),
    // a week's retention, unclean election on, compacted
    const name = `test.reconcile.${uniqueId('drift')}`;
    created.push(name);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic: name,
            numPartitions: 2,
            replicationFactor: 1,
            configEntries: [
              { name: 'min.insync.replicas', value: '2' },
              { name: 'retention.ms', value: '604800000' },
              { name: 'unclean.leader.election.enable', value: 'true' },
              { name: 'cleanup.policy', value: 'compact' },
            ],
          },
        ],
      });
    } finally {
      await admin.disconnect();
    }
    const def = { name, partitions: 4, retentionMs: -1 };

    // when it is reconciled for the local environment without --increase-partitions
    const first = await reconcileTopics(kafka, [def]);

    // then the safe configs are fixed, partitions and cleanup.policy are left as drift, with the key-order warning
    const [r] = first.topics;
    expect(first).toMatchObject({ environment: 'local', brokers: 1 });
    expect(r?.action).toBe('drift');
    expect(r?.fixed.map((d) => [d.setting, d.actual, d.wanted])).toEqual([
      ['min.insync.replicas', '2', '1'],
      ['unclean.leader.election.enable', 'true', 'false'],
      ['retention.ms', '604800000', '-1'],
    ]);
    expect(r?.drift.map((d) => [d.setting, d.actual, d.wanted, d.remedy])).toEqual([
      ['partitions', '2', '4', 'increase-partitions'],
      ['cleanup.policy', 'compact', 'delete', 'manual'],
    ]);
    expect(r?.warnings.join(' ')).toMatch(
      /only with --increase-partitions: a patient's key now maps to another partition/,
    );
    const after = await eventually(
      async () => {
        const d = await describeTopic(name);
        return d.configs.get('min.insync.replicas') === '1' ? d : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(after.partitions).toBe(2);
    expect(after.configs.get('retention.ms')).toBe('-1');
    expect(after.configs.get('unclean.leader.election.enable')).toBe('false');
    // the compaction the topic had is kept: changing it is an operator's decision
    expect(after.configs.get('cleanup.policy')).toBe('compact');

    // when it is reconciled again with --increase-partitions
    const second = await reconcileTopics(kafka, [def], { increasePartitions: true });

    // then the partitions are added (and warned about); only the cleanup.policy drift remains
    const [r2] = second.topics;
    expect(r2?.fixed.map((d) => [d.setting, d.actual, d.wanted])).toEqual([['partitions', '2', '4']]);
    expect(r2?.drift.map((d) => d.setting)).toEqual(['cleanup.policy']);
    expect(r2?.warnings.join(' ')).toContain('partitions 2 -> 4');
    expect((await describeTopic(name)).partitions).toBe(4);
  });

  it('creates a missing topic, then reports it ok; a dry run changes nothing', async () => {
    // given a name that does not exist
    const name = `test.reconcile.${uniqueId('new')}`;
    created.push(name);
    const def = { name, partitions: 3, retentionMs: -1 };
    // when a dry run / then it is reported missing and not created
    expect((await reconcileTopics(kafka, [def], { dryRun: true })).topics[0]?.action).toBe('missing');
    // when reconciled / then created with the local settings, and ok the next time
    const made = await reconcileTopics(kafka, [def]);
    expect(made.topics[0]).toMatchObject({
      action: 'created',
      settings: { partitions: 3, replicationFactor: 1, minInsyncReplicas: 1, uncleanLeaderElection: false },
    });
    expect((await reconcileTopics(kafka, [def])).topics[0]).toMatchObject({
      action: 'ok',
      drift: [],
      fixed: [],
    });
  });

  it('refuses the cluster environment on one broker, naming the broker count', async () => {
    await expect(
      reconcileTopics(kafka, [{ name: `test.reconcile.${uniqueId('rf')}`, partitions: 1, retentionMs: -1 }], {
        environment: 'cluster',
      }),
    ).rejects.toMatchObject({
      code: 'HUB_CONFIG_INVALID',
      message: expect.stringMatching(/has 1 broker/) as string,
    });
  });
});
