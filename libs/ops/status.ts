/**
 * What flows, what is stuck, what was refused: the sections `hub status`
 * prints and the console's flow page shows, computed once here. Each section
 * reads a StatusProbe (connections plus what was found so far) and adds its
 * findings and problems; each reports its own failure instead of hiding the
 * rest of the picture.
 */
import { toDbError, type Knex } from '../db/index.js';
import { HubError, toHubError } from '../errors/index.js';
import { createEventCodec, type EventCodec } from '../events/codec.js';
import { INGEST_TOPICS } from '../events/contracts.js';
import type { RegistryClient } from '../events/registry.js';
import { auditLag } from '../audit/lag.js';
import { auditProjectorGroup } from '../audit/topic.js';
import { consumerGroupLag } from '../kafka/admin.js';
import type { KafkaClient } from '../kafka/client.js';
import { handledCounts } from '../kafka/dlq-ops.js';
import { partitionOffsets, scanTopic } from '../kafka/scan.js';
import { readSubscriptionsStatus, subscriptionProblems, type SubscriptionsStatus } from './subscriptions.js';

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

/** Where the sections read: this deployment's schemas and topics. */
export interface StatusSettings {
  /** Catalog topic name → this deployment's (HUB_TOPIC_SUFFIX). */
  topic(catalogName: string): string;
  opsSchema: string;
  analyticsSchema: string;
  auditSchema: string;
  auditTopic: string;
  auditMaxLag: number;
  deliverySchema: string;
}

/**
 * What one status run has found so far and the connections it probes
 * with; each section below reads it and adds its findings and problems.
 */
export interface StatusProbe {
  settings: StatusSettings;
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

export async function offsetsOf(
  p: StatusProbe,
  topic: string,
): Promise<Map<number, { low: bigint; high: bigint }>> {
  let offs = p.ends.get(topic);
  if (!offs) {
    offs = await partitionOffsets(p.kafka, topic);
    p.ends.set(topic, offs);
  }
  return offs;
}

/** The catalog and DLQ topics with their offsets; a missing catalog topic is a problem. */
export async function topicStatuses(p: StatusProbe): Promise<TopicStatus[]> {
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
export async function consumerGroupStatuses(p: StatusProbe): Promise<GroupStatus[]> {
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
async function projectionStatus(
  p: StatusProbe,
  schema: string,
  stallAfterMs: number,
): Promise<ProjectionStatus> {
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
export async function projectionStatuses(
  p: StatusProbe,
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
export async function deadLetterStatuses(p: StatusProbe): Promise<DlqStatus[]> {
  if (!p.kafkaUp) return [];
  const handled = p.pgUp ? await handledCounts(p.db, p.settings.opsSchema) : new Map<string, number>();
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

export async function sourceStatuses(
  p: StatusProbe,
  registry: RegistryClient,
  sample: number,
): Promise<SourceStatus[]> {
  if (!p.kafkaUp) return [];
  const hl7Dlq = p.settings.topic(INGEST_TOPICS.hl7Dlq);
  const sampleTopics = p.catalog.filter((t) => p.existing.has(t) && t !== hl7Dlq);
  try {
    const codec = p.registryUp ? createEventCodec(registry) : noCodec;
    return lastBySource(await sourcesFrom(p.kafka, codec, sampleTopics, sample), p.now());
  } catch (err) {
    p.problems.push(`source times: ${toHubError(err).code}`);
    return [];
  }
}

export async function unregisteredStatuses(p: StatusProbe): Promise<UnregisteredAuthorityStatus[]> {
  if (!p.pgUp) return [];
  let unregistered: UnregisteredAuthorityStatus[] = [];
  try {
    unregistered = await unregisteredAuthorities(p.db, p.settings.analyticsSchema);
  } catch (err) {
    p.problems.push(`unregistered authorities: ${toDbError(err).code}`);
  }
  for (const a of unregistered) p.problems.push(unregisteredAuthorityProblem(a));
  return unregistered;
}

export async function auditTrailStatus(p: StatusProbe): Promise<AuditTrailStatus | null> {
  if (!p.kafkaUp) return null;
  const topic = p.settings.auditTopic;
  const group = auditProjectorGroup(p.settings.auditSchema);
  const none = { topic, group, lag: 0, committed: 0, end: 0 };
  // No audit topic: the API has not run yet, nothing to lag behind.
  if (!p.existing.has(topic)) return { ...none, state: 'missing-topic' };
  try {
    const l = await auditLag(p.kafka, topic, group);
    const lagging = l.lag > p.settings.auditMaxLag;
    if (lagging) {
      p.problems.push(
        `audit lag ${l.lag} > ${p.settings.auditMaxLag}: audit events are not reaching the audit table (docs/runbook.md#hubauditlaghigh)`,
      );
    }
    return { topic, group, ...l, state: lagging ? 'lagging' : 'ok' };
  } catch (err) {
    p.problems.push(`audit lag: ${toHubError(err).code}`);
    return { ...none, state: 'unknown' };
  }
}

export async function subscriptionStatuses(p: StatusProbe): Promise<SubscriptionsStatus | null> {
  if (!p.pgUp) return null;
  try {
    const s = await readSubscriptionsStatus(p.db, p.settings.deliverySchema);
    p.problems.push(...subscriptionProblems(s));
    return s;
  } catch (err) {
    p.problems.push(`subscriptions: ${toDbError(err).code}`);
    return null;
  }
}

/** A codec for when the registry is down: every decode fails, so sources fall back to headers. */
const noCodec: EventCodec = {
  encode: () => Promise.reject(new HubError('HUB_REGISTRY_UNAVAILABLE', 'registry down')),
  decode: () => Promise.reject(new HubError('HUB_REGISTRY_UNAVAILABLE', 'registry down')),
  decodeIfResolved: () => undefined,
  warmUp: () => Promise.resolve(),
};
