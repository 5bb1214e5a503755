/**
 * `hub status` (and, registered from here, `hub dlq …`): what flows, what is
 * stuck, what was refused, at a glance. An edge: reads config, opens
 * connections; each probe is bounded and reports its own failure instead of
 * hiding the rest of the picture.
 */
import type { Command } from 'commander';
import { loadConfig, schemaNameEnv, topicNamer, z } from '../libs/config/index.js';
import { toDbError, type Knex } from '../libs/db/index.js';
import { HubError, type ErrorCode } from '../libs/errors/index.js';
import { catalogTopicDefinitions } from '../libs/events/contracts.js';
import { listTopics } from '../libs/kafka/admin.js';
import { createKafkaClientFromEnv, type KafkaClient } from '../libs/kafka/client.js';
import { dlqTopicsOf } from '../libs/kafka/dlq.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { auditTrailEnv } from '../libs/audit/key.js';
import { AUDIT_TOPIC } from '../libs/audit/topic.js';
import { DELIVERY_SCHEMA } from '../libs/delivery/store.js';
import { parseServiceUrls, probeServices, serviceTargets, type ServiceStatus } from '../libs/ops/services.js';
import {
  auditTrailStatus,
  consumerGroupStatuses,
  deadLetterStatuses,
  projectionStatuses,
  sourceStatuses,
  subscriptionStatuses,
  topicStatuses,
  unregisteredStatuses,
  type AuditTrailStatus,
  type DlqStatus,
  type GroupStatus,
  type ProjectionStatus,
  type SourceStatus,
  type StatusProbe,
  type TopicStatus,
  type UnregisteredAuthorityStatus,
} from '../libs/ops/status.js';
import type { SubscriptionsStatus } from '../libs/ops/subscriptions.js';
import { registerDlqCommands } from './dlq.js';
import { cliDb, cliRegistry, commonEnvSchema } from './env.js';
import { formatTable, isJsonOutput, writeOut } from './output.js';
import { subscriptionsSection } from './status-subscriptions.js';

const statusEnv = commonEnvSchema.extend({
  HUB_OPS_SCHEMA: schemaNameEnv('hub_ops'),
  /** Stable schema of projector-analytics, whose v_unregistered_authorities `hub status` lists. */
  ANALYTICS_SCHEMA: schemaNameEnv('analytics'),
  /**
   * Services to probe: `name=http://host:port,...` (their /health and /ready).
   * Unset: the services `hub up` runs, on their local ports.
   */
  HUB_SERVICE_URLS: z.string().optional(),
  /** The audit trail: the projector group is `hub.audit.projector.<AUDIT_SCHEMA>`. */
  AUDIT_SCHEMA: schemaNameEnv('audit'),
  AUDIT_TOPIC: z.string().min(1).optional(),
  AUDIT_MAX_LAG: auditTrailEnv.AUDIT_MAX_LAG,
  /** Outbound subscriptions and their delivery state (libs/delivery/store.ts). */
  DELIVERY_SCHEMA: schemaNameEnv(DELIVERY_SCHEMA),
});

export interface DependencyStatus {
  name: 'kafka' | 'registry' | 'postgres';
  up: boolean;
  ms: number;
  detail: string;
}

export interface HubStatus {
  at: string;
  dependencies: DependencyStatus[];
  services: ServiceStatus[];
  /** Where the probed service URLs came from. */
  servicesFrom: 'HUB_SERVICE_URLS' | 'hub up defaults';
  topics: TopicStatus[];
  consumerGroups: GroupStatus[];
  projections: ProjectionStatus[];
  deadLetters: DlqStatus[];
  sources: SourceStatus[];
  /** From the analytics read model; empty when it is not there. */
  unregisteredAuthorities: UnregisteredAuthorityStatus[];
  /** Null when Kafka is down. */
  audit?: AuditTrailStatus | null;
  /** Outbound subscriptions (issue 20); null when Postgres is down or the schema could not be read. */
  subscriptions?: SubscriptionsStatus | null;
  problems: string[];
}

