import kafkajs, { type Admin, type ConfigSource, type ITopicConfig } from 'kafkajs';
import type { TopicEnvironment } from '../config/index.js';
import { HubError } from '../errors/index.js';
import { topicSettings, type TopicSettings } from '../events/topic-settings.js';
import { topicEnvironmentOf, type KafkaClient } from './client.js';

/**
 * A topic the hub creates. Replication is not chosen here but by the
 * environment (KAFKA_TOPIC_ENV, schemas/catalog.json) through topicSettings;
 * the explicit fields are for tests and drills that need a given shape.
 */
export interface TopicDefinition {
  name: string;
  /** The count before the catalog's per-environment override (catalog topics). */
  partitions: number;
  /** The catalog name (without suffix) of a catalog topic, whose own settings then apply. */
  catalogName?: string;
  /** Explicit settings, over the environment's. */
  replicationFactor?: number;
  minInsyncReplicas?: number;
  uncleanLeaderElection?: boolean;
  /** -1 keeps everything: event topics are the source of truth. */
  retentionMs: number;
  cleanupPolicy?: 'delete' | 'compact';
  /**
   * Topic `max.message.bytes` (largest record batch the broker accepts),
   * when the broker default (1 MiB) is too small: raw messages, dead
   * letters, attachments. Raised on existing topics too, never lowered.
   */
  maxMessageBytes?: number;
}

export interface TopicReport {
  name: string;
  action: 'created' | 'exists';
  /** An existing topic's max.message.bytes was raised from `from` (an upgrade of an older install). */
  raisedMaxMessageBytes?: { from: number; to: number };
}

/** A definition with the environment's settings applied: what is created and compared. */
export type ResolvedTopic = Omit<TopicDefinition, keyof TopicSettings> & TopicSettings;

/** Bounds of the waits below. */
export interface WaitOptions {
  /** Upper bound for the whole wait, in ms (60 s by default). */
  timeoutMs?: number;
}

export interface EnsureOptions extends WaitOptions {
  /** Whose replication (schemas/catalog.json); by default the client's KAFKA_TOPIC_ENV, else local. */
  environment?: TopicEnvironment;
}

/** Applies the environment's settings to each definition (libs/events/topic-settings.ts). */
export function resolveTopics(env: TopicEnvironment, topics: readonly TopicDefinition[]): ResolvedTopic[] {
  return topics.map((t) => ({ ...t, ...topicSettings(env, t) }));
}

/** The environment a call works in: the option, the client's, or local. */
export function environmentFor(kafka: KafkaClient, opts: EnsureOptions): TopicEnvironment {
  return opts.environment ?? topicEnvironmentOf(kafka) ?? 'local';
}

export const DEFAULT_WAIT_MS = 60_000;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2_000;

/** The admin calls topic creation uses; a kafkajs Admin, or a stand-in in unit tests. */
export type TopicAdmin = Pick<
  Admin,
  'listTopics' | 'createTopics' | 'fetchTopicMetadata' | 'fetchTopicOffsets'
> &
  // Only needed to raise max.message.bytes of existing topics (stand-ins in unit tests may lack them).
  Partial<Pick<Admin, 'describeConfigs' | 'alterConfigs' | 'describeCluster' | 'createPartitions'>>;

/**
 * Creates missing topics and verifies existing ones, then waits (bounded, with
 * backoff) until every partition of every topic has a leader in the metadata
 * and answers an offsets request. On a freshly formatted KRaft broker
 * `createTopics` returns before the broker's metadata has caught up, and a
 * client that starts then fails with "This server does not host this
 * topic-partition"; this returns only once that cannot happen any more.
 * Idempotent. An existing topic with a different partition count is an error
 * rather than something to "fix": repartitioning would break per-patient
 * ordering and co-partitioning.
 */
export async function ensureTopics(
  kafka: KafkaClient,
  topics: TopicDefinition[],
  opts: EnsureOptions = {},
): Promise<TopicReport[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await ensureTopicsWith(admin, topics, { ...opts, environment: environmentFor(kafka, opts) });
  } finally {
    await admin.disconnect();
  }
}

