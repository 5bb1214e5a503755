/**
 * `hub status` (and, registered from here, `hub dlq …`): what flows, what is
 * stuck, what was refused, at a glance. An edge: reads config, opens
 * connections; each probe is bounded and reports its own failure instead of
 * hiding the rest of the picture.
 */
import type { Command } from 'commander';
import { loadConfig, schemaNameEnv, topicNamer, z } from '../libs/config/index.js';
import { toDbError, type Knex } from '../libs/db/index.js';
import { HubError, toHubError, type ErrorCode } from '../libs/errors/index.js';
import { createEventCodec, type EventCodec } from '../libs/events/codec.js';
import { INGEST_TOPICS, catalogTopicDefinitions } from '../libs/events/contracts.js';
import type { RegistryClient } from '../libs/events/registry.js';
import { consumerGroupLag, listTopics } from '../libs/kafka/admin.js';
import { createKafkaClientFromEnv, type KafkaClient } from '../libs/kafka/client.js';
import { dlqTopicsOf } from '../libs/kafka/dlq.js';
import { handledCounts } from '../libs/kafka/dlq-ops.js';
import { partitionOffsets, scanTopic } from '../libs/kafka/scan.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { auditTrailEnv } from '../libs/audit/key.js';
import { auditLag } from '../libs/audit/lag.js';
import { AUDIT_TOPIC } from '../libs/audit/topic.js';
import { DELIVERY_SCHEMA } from '../libs/delivery/store.js';
import { registerDlqCommands } from './dlq.js';
import { cliDb, cliRegistry, commonEnvSchema } from './env.js';
import { formatTable, isJsonOutput, writeOut } from './output.js';
import {
  readSubscriptionsStatus,
  subscriptionProblems,
  subscriptionsSection,
  type SubscriptionsStatus,
} from './status-subscriptions.js';
import { SERVICES, localBaseUrl, probeReadiness, type Readiness } from '../libs/stack/services.js';

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

export interface ServiceStatus {
  service: string;
  url: string;
  /** `not running`: nothing listens on its URL. */
  state: Readiness['state'];
  alive: boolean;
  ready: boolean;
  /** Failing readiness checks, with their detail (codes, not data). */
  failing: string;
}

/** `name=url,name=url` → pairs. Pure. */
export function parseServiceUrls(spec: string | undefined): { name: string; url: string }[] {
  if (!spec) return [];
  return spec
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      const eq = x.indexOf('=');
      if (eq <= 0 || !/^https?:\/\//.test(x.slice(eq + 1))) {
        throw new HubError('HUB_INPUT_INVALID', `HUB_SERVICE_URLS: expected name=http://host:port, got ${x}`);
      }
      return { name: x.slice(0, eq), url: x.slice(eq + 1).replace(/\/$/, '') };
    });
}

/** Which services `hub status` probes: HUB_SERVICE_URLS, else the ones `hub up` runs on their local ports. */
export function serviceTargets(spec: string | undefined): { name: string; url: string }[] {
  return spec ? parseServiceUrls(spec) : SERVICES.map((s) => ({ name: s.name, url: localBaseUrl(s) }));
}

/** /ready (and /health) of one service; bounded, never throws. */
export async function probeService(name: string, url: string): Promise<ServiceStatus> {
  const r = await probeReadiness(url);
  if (r.state === 'not running') {
    return { service: name, url, state: r.state, alive: false, ready: false, failing: '' };
  }
  const alive = await fetch(`${url}/health`, { signal: AbortSignal.timeout(3000) }).then(
    async (res) => {
      await res.body?.cancel();
      return res.status === 200;
    },
    () => false,
  );
  return { service: name, url, state: r.state, alive, ready: r.state === 'ready', failing: r.failing };
}

/**
 * Probes services side by side. Services named explicitly (HUB_SERVICE_URLS)
 * that are not ready are problems; of the default local ones, only those that
 * run but are not ready are: a stack without services is not a fault.
 */