async function timed<T>(
  fn: () => Promise<T>,
  timeoutMs: number,
  code: ErrorCode,
): Promise<{ ms: number; value: T }> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HubError(code, `no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ms: Date.now() - t0, value };
  } finally {
    clearTimeout(timer);
  }
}

function errText(err: unknown): string {
  // Driver messages of connection failures name hosts and ports, not data; their first line is enough.
  return err instanceof Error ? err.message.replace(/\n.*/s, '').slice(0, 160) : String(err);
}

type StatusEnv = z.infer<typeof statusEnv>;

async function probeDependencies(
  cfg: StatusEnv,
  kafka: KafkaClient,
  db: Knex,
): Promise<{ deps: DependencyStatus[]; allTopics: string[] }> {
  const deps: DependencyStatus[] = [];
  let allTopics: string[] = [];
  try {
    const r = await timed(() => listTopics(kafka), 8000, 'HUB_KAFKA_UNAVAILABLE');
    allTopics = r.value;
    deps.push({ name: 'kafka', up: true, ms: r.ms, detail: `${allTopics.length} topics` });
  } catch (err) {
    deps.push({ name: 'kafka', up: false, ms: 0, detail: errText(err) });
  }
  try {
    const r = await timed(
      async () => {
        // Through the registry client: its authentication and CA (docs/security.md).
        return (await cliRegistry(cfg).subjects()).length;
      },
      5000,
      'HUB_REGISTRY_UNAVAILABLE',
    );
    deps.push({ name: 'registry', up: true, ms: r.ms, detail: `${r.value} subjects` });
  } catch (err) {
    deps.push({ name: 'registry', up: false, ms: 0, detail: errText(err) });
  }
  try {
    // A timeout reads HUB_DB_ERROR, like any failure the driver does not class as a lost connection.
    const r = await timed(() => db.raw('select 1'), 5000, 'HUB_DB_ERROR');
    deps.push({ name: 'postgres', up: true, ms: r.ms, detail: 'select 1' });
  } catch (err) {
    deps.push({ name: 'postgres', up: false, ms: 0, detail: toDbError(err).code });
  }
  return { deps, allTopics };
}

export async function collectStatus(opts: {
  env?: NodeJS.ProcessEnv;
  schemaLike?: string;
  stallAfterMs?: number;
  sourceSample?: number;
  now?: () => number;
  /** Services to probe when HUB_SERVICE_URLS is unset; the ones `hub up` runs by default. */
  defaultServices?: readonly { name: string; url: string }[];
}): Promise<HubStatus> {
  const cfg = loadConfig(statusEnv, opts.env ?? process.env);
  const now = opts.now ?? Date.now;
  const logger = createLogger({ name: 'hub-cli', level: 'silent' });
  const kafka = createKafkaClientFromEnv(cfg, {
    clientId: 'hub-cli-status',
    logger,
    connectionTimeoutMs: 2000,
  });
  const db: Knex = cliDb(cfg, { min: 0, max: 2 });
  try {
    const { deps, allTopics } = await probeDependencies(cfg, kafka, db);
    const problems: string[] = [];
    const servicesFrom = cfg.HUB_SERVICE_URLS ? 'HUB_SERVICE_URLS' : 'hub up defaults';
    const probed = cfg.HUB_SERVICE_URLS
      ? await probeServices(parseServiceUrls(cfg.HUB_SERVICE_URLS), true)
      : await probeServices(opts.defaultServices ?? serviceTargets(undefined), false);
    problems.push(...probed.problems);
    for (const d of deps) if (!d.up) problems.push(`${d.name} unreachable: ${d.detail}`);
    const up = (name: DependencyStatus['name']) => deps.find((d) => d.name === name)?.up ?? false;
    const topic = topicNamer(cfg.HUB_TOPIC_SUFFIX);
    const p: StatusProbe = {
      settings: {
        topic,
        opsSchema: cfg.HUB_OPS_SCHEMA,
        analyticsSchema: cfg.ANALYTICS_SCHEMA,
        auditSchema: cfg.AUDIT_SCHEMA,
        auditTopic: cfg.AUDIT_TOPIC ?? topic(AUDIT_TOPIC),
        auditMaxLag: cfg.AUDIT_MAX_LAG,
        deliverySchema: cfg.DELIVERY_SCHEMA,
      },
      kafka,
      db,
      now,
      problems,
      kafkaUp: up('kafka'),
      pgUp: up('postgres'),
      registryUp: up('registry'),
      existing: new Set(allTopics),
      catalog: catalogTopicDefinitions(topic).map((t) => t.name),
      dlqTopics: dlqTopicsOf(allTopics, cfg.HUB_TOPIC_SUFFIX),
      ends: new Map(),
    };
    // In this order: problems are listed in the order the sections find them.
    const topics = await topicStatuses(p);
    const consumerGroups = await consumerGroupStatuses(p);
    const projections = await projectionStatuses(p, opts.schemaLike ?? '%', opts.stallAfterMs ?? 5 * 60_000);
    const deadLetters = await deadLetterStatuses(p);
    const registry = cliRegistry(cfg);
    const sources = await sourceStatuses(p, registry, opts.sourceSample ?? 20);
    const unregisteredAuthorities = await unregisteredStatuses(p);
    const audit = await auditTrailStatus(p);
    const subscriptions = await subscriptionStatuses(p);
    return {
      at: new Date(now()).toISOString(),
      dependencies: deps,
      services: probed.services,
      servicesFrom,
      topics,
      consumerGroups,
      projections,
      deadLetters,
      sources,
      unregisteredAuthorities,
      audit,
      subscriptions,
      problems,
    };
  } finally {
    await db.destroy().catch(() => undefined);
  }
}

export function statusText(s: HubStatus): string {
  const section = (title: string, rows: Record<string, unknown>[]) => `== ${title}\n${formatTable(rows)}`;
  const subscriptions = subscriptionsSection(s.subscriptions ?? null);
  return [
    `hub status at ${s.at}`,
    section(
      'dependencies',
      s.dependencies.map((d) => ({
        dependency: d.name,
        state: d.up ? 'up' : 'DOWN',
        ms: d.ms,
        detail: d.detail,
      })),
    ),
    section(
      s.servicesFrom === 'hub up defaults'
        ? 'services (/ready on the ports `hub up` uses; HUB_SERVICE_URLS=name=http://host:port,... probes others)'
        : 'services (/ready, from HUB_SERVICE_URLS)',
      s.services.map((x) => ({ service: x.service, state: x.state, failing: x.failing, url: x.url })),
    ),
    section(
      'sources (newest record per source)',
      s.sources.map((x) => ({
        source: x.source,
        lastMessageAt: x.lastMessageAt,
        ageS: x.ageSeconds,
        topic: x.topic,
      })),
    ),
    section(
      'projections (Postgres checkpoints vs topic end offsets)',
      s.projections.map((p) => ({
        schema: p.schema,
        state: p.state,
        lag: p.lag,
        lastCheckpointAt: p.lastCheckpointAt ?? '',
      })),
    ),
    section(
      'consumer groups (committed offsets vs end offsets)',
      s.consumerGroups.map((g) => ({ group: g.group, partitions: g.partitions, lag: g.lag })),
    ),
    section(
      'audit trail (audit topic end offsets vs the audit projector’s committed offsets)',
      s.audit
        ? [
            {
              topic: s.audit.topic,
              group: s.audit.group,
              state: s.audit.state,
              lag: s.audit.lag,
              end: s.audit.end,
            },
          ]
        : [],
    ),
    section(
      'dead letters',
      s.deadLetters.map((d) => ({ ...d })),
    ),
    section(subscriptions.title, subscriptions.rows),
    section(
      'unregistered authorities (identifier systems the site configuration does not register; analytics v_unregistered_authorities)',
      s.unregisteredAuthorities.map((a) => ({
        system: a.system,
        events: a.events,
        kinds: a.kinds,
        sources: a.sources,
        firstSeen: a.firstSeen,
        lastSeen: a.lastSeen,
      })),
    ),
    section(
      'topics',
      s.topics.map((t) => ({
        topic: t.topic,
        partitions: t.partitions,
        endOffset: t.endOffset,
        exists: t.exists,
      })),
    ),
    s.problems.length > 0
      ? `== problems\n${s.problems.map((p) => `- ${p}`).join('\n')}`
      : '== problems\n(none)',
  ].join('\n\n');
}

/** `hub status` and `hub dlq …`; one registration line in cli/hub.ts. */
export function registerOpsCommands(program: Command): void {
  program
    .command('status')
    .description(
      'dependencies, each source’s last message time, projection lag and state, consumer-group lag, dead-letter counts, outbound subscriptions, topic offsets',
    )
    .option('--schemas <like>', 'only projection schemas matching this SQL LIKE pattern', '%')
    .option(
      '--stall-after <seconds>',
      'a projection with lag and no checkpoint for this long is stalled',
      '300',
    )
    .option('--source-sample <n>', 'newest records read per partition to find source times', '20')
    .action(async (o: { schemas: string; stallAfter: string; sourceSample: string }) => {
      const stall = Number(o.stallAfter);
      const sample = Number(o.sourceSample);
      if (!Number.isFinite(stall) || stall <= 0 || !Number.isInteger(sample) || sample <= 0) {
        throw new HubError('HUB_INPUT_INVALID', '--stall-after and --source-sample must be positive numbers');
      }
      const s = await collectStatus({
        schemaLike: o.schemas,
        stallAfterMs: stall * 1000,
        sourceSample: sample,
      });
      await writeOut(isJsonOutput(program) ? `${JSON.stringify(s, null, 2)}\n` : `${statusText(s)}\n`);
      const down = s.dependencies.find((d) => !d.up);
      if (down) {
        throw new HubError(
          down.name === 'kafka'
            ? 'HUB_KAFKA_UNAVAILABLE'
            : down.name === 'registry'
              ? 'HUB_REGISTRY_UNAVAILABLE'
              : 'HUB_DB_UNAVAILABLE',
          `${down.name} is unreachable (${down.detail})`,
        );
      }
    });
  registerDlqCommands(program);
}