/** `ensureTopics` on an admin that is already connected. */
export async function ensureTopicsWith(
  admin: TopicAdmin,
  definitions: TopicDefinition[],
  opts: EnsureOptions = {},
): Promise<TopicReport[]> {
  const deadline = new Deadline(opts.timeoutMs ?? DEFAULT_WAIT_MS);
  const env = opts.environment ?? 'local';
  const topics = resolveTopics(env, definitions);
  const existedBefore = await createMissing(admin, topics, deadline).catch((err: unknown) => {
    throw hasErrorType(err, 'INVALID_REPLICATION_FACTOR')
      ? new HubError(
          'HUB_CONFIG_INVALID',
          `topics ${topics.map((t) => t.name).join(', ')}: the cluster has fewer brokers than replication factor ${Math.max(...topics.map((t) => t.replicationFactor))} of environment ${env} (KAFKA_TOPIC_ENV)`,
          { cause: err },
        )
      : err;
  });
  const raised = await raiseMaxMessageBytes(admin, topics, existedBefore, deadline);
  await waitForTopicsReady(admin, topics, existedBefore, deadline);
  return topics.map((t) => {
    const r = raised.get(t.name);
    return {
      name: t.name,
      action: existedBefore.has(t.name) ? 'exists' : 'created',
      ...(r ? { raisedMaxMessageBytes: r } : {}),
    };
  });
}

export const MAX_MESSAGE_BYTES = 'max.message.bytes';
export const MIN_INSYNC = 'min.insync.replicas';
export const UNCLEAN_ELECTION = 'unclean.leader.election.enable';
// kafkajs is CommonJS: Node's ESM loader does not see these as named exports.
export const { ConfigResourceTypes } = kafkajs;
/** kafkajs ConfigSource.TOPIC_CONFIG: a value set on the topic itself (not a broker default). */
const TOPIC_CONFIG = 1 as ConfigSource;

/**
 * Raises `max.message.bytes` of existing topics whose definition asks for
 * more than they have, so that an install created before the limit existed
 * is upgraded by the same `ensureTopics` that created it. Never lowers it (an
 * operator may have raised it further).
 *
 * kafkajs only offers the non-incremental AlterConfigs, which replaces every
 * dynamic config of the topic: the topic's own settings (retention.ms=-1 and
 * the rest) are read first and sent back with the new limit, or the event
 * log would silently fall back to the broker's 7-day retention.
 */
async function raiseMaxMessageBytes(
  admin: TopicAdmin,
  topics: ResolvedTopic[],
  existedBefore: Set<string>,
  deadline: Deadline,
): Promise<Map<string, { from: number; to: number }>> {
  const raised = new Map<string, { from: number; to: number }>();
  const wanted = topics.filter(
    (t): t is ResolvedTopic & { maxMessageBytes: number } =>
      t.maxMessageBytes !== undefined && existedBefore.has(t.name),
  );
  if (wanted.length === 0) return raised;
  const { describeConfigs } = admin;
  if (!describeConfigs) {
    throw new HubError('HUB_INTERNAL', 'raising max.message.bytes needs describeConfigs and alterConfigs');
  }
  const names = wanted.map((t) => t.name).join(', ');
  const described = await retrying(deadline, `topics ${names}: configs not described`, () =>
    describeConfigs.call(admin, {
      resources: wanted.map((t) => ({ type: ConfigResourceTypes.TOPIC, name: t.name })),
      includeSynonyms: false,
    }),
  );
  for (const t of wanted) {
    const res = described.resources.find((r) => r.resourceName === t.name);
    if (!res) continue;
    const entries = res.configEntries;
    const current = Number(entries.find((e) => e.configName === MAX_MESSAGE_BYTES)?.configValue ?? NaN);
    const target = t.maxMessageBytes;
    if (Number.isFinite(current) && current >= target) continue;
    await replaceTopicConfigs(admin, deadline, t.name, entries, { [MAX_MESSAGE_BYTES]: String(target) });
    raised.set(t.name, { from: Number.isFinite(current) ? current : 0, to: target });
  }
  return raised;
}

/** A config entry as DescribeConfigs answers it. */
export interface DescribedConfig {
  configName: string;
  configValue: string | null;
  configSource: ConfigSource;
  isSensitive: boolean;
}

/**
 * Sets `changes` on a topic through the non-incremental AlterConfigs (all
 * kafkajs offers), which replaces every dynamic config of the topic: the
 * topic's own settings (`entries`, as described) are sent back with the
 * changes, or the event log would silently fall back to the broker's 7-day
 * retention. A sensitive own config cannot be read back, so a replace would
 * erase it: that is left to an operator (kafka-configs --alter).
 */
