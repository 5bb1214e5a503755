import type { Admin } from 'kafkajs';
import type { TopicEnvironment } from '../config/index.js';
import { HubError } from '../errors/index.js';
import { productionProblems, type TopicSettings } from '../events/topic-settings.js';
import {
  ConfigResourceTypes,
  createMissing,
  Deadline,
  DEFAULT_WAIT_MS,
  environmentFor,
  MAX_MESSAGE_BYTES,
  MIN_INSYNC,
  replaceTopicConfigs,
  resolveTopics,
  retrying,
  UNCLEAN_ELECTION,
  waitForTopicsReady,
  type DescribedConfig,
  type EnsureOptions,
  type ResolvedTopic,
  type TopicDefinition,
} from './admin.js';
import type { KafkaClient } from './client.js';

/**
 * `hub topics create`: brings existing topics to what the catalog and the
 * environment say, as far as that is safe, and says what it left. Configs
 * that only make the log safer or keep more are changed; what moves keys
 * (partitions) only when asked; what moves data between brokers (the
 * replication factor) or could delete records is reported with how to do it.
 */

export type DriftSetting =
  | 'partitions'
  | 'replication.factor'
  | typeof MIN_INSYNC
  | 'retention.ms'
  | 'cleanup.policy'
  | typeof UNCLEAN_ELECTION
  | typeof MAX_MESSAGE_BYTES;

/**
 * How a difference is resolved: `alter` here (safe config change);
 * `increase-partitions` here when asked; `reassign` by an operator moving
 * replicas (kafka-reassign-partitions); `manual` never by the hub (it would
 * lose records or ordering).
 */
export type Remedy = 'alter' | 'increase-partitions' | 'reassign' | 'manual';

export interface Drift {
  setting: DriftSetting;
  actual: string;
  wanted: string;
  remedy: Remedy;
  /** Why, or what to run; names topics and settings only. */
  note?: string;
}

/** What the cluster has for a topic. */
export interface ObservedTopic {
  partitions: number;
  /** Replica count of each partition. */
  replicas: readonly number[];
  /** Effective configs (the topic's own or the broker default). */
  configs: ReadonlyMap<string, string | null>;
}

export const REASSIGN_HINT =
  'move replicas with kafka-reassign-partitions --bootstrap-server <broker> --reassignment-json-file <plan.json> --execute (a plan lists the new replicas of every partition; --verify until done)';

export const KEY_ORDER_WARNING =
  "a patient's key now maps to another partition: events of one patient written before and after the change are in different partitions and may be read out of order, and every co-partitioned topic needs the same count; stop producers and let consumers catch up first";

/** Retention that keeps at least as much: raising it never deletes a record. */
function keepsMore(wanted: number, actual: number): boolean {
  return wanted === -1 || (actual !== -1 && wanted >= actual);
}

function partitionDrift(wanted: ResolvedTopic, actual: ObservedTopic): Drift[] {
  if (actual.partitions === wanted.partitions) return [];
  const base = {
    setting: 'partitions' as const,
    actual: String(actual.partitions),
    wanted: String(wanted.partitions),
  };
  if (actual.partitions < wanted.partitions) {
    return [{ ...base, remedy: 'increase-partitions', note: 'run with --increase-partitions' }];
  }
  return [{ ...base, remedy: 'manual', note: 'partitions are never decreased (Kafka cannot remove them)' }];
}

function replicationDrift(wanted: ResolvedTopic, actual: ObservedTopic): Drift[] {
  const lo = Math.min(...actual.replicas);
  const hi = Math.max(...actual.replicas);
  const out: Drift[] = [];
  if (lo !== wanted.replicationFactor || hi !== wanted.replicationFactor) {
    out.push({
      setting: 'replication.factor',
      actual: lo === hi ? String(lo) : `${lo}-${hi}`,
      wanted: String(wanted.replicationFactor),
      remedy: 'reassign',
      note: REASSIGN_HINT,
    });
  }
  const isr = actual.configs.get(MIN_INSYNC);
  if (isr !== String(wanted.minInsyncReplicas)) {
    // Above the replicas a topic has, no acks=all write would succeed: raise the factor first.
    const now = wanted.minInsyncReplicas <= lo;
    out.push({
      setting: MIN_INSYNC,
      actual: String(isr),
      wanted: String(wanted.minInsyncReplicas),
      remedy: now ? 'alter' : 'reassign',
      ...(now ? {} : { note: 'after the replication factor is raised' }),
    });
  }
  const unclean = actual.configs.get(UNCLEAN_ELECTION);
  if (unclean !== String(wanted.uncleanLeaderElection)) {
    out.push({
      setting: UNCLEAN_ELECTION,
      actual: String(unclean),
      wanted: String(wanted.uncleanLeaderElection),
      remedy: 'alter',
    });
  }
  return out;
}