export async function probeServices(
  targets: readonly { name: string; url: string }[],
  explicit: boolean,
): Promise<{ services: ServiceStatus[]; problems: string[] }> {
  const services = await Promise.all(targets.map((t) => probeService(t.name, t.url)));
  const problems: string[] = [];
  for (const s of services) {
    if (s.ready || (s.state === 'not running' && !explicit)) continue;
    problems.push(`service ${s.service} ${s.state}${s.failing ? `: ${s.failing}` : ''}`);
  }
  return { services, problems };
}

export interface DependencyStatus {
  name: 'kafka' | 'registry' | 'postgres';
  up: boolean;
  ms: number;
  detail: string;
}

export interface TopicStatus {
  topic: string;
  exists: boolean;
  partitions: number;
  /** Sum over partitions of the next offset to be written. */
  endOffset: string;
  records: string;
}

export interface ProjectionStatus {
  schema: string;
  topics: string[];
  lag: string;
  lastCheckpointAt: string | null;
  state: 'caught-up' | 'behind' | 'stalled' | 'missing-topic';
}

export interface GroupStatus {
  group: string;
  topics: string[];
  partitions: number;
  lag: string;
}

export interface DlqStatus {
  topic: string;
  total: string;
  handled: number;
  open: string;
}

export interface SourceStatus {
  source: string;
  topic: string;
  lastMessageAt: string;
  ageSeconds: number;
}

/** An assigning authority on the log the site configuration does not register (projector-analytics). */
export interface UnregisteredAuthorityStatus {
  system: string;
  kinds: string;
  sources: string;
  events: number;
  firstSeen: string;
  lastSeen: string;
}

