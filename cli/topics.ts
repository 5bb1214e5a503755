/** `hub topics …`: the catalog topics on the broker. */
import type { Command } from 'commander';
import { topicNamer } from '../libs/config/index.js';
import { HubError, isHubError } from '../libs/errors/index.js';
import { catalogTopicDefinitions } from '../libs/events/contracts.js';
import { ensureTopics, listTopics } from '../libs/kafka/admin.js';
import { cliKafka, commonEnv } from './env.js';
import { formatTable, isJsonOutput, print } from './output.js';

async function runCreate(json: boolean): Promise<void> {
  const cfg = commonEnv();
  const report = await ensureTopics(
    cliKafka(cfg),
    catalogTopicDefinitions(topicNamer(cfg.HUB_TOPIC_SUFFIX)),
  ).catch((err: unknown) => {
    throw isHubError(err)
      ? err
      : new HubError('HUB_KAFKA_UNAVAILABLE', 'could not reach Kafka', { cause: err });
  });
  print(json, report, () =>
    formatTable(
      report.map((r) => ({
        name: r.name,
        // An upgraded install: the limit was raised on a topic that existed.
        action: r.raisedMaxMessageBytes
          ? `${r.action}, max.message.bytes ${r.raisedMaxMessageBytes.from} -> ${r.raisedMaxMessageBytes.to}`
          : r.action,
      })),
    ),
  );
}

async function runList(json: boolean): Promise<void> {
  const cfg = commonEnv();
  const names = await listTopics(cliKafka(cfg)).catch((err: unknown) => {
    throw new HubError('HUB_KAFKA_UNAVAILABLE', 'could not reach Kafka', { cause: err });
  });
  print(json, names, () => names.join('\n'));
}

export function registerTopicsCommands(program: Command): void {
  const topics = program.command('topics').description('Kafka topics from schemas/catalog.json');
  topics
    .command('create')
    .description('create the catalog topics (retention forever, same partition count); idempotent')
    .action(() => runCreate(isJsonOutput(program)));
  topics
    .command('list')
    .description('list topics on the broker')
    .action(() => runList(isJsonOutput(program)));
}