function logDrift(wanted: ResolvedTopic, actual: ObservedTopic): Drift[] {
  const out: Drift[] = [];
  const retention = Number(actual.configs.get('retention.ms'));
  if (retention !== wanted.retentionMs) {
    const safe = Number.isFinite(retention) && keepsMore(wanted.retentionMs, retention);
    out.push({
      setting: 'retention.ms',
      actual: String(actual.configs.get('retention.ms')),
      wanted: String(wanted.retentionMs),
      remedy: safe ? 'alter' : 'manual',
      ...(safe
        ? {}
        : { note: 'lowering retention deletes records; kafka-configs --alter if that is intended' }),
    });
  }
  const policy = actual.configs.get('cleanup.policy');
  const wantedPolicy = wanted.cleanupPolicy ?? 'delete';
  if (policy !== wantedPolicy) {
    out.push({
      setting: 'cleanup.policy',
      actual: String(policy),
      wanted: wantedPolicy,
      remedy: 'manual',
      note: 'compaction keeps only the last record per key: not changed by the hub',
    });
  }
  const maxBytes = Number(actual.configs.get(MAX_MESSAGE_BYTES));
  // Never lowered: an operator may have raised it further.
  if (wanted.maxMessageBytes !== undefined && !(maxBytes >= wanted.maxMessageBytes)) {
    out.push({
      setting: MAX_MESSAGE_BYTES,
      actual: String(actual.configs.get(MAX_MESSAGE_BYTES)),
      wanted: String(wanted.maxMessageBytes),
      remedy: 'alter',
    });
  }
  return out;
}

/** Every difference between what a topic should be and what it is. Pure. */
export function topicDrift(wanted: ResolvedTopic, actual: ObservedTopic): Drift[] {
  return [
    ...partitionDrift(wanted, actual),
    ...replicationDrift(wanted, actual),
    ...logDrift(wanted, actual),
  ];
}

export interface ReconcileOptions extends EnsureOptions {
  /** Add partitions to topics that have fewer than wanted (moves keys: see KEY_ORDER_WARNING). */
  increasePartitions?: boolean;
  /** Production settings below the minimum (replication factor < 3) are refused unless forced. */
  force?: boolean;
  /** Report only: create and change nothing. */
  dryRun?: boolean;
}

export interface TopicReconcileReport {
  name: string;
  /** missing: a dry run found it absent. drift: something is left for an operator. */
  action: 'created' | 'ok' | 'fixed' | 'drift' | 'missing';
  settings: TopicSettings;
  fixed: Drift[];
  drift: Drift[];
  warnings: string[];
}

export interface ReconcileReport {
  environment: TopicEnvironment;
  brokers: number;
  topics: TopicReconcileReport[];
}

/** The admin calls a reconcile makes; a kafkajs Admin, or a stand-in in unit tests. */
export type ReconcileAdmin = Pick<
  Admin,
  | 'listTopics'
  | 'createTopics'
  | 'fetchTopicMetadata'
  | 'fetchTopicOffsets'
  | 'describeConfigs'
  | 'alterConfigs'
  | 'describeCluster'
  | 'createPartitions'
>;

export async function reconcileTopics(
  kafka: KafkaClient,
  definitions: readonly TopicDefinition[],
  opts: ReconcileOptions = {},
): Promise<ReconcileReport> {
  const environment = environmentFor(kafka, opts);
  // Refused before anything is asked of the cluster.
  refuseUnsafe(environment, resolveTopics(environment, definitions), opts);
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await reconcileTopicsWith(admin, definitions, { ...opts, environment });
  } finally {
    await admin.disconnect();
  }
}

function refuseUnsafe(env: TopicEnvironment, wanted: readonly ResolvedTopic[], opts: ReconcileOptions): void {
  const problems = productionProblems(env, wanted);
  if (problems.length > 0 && !opts.force) {
    throw new HubError(
      'HUB_CONFIG_INVALID',
      `refusing production topics that one disk failure could lose: ${problems.join('; ')}; fix schemas/catalog.json, or --force to accept`,
      { details: { problems } },
    );
  }
}