export async function replaceTopicConfigs(
  admin: Pick<TopicAdmin, 'alterConfigs'>,
  deadline: Deadline,
  topic: string,
  entries: readonly DescribedConfig[],
  changes: Record<string, string>,
): Promise<void> {
  const { alterConfigs } = admin;
  if (!alterConfigs) throw new HubError('HUB_INTERNAL', 'changing topic configs needs alterConfigs');
  const own = entries.filter((e) => e.configSource === TOPIC_CONFIG && !(e.configName in changes));
  const what = Object.entries(changes)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  if (own.some((e) => e.isSensitive || e.configValue === null)) {
    throw new HubError(
      'HUB_KAFKA_ERROR',
      `topic ${topic}: ${what} must be set, but the topic has a sensitive config that a replace would erase; set it with kafka-configs --alter`,
    );
  }
  await retrying(deadline, `topic ${topic}: ${what} not set`, () =>
    alterConfigs.call(admin, {
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: [
            ...own.map((e) => ({ name: e.configName, value: e.configValue ?? '' })),
            ...Object.entries(changes).map(([name, value]) => ({ name, value })),
          ],
        },
      ],
    }),
  );
}

function topicConfig(t: ResolvedTopic): ITopicConfig {
  return {
    topic: t.name,
    numPartitions: t.partitions,
    replicationFactor: t.replicationFactor,
    configEntries: [
      { name: 'retention.ms', value: String(t.retentionMs) },
      { name: 'cleanup.policy', value: t.cleanupPolicy ?? 'delete' },
      // acks=all is only durable if the write reached this many replicas.
      { name: MIN_INSYNC, value: String(t.minInsyncReplicas) },
      { name: UNCLEAN_ELECTION, value: String(t.uncleanLeaderElection) },
      ...(t.maxMessageBytes === undefined
        ? []
        : [{ name: MAX_MESSAGE_BYTES, value: String(t.maxMessageBytes) }]),
    ],
  };
}

/** Creates what is missing, retrying retriable refusals; returns the topics that existed before. */
export async function createMissing(
  admin: TopicAdmin,
  topics: ResolvedTopic[],
  deadline: Deadline,
): Promise<Set<string>> {
  let before: Set<string> | undefined;
  const names = topics.map((t) => t.name).join(', ');
  await retrying(deadline, `topics ${names}: not created`, async () => {
    const existing = new Set(await admin.listTopics());
    // A retry after a partial creation must still report those topics as created.
    before ??= existing;
    const missing = topics.filter((t) => !existing.has(t.name));
    if (missing.length > 0) {
      // Leaders are waited for below, within this call's own bound.
      await admin.createTopics({ topics: missing.map(topicConfig), waitForLeaders: false });
    }
  });
  return before ?? new Set();
}

/** Polls until no topic has a reason left not to be used; throws naming each one that still has. */
export async function waitForTopicsReady(
  admin: TopicAdmin,
  topics: ResolvedTopic[],
  existedBefore: Set<string>,
  deadline: Deadline,
): Promise<void> {
  const pending = new Map(topics.map((t) => [t.name, 'not checked']));
  for (let backoff = FIRST_BACKOFF_MS; ; backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
    for (const t of topics) {
      if (!pending.has(t.name)) continue;
      const why = await deadline
        .race(notReadyReason(admin, t, existedBefore.has(t.name)))
        .catch((err: unknown) => {
          if (!isRetriableKafkaError(err)) throw err;
          return `metadata or offsets not available (${firstLine(err)})`;
        });
      if (why === null) pending.delete(t.name);
      else if (why !== TIMED_OUT) pending.set(t.name, why);
    }
    if (pending.size === 0) return;
    if (deadline.expired) {
      throw new HubError(
        'HUB_KAFKA_UNAVAILABLE',
        [...pending].map(([name, why]) => `topic ${name}: ${why} after ${deadline.label}`).join('; '),
        { details: { topics: [...pending.keys()] } },
      );
    }
    await sleep(Math.min(backoff, deadline.remaining));
  }
}

