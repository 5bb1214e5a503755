import { afterAll, describe, expect, it } from 'vitest';
import { catalogTopicDefinitions } from '../libs/events/contracts.js';
import { deleteTopics } from '../libs/kafka/admin.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { endpoints, uniqueId } from '../test/support/harness.js';
import { startProcess } from '../test/support/processes.js';

/** `hub topics create` as an operator runs it, against the shared single broker. */
describe('hub topics create', () => {
  const suffix = uniqueId('topicscli');
  const env = {
    KAFKA_BROKERS: endpoints().kafkaBrokers.join(','),
    HUB_TOPIC_SUFFIX: suffix,
    KAFKA_TOPIC_ENV: 'local',
  };
  const names = catalogTopicDefinitions((n) => `${n}.${suffix}`).map((t) => t.name);

  afterAll(async () => {
    const kafka = createKafkaClient({
      brokers: endpoints().kafkaBrokers,
      clientId: suffix,
      logger: createLogger({ name: 'topics-cli', level: 'silent' }),
    });
    await deleteTopics(kafka, names);
  });

  async function hub(args: string[]): Promise<{ code: number | null; output: string }> {
    const proc = startProcess(['cli/hub.ts', ...args], env);
    const code = await new Promise<number | null>((resolve) => proc.child.once('exit', (c) => resolve(c)));
    return { code, output: proc.output() };
  }

  it('refuses production replication on a one-broker cluster with HUB_CONFIG_INVALID and exit code 2', async () => {
    // when / then
    const { code, output } = await hub(['topics', 'create', '--environment', 'production']);
    expect(code).toBe(2);
    expect(output).toContain(
      'hub: HUB_CONFIG_INVALID: the cluster has 1 broker(s) but environment production needs replication factor 3',
    );
  }, 60_000);

  it('creates the catalog topics, then reports them ok', async () => {
    // when run twice
    const first = await hub(['--json', 'topics', 'create']);
    const second = await hub(['topics', 'create']);
    // then the first creates every catalog topic with the local settings, the second finds them as they should be
    expect(first.code).toBe(0);
    // (stdout is the report; kafkajs logs on stderr, interleaved here, are skipped)
    const report = JSON.parse(
      first.output.slice(first.output.indexOf('{\n  "environment"')).split('\n}\n')[0] + '\n}',
    ) as {
      environment: string;
      topics: { name: string; action: string; settings: { replicationFactor: number } }[];
    };
    expect(report.environment).toBe('local');
    expect(report.topics.map((t) => [t.name, t.action, t.settings.replicationFactor])).toEqual(
      names.map((n) => [n, 'created', 1]),
    );
    expect(second.code).toBe(0);
    expect(second.output).toContain('environment local (1 broker)');
    for (const n of names)
      expect(second.output).toMatch(new RegExp(`${n.replace(/\./g, '\\.')}\\s+ok\\s+1/1\\s+6`));
  }, 120_000);
});