/** `reconcileTopics` on an admin that is already connected. */
export async function reconcileTopicsWith(
  admin: ReconcileAdmin,
  definitions: readonly TopicDefinition[],
  opts: ReconcileOptions = {},
): Promise<ReconcileReport> {
  const environment = opts.environment ?? 'local';
  const wanted = resolveTopics(environment, definitions);
  refuseUnsafe(environment, wanted, opts);
  const deadline = new Deadline(opts.timeoutMs ?? DEFAULT_WAIT_MS);
  const cluster = await retrying(deadline, 'cluster not described', () => admin.describeCluster());
  const brokers = cluster.brokers.length;
  refuseTooFewBrokers(environment, wanted, brokers);
  const existing = new Set(await retrying(deadline, 'topics not listed', () => admin.listTopics()));
  const present = wanted.filter((t) => existing.has(t.name));
  const missing = wanted.filter((t) => !existing.has(t.name));
  const observed = await observeTopics(admin, present, deadline);
  const reports: TopicReconcileReport[] = [];
  const grown: ResolvedTopic[] = [];
  for (const t of present) {
    const o = observed.get(t.name);
    if (!o) throw new HubError('HUB_KAFKA_UNAVAILABLE', `topic ${t.name}: not in the metadata`);
    const r = await fixTopic(admin, t, o, opts, deadline);
    if (r.fixed.some((d) => d.setting === 'partitions')) grown.push(t);
    reports.push(r);
  }
  if (!opts.dryRun && missing.length > 0) await createMissing(admin, missing, deadline);
  // New and grown topics are waited for as ensureTopics does: every partition led and answering.
  if (!opts.dryRun) await waitForTopicsReady(admin, [...missing, ...grown], new Set(), deadline);
  for (const t of missing) {
    reports.push({
      name: t.name,
      action: opts.dryRun ? 'missing' : 'created',
      settings: settingsOf(t),
      fixed: [],
      drift: [],
      warnings: [],
    });
  }
  const order = new Map(wanted.map((t, i) => [t.name, i]));
  reports.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
  return { environment, brokers, topics: reports };
}

function refuseTooFewBrokers(env: TopicEnvironment, wanted: readonly ResolvedTopic[], brokers: number): void {
  const need = Math.max(...wanted.map((t) => t.replicationFactor));
  if (need <= brokers) return;
  throw new HubError(
    'HUB_CONFIG_INVALID',
    `the cluster has ${brokers} broker(s) but environment ${env} needs replication factor ${need}: start more brokers (hub infra up --brokers 3) or choose the environment that matches the cluster (--environment local, KAFKA_TOPIC_ENV)`,
    { details: { brokers, replicationFactor: need, environment: env } },
  );
}

function settingsOf(t: ResolvedTopic): TopicSettings {
  return {
    partitions: t.partitions,
    replicationFactor: t.replicationFactor,
    minInsyncReplicas: t.minInsyncReplicas,
    uncleanLeaderElection: t.uncleanLeaderElection,
  };
}

async function observeTopics(
  admin: ReconcileAdmin,
  topics: readonly ResolvedTopic[],
  deadline: Deadline,
): Promise<Map<string, ObservedTopic & { entries: DescribedConfig[] }>> {
  const out = new Map<string, ObservedTopic & { entries: DescribedConfig[] }>();
  if (topics.length === 0) return out;
  const names = topics.map((t) => t.name);
  const meta = await retrying(deadline, 'topic metadata not fetched', () =>
    admin.fetchTopicMetadata({ topics: names }),
  );
  const described = await retrying(deadline, 'topic configs not described', () =>
    admin.describeConfigs({
      resources: names.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
      includeSynonyms: false,
    }),
  );
  for (const m of meta.topics) {
    const entries = described.resources.find((r) => r.resourceName === m.name)?.configEntries ?? [];
    out.set(m.name, {
      partitions: m.partitions.length,
      replicas: m.partitions.map((p) => p.replicas.length),
      configs: new Map(entries.map((e) => [e.configName, e.configValue])),
      entries,
    });
  }
  return out;
}

/** Applies the safe remedies to one existing topic (unless a dry run) and reports the rest. */
async function fixTopic(
  admin: ReconcileAdmin,
  t: ResolvedTopic,
  o: ObservedTopic & { entries: DescribedConfig[] },
  opts: ReconcileOptions,
  deadline: Deadline,
): Promise<TopicReconcileReport> {
  const drift = topicDrift(t, o);
  const fixed: Drift[] = [];
  const warnings: string[] = [];
  const alter = opts.dryRun ? [] : drift.filter((d) => d.remedy === 'alter');
  if (alter.length > 0) {
    await replaceTopicConfigs(
      admin,
      deadline,
      t.name,
      o.entries,
      Object.fromEntries(alter.map((d) => [d.setting, d.wanted])),
    );
    fixed.push(...alter);
  }
  const grow = drift.find((d) => d.remedy === 'increase-partitions');
  if (grow && !opts.increasePartitions) {
    warnings.push(
      `partitions ${grow.actual} -> ${grow.wanted} only with --increase-partitions: ${KEY_ORDER_WARNING}`,
    );
  } else if (grow && !opts.dryRun) {
    await retrying(deadline, `topic ${t.name}: partitions not added`, () =>
      admin.createPartitions({ topicPartitions: [{ topic: t.name, count: t.partitions }] }),
    );
    fixed.push(grow);
    warnings.push(`partitions ${grow.actual} -> ${grow.wanted}: ${KEY_ORDER_WARNING}`);
  }
  const left = drift.filter((d) => !fixed.includes(d));
  const action = left.length > 0 ? 'drift' : fixed.length > 0 ? 'fixed' : 'ok';
  return { name: t.name, action, settings: settingsOf(t), fixed, drift: left, warnings };
}