/** Why a topic cannot be used yet (null: it can); throws on a partition count that differs from the catalog. */
async function notReadyReason(
  admin: TopicAdmin,
  t: ResolvedTopic,
  existedBefore: boolean,
): Promise<string | null> {
  const meta = await admin.fetchTopicMetadata({ topics: [t.name] });
  const m = meta.topics.find((x) => x.name === t.name);
  if (!m || m.partitions.length === 0) return 'not in the metadata';
  if (existedBefore && m.partitions.length !== t.partitions) {
    throw new HubError(
      'HUB_KAFKA_ERROR',
      `topic ${t.name} has ${m.partitions.length} partitions, the catalog says ${t.partitions}`,
    );
  }
  if (m.partitions.length < t.partitions) {
    return `${m.partitions.length} of ${t.partitions} partitions in the metadata`;
  }
  const leaderless = m.partitions.filter((p) => p.leader < 0).map((p) => p.partitionId);
  if (leaderless.length > 0) return `partitions ${sortedList(leaderless)} have no leader`;
  // What consumers and producers do first; this is the call that failed on a fresh broker.
  const answered = new Set((await admin.fetchTopicOffsets(t.name)).map((o) => o.partition));
  const silent = m.partitions.map((p) => p.partitionId).filter((p) => !answered.has(p));
  if (silent.length > 0) return `partitions ${sortedList(silent)} have no offsets`;
  return null;
}

/**
 * Waits (bounded, with backoff) until a group coordinator answers. After a
 * fresh format `__consumer_offsets` does not exist yet, and for a few seconds
 * after it is created the coordinator answers "loading"; a consumer group
 * joining then fails. `hub up` calls this before starting the services.
 */
export async function waitForGroupCoordinator(kafka: KafkaClient, opts: WaitOptions = {}): Promise<void> {
  const deadline = new Deadline(opts.timeoutMs ?? DEFAULT_WAIT_MS);
  const admin = kafka.admin();
  await admin.connect();
  try {
    await retrying(deadline, 'group coordinator: no answer', () => admin.describeGroups(['hub-up-probe']));
  } finally {
    await admin.disconnect();
  }
}

/** Retriable protocol errors by type, for errors that lost their `retriable` flag on the way. */
const RETRIABLE_TYPES = new Set([
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
  'NOT_CONTROLLER',
  'REQUEST_TIMED_OUT',
  'GROUP_LOAD_IN_PROGRESS',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR_FOR_GROUP',
]);

/** Whether a kafkajs error, a cause of it or a part of an aggregate, is a protocol error of `type`. */
function hasErrorType(err: unknown, type: string): boolean {
  const x = err as { type?: unknown; errors?: unknown; cause?: unknown } | null;
  if (typeof x !== 'object' || x === null) return false;
  if (x.type === type) return true;
  if (Array.isArray(x.errors) && x.errors.some((p) => hasErrorType(p, type))) return true;
  return x.cause !== undefined && x.cause !== err && hasErrorType(x.cause, type);
}

/**
 * Whether a kafkajs error may go away by waiting: its own `retriable` flag, a
 * retriable protocol error type, or the same in its cause (kafkajs wraps the
 * last error in KafkaJSNumberOfRetriesExceeded, which is marked
 * non-retriable) or in every part of an aggregate (TOPIC_ALREADY_EXISTS
 * there means a concurrent creator won, which is fine).
 */
export function isRetriableKafkaError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const x = e as { retriable?: unknown; type?: unknown; errors?: unknown; cause?: unknown };
    if (Array.isArray(x.errors)) {
      const parts = x.errors as unknown[];
      const alreadyExists = (p: unknown) => (p as { type?: unknown }).type === 'TOPIC_ALREADY_EXISTS';
      return (
        parts.some((p) => !alreadyExists(p)) &&
        parts.every((p) => alreadyExists(p) || isRetriableKafkaError(p))
      );
    }
    if (x.retriable === true) return true;
    if (typeof x.type === 'string' && RETRIABLE_TYPES.has(x.type)) return true;
    if (x.cause === e) return false;
    e = x.cause;
  }
  return false;
}

const TIMED_OUT: unique symbol = Symbol('timed out');
const RETRY: unique symbol = Symbol('retry');

