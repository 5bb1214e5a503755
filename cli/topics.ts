/** `hub topics …`: the catalog topics on the broker. */
import { Option, type Command } from 'commander';
import { TOPIC_ENVIRONMENTS, topicNamer, type TopicEnvironment } from '../libs/config/index.js';
import { HubError, isHubError } from '../libs/errors/index.js';
import { catalogTopicDefinitions } from '../libs/events/contracts.js';
import { listTopics } from '../libs/kafka/admin.js';
import { reconcileTopics, type Drift, type ReconcileReport } from '../libs/kafka/reconcile.js';
import { cliKafka, commonEnv } from './env.js';
import { formatTable, isJsonOutput, print } from './output.js';

interface CreateOptions {
  environment?: TopicEnvironment;
  increasePartitions?: boolean;
  force?: boolean;
  dryRun?: boolean;
}

const driftText = (d: Drift) => `${d.setting} ${d.actual} -> ${d.wanted}${d.note ? ` (${d.note})` : ''}`;

/** One line per topic: what it is now, what was changed, what is left. Pure. */
export function reconcileText(r: ReconcileReport): string {
  const rows = r.topics.map((t) => ({
    name: t.name,
    action: t.action,
    replication: `${t.settings.replicationFactor}/${t.settings.minInsyncReplicas}`,
    partitions: t.settings.partitions,
    details: [
      ...t.fixed.map((d) => `fixed ${d.setting} ${d.actual} -> ${d.wanted}`),
      ...t.drift.map(driftText),
    ].join('; '),
  }));
  const warnings = r.topics.flatMap((t) => t.warnings.map((w) => `warning: ${t.name}: ${w}`));
  const head = `environment ${r.environment} (${r.brokers} broker${r.brokers === 1 ? '' : 's'}); replication shown as factor/min.insync.replicas`;
  return [head, formatTable(rows), ...warnings].join('\n');
}

async function runCreate(json: boolean, o: CreateOptions): Promise<void> {
  const cfg = commonEnv();
  const report = await reconcileTopics(
    cliKafka(cfg),
    catalogTopicDefinitions(topicNamer(cfg.HUB_TOPIC_SUFFIX)),
    {
      environment: o.environment ?? cfg.KAFKA_TOPIC_ENV,
      increasePartitions: o.increasePartitions ?? false,
      force: o.force ?? false,
      dryRun: o.dryRun ?? false,
    },
  ).catch((err: unknown) => {
    throw isHubError(err)
      ? err
      : new HubError('HUB_KAFKA_UNAVAILABLE', 'could not reach Kafka', { cause: err });
  });
  print(json, report, () => reconcileText(report));
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
    .description(
      "create the catalog topics with the environment's replication, or reconcile existing ones: " +
        'safe config fixes (min.insync.replicas, retention kept longer, unclean election, max.message.bytes), ' +
        'the rest reported as drift; idempotent',
    )
    .addOption(
      new Option(
        '--environment <env>',
        'replication settings from schemas/catalog.json (default: KAFKA_TOPIC_ENV, else local)',
      ).choices(TOPIC_ENVIRONMENTS),
    )
    .option(
      '--increase-partitions',
      "add partitions to topics that have fewer than the catalog says (moves patients' keys to other partitions)",
    )
    .option('--force', 'accept a production replication factor below 3')
    .option('--dry-run', 'report what differs; create and change nothing')
    .action((o: CreateOptions) => runCreate(isJsonOutput(program), o));
  topics
    .command('list')
    .description('list topics on the broker')
    .action(() => runList(isJsonOutput(program)));
}