/** Audit events on the audit topic not yet in the audit table nor dead-lettered (libs/audit/lag.ts). */
export interface AuditTrailStatus {
  topic: string;
  group: string;
  lag: number;
  committed: number;
  end: number;
  state: 'ok' | 'lagging' | 'missing-topic' | 'unknown';
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

/**
 * The problem line of an unregistered authority: what it is, how much, and
 * what to do (docs/site-configuration.md). Pure.
 */
export function unregisteredAuthorityProblem(a: UnregisteredAuthorityStatus): string {
  return (
    `unregistered authority ${a.system}: ${a.events} event(s) (${a.kinds || 'identifiers'}; from ${a.sources || 'unknown'}; last ${a.lastSeen}): ` +
    'add it to `authorities` in the site configuration (HUB_SITE_CONFIG) and restart the adapters; see docs/site-configuration.md'
  );
}

/** Reads `<schema>.v_unregistered_authorities` when the analytics read model has it. */
async function unregisteredAuthorities(db: Knex, schema: string): Promise<UnregisteredAuthorityStatus[]> {
  const has = await db.raw<{ rows: unknown[] }>(
    `select 1 from information_schema.views where table_schema = ? and table_name = 'v_unregistered_authorities'`,
    [schema],
  );
  if (has.rows.length === 0) return [];
  const rows = (await db
    .withSchema(schema)
    .from('v_unregistered_authorities')
    .select('system', 'kinds', 'sources', 'events', 'first_seen', 'last_seen')
    .orderBy([{ column: 'events', order: 'desc' }, { column: 'system' }])
    .limit(50)) as {
    system: string;
    kinds: string | null;
    sources: string | null;
    events: number | string;
    first_seen: string;
    last_seen: string;
  }[];
  return rows.map((r) => ({
    system: r.system,
    kinds: r.kinds ?? '',
    sources: r.sources ?? '',
    events: Number(r.events),
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
  }));
}

/** Classifies a projection from its lag and last checkpoint time. Pure. */
export function projectionState(
  lag: bigint,
  lastCheckpointMs: number | null,
  now: number,
  stallAfterMs: number,
): ProjectionStatus['state'] {
  if (lag <= 0n) return 'caught-up';
  if (lastCheckpointMs === null || now - lastCheckpointMs > stallAfterMs) return 'stalled';
  return 'behind';
}

/** Newest record time per source; records without a source name count as `unknown`. Pure. */
export function lastBySource(
  seen: readonly { source: string; topic: string; timestamp: number }[],
  now: number,
): SourceStatus[] {
  const best = new Map<string, { topic: string; timestamp: number }>();
  for (const s of seen) {
    const b = best.get(s.source);
    if (!b || s.timestamp > b.timestamp) best.set(s.source, { topic: s.topic, timestamp: s.timestamp });
  }
  return [...best]
    .map(([source, b]) => ({
      source,
      topic: b.topic,
      lastMessageAt: new Date(b.timestamp).toISOString(),
      ageSeconds: Math.max(0, Math.round((now - b.timestamp) / 1000)),
    }))
    .sort((a, b) => a.source.localeCompare(b.source));
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

/** Sources from the newest records: the `hub-source`/`hl7-sender` header, else the decoded meta.source.system. */
async function sourcesFrom(
  kafka: KafkaClient,
  codec: EventCodec,
  topics: readonly string[],
  perPartition: number,
): Promise<{ source: string; topic: string; timestamp: number }[]> {
  const seen: { source: string; topic: string; timestamp: number }[] = [];
  for (const t of topics) {
    const recs = await scanTopic(kafka, t, {
      range: (_p, low, high) => ({
        from: high - BigInt(perPartition) > low ? high - BigInt(perPartition) : low,
        to: high,
      }),
      timeoutMs: 20_000,
    });
    for (const r of recs) {
      let source = r.headers['hub-source'] ?? r.headers['hl7-sender']?.split('|')[0];
      if (source === undefined && r.value && r.value[0] === 0) {
        try {
          source = (await codec.decode(r.value)).data.meta.source.system;
        } catch {
          source = undefined;
        }
      }
      seen.push({ source: source ?? 'unknown', topic: t, timestamp: r.timestamp });
    }
  }
  return seen;
}

type StatusEnv = z.infer<typeof statusEnv>;

/**
 * What one `hub status` run has found so far and the connections it probes
 * with; each section below reads it and adds its findings and problems.
 */
interface Probe {
  cfg: StatusEnv;
  kafka: KafkaClient;
  db: Knex;
  now: () => number;
  problems: string[];
  kafkaUp: boolean;
  pgUp: boolean;
  registryUp: boolean;
  /** Topics on the broker. */
  existing: ReadonlySet<string>;
  /** The catalog topics' names, suffixed. */
  catalog: readonly string[];
  dlqTopics: readonly string[];
  /** Partition offsets read so far, by topic: each topic is asked once. */
  ends: Map<string, Map<number, { low: bigint; high: bigint }>>;
}

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

async function offsetsOf(p: Probe, topic: string): Promise<Map<number, { low: bigint; high: bigint }>> {
  let offs = p.ends.get(topic);
  if (!offs) {
    offs = await partitionOffsets(p.kafka, topic);
    p.ends.set(topic, offs);
  }
  return offs;
}

/** The catalog and DLQ topics with their offsets; a missing catalog topic is a problem. */
async function topicStatuses(p: Probe): Promise<TopicStatus[]> {
  const topics: TopicStatus[] = [];
  if (!p.kafkaUp) return topics;
  for (const t of [...new Set([...p.catalog, ...p.dlqTopics])]) {
    if (!p.existing.has(t)) {
      topics.push({ topic: t, exists: false, partitions: 0, endOffset: '0', records: '0' });
      if (p.catalog.includes(t)) p.problems.push(`catalog topic ${t} is missing: run \`hub topics create\``);
      continue;
    }
    const offs = await offsetsOf(p, t);
    let end = 0n;
    let records = 0n;
    for (const o of offs.values()) {
      end += o.high;
      records += o.high - o.low;
    }
    topics.push({
      topic: t,
      exists: true,
      partitions: offs.size,
      endOffset: end.toString(),
      records: records.toString(),
    });
  }
  return topics;
}

/** Committed offsets of every group reading the catalog topics, summed per group. */
async function consumerGroupStatuses(p: Probe): Promise<GroupStatus[]> {
  if (!p.kafkaUp) return [];
  const lags = await consumerGroupLag(
    p.kafka,
    p.catalog.filter((t) => p.existing.has(t)),
    // Throw-away scan groups of this tool are not consumers anyone runs.
    { groupFilter: (g) => !g.startsWith('hub-scan-') },
  ).catch((err: unknown) => {
    p.problems.push(`consumer groups: ${toHubError(err).code}`);
    return [];
  });
  const byGroup = new Map<string, { partitions: number; lag: bigint; topics: Set<string> }>();
  for (const l of lags) {
    let g = byGroup.get(l.groupId);
    if (!g) {
      g = { partitions: 0, lag: 0n, topics: new Set() };
      byGroup.set(l.groupId, g);
    }
    g.partitions += 1;
    g.lag += l.lag;
    g.topics.add(l.topic);
  }
  return [...byGroup]
    .map(([group, g]) => ({
      group,
      topics: [...g.topics].sort(),
      partitions: g.partitions,
      lag: g.lag.toString(),
    }))
    .sort((a, b) => a.group.localeCompare(b.group));
}

/** One projection schema: its checkpoints against the topics' end offsets. */
async function projectionStatus(p: Probe, schema: string, stallAfterMs: number): Promise<ProjectionStatus> {
  const q = p.db
    .withSchema(schema)
    .from('checkpoints')
    .select('topic', 'partition', 'last_offset', 'updated_at');
  const rows = (await q) as { topic: string; partition: number; last_offset: string; updated_at: Date }[];
  const cpTopics = [...new Set(rows.map((x) => x.topic))].sort();
  let lag = 0n;
  let missing = false;
  let newest: number | null = null;
  for (const x of rows) {
    const t = x.updated_at.getTime();
    if (newest === null || t > newest) newest = t;
  }
  if (p.kafkaUp) {
    const cp = new Map(rows.map((x) => [`${x.topic}|${x.partition}`, BigInt(x.last_offset) + 1n]));
    for (const t of cpTopics) {
      if (!p.ends.has(t) && !p.existing.has(t)) {
        missing = true;
        continue;
      }
      for (const [part, o] of await offsetsOf(p, t)) {
        const next = cp.get(`${t}|${part}`) ?? o.low;
        if (o.high > next) lag += o.high - next;
      }
    }
  }
  const state = missing ? 'missing-topic' : projectionState(lag, newest, p.now(), stallAfterMs);
  if (state === 'stalled') p.problems.push(`projection ${schema} is stalled with lag ${lag}`);
  return {
    schema,
    topics: cpTopics,
    lag: lag.toString(),
    lastCheckpointAt: newest === null ? null : new Date(newest).toISOString(),
    state,
  };
}

/** Every schema with a checkpoints table (matching `schemaLike`) is a projection. */
async function projectionStatuses(
  p: Probe,
  schemaLike: string,
  stallAfterMs: number,
): Promise<ProjectionStatus[]> {
  if (!p.pgUp) return [];
  const r = await p.db.raw<{ rows: { schema: string }[] }>(
    `select table_schema as schema from information_schema.tables
      where table_name = 'checkpoints' and table_schema like ? order by table_schema`,
    [schemaLike],
  );
  const out: ProjectionStatus[] = [];
  for (const { schema } of r.rows) out.push(await projectionStatus(p, schema, stallAfterMs));
  return out;
}

/** Records on each DLQ topic less those handled (`hub dlq` state); open ones are problems. */
async function deadLetterStatuses(p: Probe): Promise<DlqStatus[]> {
  if (!p.kafkaUp) return [];
  const handled = p.pgUp ? await handledCounts(p.db, p.cfg.HUB_OPS_SCHEMA) : new Map<string, number>();
  const out: DlqStatus[] = [];
  for (const t of p.dlqTopics) {
    let total = 0n;
    for (const o of (await offsetsOf(p, t)).values()) total += o.high - o.low;
    const h = handled.get(t) ?? 0;
    const open = total - BigInt(h) > 0n ? total - BigInt(h) : 0n;
    if (open > 0n) p.problems.push(`${open} open dead letter(s) on ${t}: run \`hub dlq list --topic ${t}\``);
    out.push({ topic: t, total: total.toString(), handled: h, open: open.toString() });
  }
  return out;
}

async function sourceStatuses(p: Probe, registry: RegistryClient, sample: number): Promise<SourceStatus[]> {
  if (!p.kafkaUp) return [];
  const hl7Dlq = topicNamer(p.cfg.HUB_TOPIC_SUFFIX)(INGEST_TOPICS.hl7Dlq);
  const sampleTopics = p.catalog.filter((t) => p.existing.has(t) && t !== hl7Dlq);
  try {
    const codec = p.registryUp ? createEventCodec(registry) : noCodec;
    return lastBySource(await sourcesFrom(p.kafka, codec, sampleTopics, sample), p.now());
  } catch (err) {
    p.problems.push(`source times: ${toHubError(err).code}`);
    return [];
  }
}

async function unregisteredStatuses(p: Probe): Promise<UnregisteredAuthorityStatus[]> {
  if (!p.pgUp) return [];
  let unregistered: UnregisteredAuthorityStatus[] = [];
  try {
    unregistered = await unregisteredAuthorities(p.db, p.cfg.ANALYTICS_SCHEMA);
  } catch (err) {
    p.problems.push(`unregistered authorities: ${toDbError(err).code}`);
  }
  for (const a of unregistered) p.problems.push(unregisteredAuthorityProblem(a));
  return unregistered;
}

async function auditTrailStatus(p: Probe): Promise<AuditTrailStatus | null> {
  if (!p.kafkaUp) return null;
  const topic = p.cfg.AUDIT_TOPIC ?? topicNamer(p.cfg.HUB_TOPIC_SUFFIX)(AUDIT_TOPIC);
  const group = `hub.audit.projector.${p.cfg.AUDIT_SCHEMA}`;
  const none = { topic, group, lag: 0, committed: 0, end: 0 };
  // No audit topic: the API has not run yet, nothing to lag behind.
  if (!p.existing.has(topic)) return { ...none, state: 'missing-topic' };
  try {
    const l = await auditLag(p.kafka, topic, group);
    const lagging = l.lag > p.cfg.AUDIT_MAX_LAG;
    if (lagging) {
      p.problems.push(
        `audit lag ${l.lag} > ${p.cfg.AUDIT_MAX_LAG}: audit events are not reaching the audit table (docs/runbook.md#hubauditlaghigh)`,
      );
    }
    return { topic, group, ...l, state: lagging ? 'lagging' : 'ok' };
  } catch (err) {
    p.problems.push(`audit lag: ${toHubError(err).code}`);
    return { ...none, state: 'unknown' };
  }
}

async function subscriptionStatuses(p: Probe): Promise<SubscriptionsStatus | null> {
  if (!p.pgUp) return null;
  try {
    const s = await readSubscriptionsStatus(p.db, p.cfg.DELIVERY_SCHEMA);
    p.problems.push(...subscriptionProblems(s));
    return s;
  } catch (err) {
    p.problems.push(`subscriptions: ${toDbError(err).code}`);
    return null;
  }
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
    const p: Probe = {
      cfg,
      kafka,
      db,
      now,
      problems,
      kafkaUp: up('kafka'),
      pgUp: up('postgres'),
      registryUp: up('registry'),
      existing: new Set(allTopics),
      catalog: catalogTopicDefinitions(topicNamer(cfg.HUB_TOPIC_SUFFIX)).map((t) => t.name),
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

const noCodec: EventCodec = {
  encode: () => Promise.reject(new HubError('HUB_REGISTRY_UNAVAILABLE', 'registry down')),
  decode: () => Promise.reject(new HubError('HUB_REGISTRY_UNAVAILABLE', 'registry down')),
  decodeIfResolved: () => undefined,
  warmUp: () => Promise.resolve(),
};

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