/** One bound shared by every step of a wait. */
export class Deadline {
  private readonly at: number;
  constructor(private readonly ms: number) {
    this.at = Date.now() + ms;
  }
  get remaining(): number {
    return Math.max(0, this.at - Date.now());
  }
  get expired(): boolean {
    return Date.now() >= this.at;
  }
  /** How the bound reads in messages: "60s", "1.5s", "200 ms". */
  get label(): string {
    return this.ms < 1000 ? `${this.ms} ms` : `${Number((this.ms / 1000).toFixed(1))}s`;
  }
  /** The call's result, or TIMED_OUT when the deadline comes first (the call is left to finish). */
  async race<T>(p: Promise<T>): Promise<T | typeof TIMED_OUT> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<typeof TIMED_OUT>((resolve) => {
          timer = setTimeout(() => resolve(TIMED_OUT), this.remaining);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Runs `fn` until it succeeds, retrying retriable Kafka errors with backoff within the deadline. */
export async function retrying<T>(deadline: Deadline, what: string, fn: () => Promise<T>): Promise<T> {
  let last = '';
  for (let backoff = FIRST_BACKOFF_MS; ; backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
    const r = await deadline.race(fn()).catch((err: unknown): typeof RETRY => {
      if (!isRetriableKafkaError(err)) throw err;
      last = firstLine(err);
      return RETRY;
    });
    if (r !== RETRY && r !== TIMED_OUT) return r;
    if (deadline.expired) {
      throw new HubError(
        'HUB_KAFKA_UNAVAILABLE',
        `${what} after ${deadline.label}${last ? ` (${last})` : ''}`,
      );
    }
    await sleep(Math.min(backoff, deadline.remaining));
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const sortedList = (ns: number[]) => [...ns].sort((a, b) => a - b).join(',');

/** Broker and protocol messages name topics and partitions, not record contents. */
function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const end = text.indexOf('\n');
  return (end < 0 ? text : text.slice(0, end)).slice(0, 160);
}

export async function deleteTopics(kafka: KafkaClient, names: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const present = names.filter((n) => existing.has(n));
    if (present.length > 0) await admin.deleteTopics({ topics: present });
  } finally {
    await admin.disconnect();
  }
}

export async function listTopics(kafka: KafkaClient): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.listTopics()).sort();
  } finally {
    await admin.disconnect();
  }
}

/** Latest offset (the next offset to be written) per partition. */
export async function endOffsets(kafka: KafkaClient, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offs = await admin.fetchTopicOffsets(topic);
    return new Map(offs.map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

export interface GroupPartitionLag {
  groupId: string;
  topic: string;
  partition: number;
  /** Next offset the group will read; null when it has committed nothing there. */
  committed: bigint | null;
  end: bigint;
  lag: bigint;
}

/**
 * Committed offsets of consumer groups against the topics' end offsets. Only
 * partitions of `topics` are reported (a shared cluster holds many groups).
 * For projections the group offset is a hint committed after the Postgres
 * checkpoint, so it can trail the real progress by one batch.
 */
export async function consumerGroupLag(
  kafka: KafkaClient,
  topics: readonly string[],
  opts: { groupFilter?: (groupId: string) => boolean } = {},
): Promise<GroupPartitionLag[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const wanted = new Set(topics);
    const existing = new Set(await admin.listTopics());
    const ends = new Map<string, Map<number, bigint>>();
    for (const t of wanted) {
      if (!existing.has(t)) continue;
      const offs = await admin.fetchTopicOffsets(t);
      ends.set(t, new Map(offs.map((o) => [o.partition, BigInt(o.high)])));
    }
    const { groups } = await admin.listGroups();
    const out: GroupPartitionLag[] = [];
    for (const g of groups) {
      if (g.protocolType !== 'consumer' && g.protocolType !== '') continue;
      if (opts.groupFilter && !opts.groupFilter(g.groupId)) continue;
      const committed = await admin.fetchOffsets({ groupId: g.groupId, topics: [...ends.keys()] });
      for (const t of committed) {
        const end = ends.get(t.topic);
        if (!end) continue;
        const anyCommitted = t.partitions.some((p) => Number(p.offset) >= 0);
        if (!anyCommitted) continue;
        for (const p of t.partitions) {
          const e = end.get(p.partition) ?? 0n;
          const c = Number(p.offset) >= 0 ? BigInt(p.offset) : null;
          out.push({
            groupId: g.groupId,
            topic: t.topic,
            partition: p.partition,
            committed: c,
            end: e,
            lag: c === null ? e : e > c ? e - c : 0n,
          });
        }
      }
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}
