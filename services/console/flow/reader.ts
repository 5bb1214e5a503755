/**
 * What the flow page shows, read in three sections that refresh on their
 * own: traffic (sources and topic rates, from Kafka offsets and headers),
 * pipeline (projections, consumer groups, subscriptions: the sections of
 * `hub status`, libs/ops) and services (their /ready).
 */
import { auditTrailEnv } from '../../../libs/audit/key.js';
import { toHubError } from '../../../libs/errors/index.js';
import { catalogTopicDefinitions, INGEST_TOPICS } from '../../../libs/events/contracts.js';
import { listTopics } from '../../../libs/kafka/admin.js';
import { probeServices, serviceTargets, type ServiceStatus } from '../../../libs/ops/services.js';
import {
  consumerGroupStatuses,
  offsetsOf,
  projectionStatuses,
  subscriptionStatuses,
  type GroupStatus,
  type ProjectionStatus,
  type StatusProbe,
} from '../../../libs/ops/status.js';
import type { SubscriptionsStatus } from '../../../libs/ops/subscriptions.js';
import type { ConsoleContext } from '../context.js';
import { recordsSince, topicWindows, type TopicWindows } from './offsets.js';
import { Refreshing, type Reading } from './refreshing.js';
import {
  DEFAULT_SOURCE_RULES,
  SourceTracker,
  type SourceRow,
  type SourceRules,
  type TrackedTopic,
} from './sources.js';

export interface TopicRate {
  topic: string;
  partitions: number;
  /** Records kept (high − low, summed). */
  records: string;
  /** Records written in the rate window. */
  recent: string;
  perMinute: number;
}

export interface TrafficView {
  sources: SourceRow[];
  topics: TopicRate[];
  /** Records the capped scans left unread since the console started. */
  skipped: string;
  capPerTopic: number;
  problems: string[];
}

export interface PipelineView {
  projections: ProjectionStatus[];
  consumerGroups: GroupStatus[];
  subscriptions: SubscriptionsStatus | null;
  /** Subscription id → records not yet delivered (its stored offsets vs the topics' ends). */
  subscriptionLag: Record<string, string>;
  problems: string[];
}

export interface FlowView {
  at: number;
  rules: SourceRules;
  rateWindowMs: number;
  traffic: Reading<TrafficView> | null;
  pipeline: Reading<PipelineView> | null;
  services: Reading<ServiceStatus[]> | null;
}

export interface FlowReaderOptions {
  rules?: SourceRules;
  /** How far back the first read looks for each source's last message (6 h: HubSourceSilentLong). */
  lookbackMs?: number;
  rateWindowMs?: number;
  capPerTopic?: number;
  /** Projection schemas shown (SQL LIKE; every schema with a checkpoints table by default, as `hub status`). */
  projectionSchemas?: string;
  /** A projection with lag and no checkpoint for this long is stalled (as `hub status`). */
  stallAfterMs?: number;
  /** How long a request waits for a section still being read before showing the previous reading. */
  waitMs?: number;
}

export interface FlowReader {
  read(): Promise<FlowView>;
}

/** The topics whose records name a source, and how (HL7 events are counted on the raw topic). */
export function trackedTopics(topic: (catalogName: string) => string): TrackedTopic[] {
  const raw = topic(INGEST_TOPICS.hl7Raw);
  const dlq = topic(INGEST_TOPICS.hl7Dlq);
  // Identity decisions are the hub's own; attachments come with the result that names its source.
  const internal = new Set([topic('clinical.identity.v1'), topic('clinical.attachment.v1')]);
  return catalogTopicDefinitions(topic)
    .map((t) => t.name)
    .filter((t) => !internal.has(t))
    .map((t): TrackedTopic => ({ topic: t, role: t === raw ? 'raw' : t === dlq ? 'dlq' : 'events' }));
}

/** Each catalog topic's rate over the window at time index 2 (see readTraffic). Pure. */
export function topicRates(windows: TopicWindows, rateWindowMs: number): TopicRate[] {
  return [...windows]
    .map(([topic, parts]) => {
      let records = 0n;
      for (const p of parts.values()) records += p.high - p.low;
      const recent = recordsSince(parts, 2);
      return {
        topic,
        partitions: parts.size,
        records: records.toString(),
        recent: recent.toString(),
        perMinute: Number(recent) / (rateWindowMs / 60_000),
      };
    })
    .sort((a, b) => a.topic.localeCompare(b.topic));
}

async function readTraffic(
  ctx: ConsoleContext,
  tracker: SourceTracker,
  o: Required<FlowReaderOptions>,
): Promise<TrafficView> {
  const now = ctx.now();
  const problems: string[] = [];
  const tracked = trackedTopics(ctx.settings.topic);
  const catalog = catalogTopicDefinitions(ctx.settings.topic).map((t) => t.name);
  let windows: TopicWindows = new Map();
  try {
    // Time index 0: where a first read starts; 1: the count window; 2: the rate window.
    windows = (
      await topicWindows(ctx.kafka, catalog, [
        now - o.lookbackMs,
        now - o.rules.windowMs,
        now - o.rateWindowMs,
      ])
    ).topics;
    await tracker.refresh(ctx.kafka, tracked, windows, now);
  } catch (err) {
    problems.push(`kafka: ${toHubError(err).code}`);
  }
  return {
    sources: tracker.rows(now),
    topics: topicRates(windows, o.rateWindowMs),
    skipped: tracker.skipped.toString(),
    capPerTopic: o.capPerTopic,
    problems,
  };
}

/** Stored offsets of every subscription against the end offsets read so far. */
async function subscriptionLags(p: StatusProbe, schema: string): Promise<Record<string, string>> {
  const rows = await p.db
    .withSchema(schema)
    .from('offsets')
    .select<{ subscription_id: string; topic: string; partition: number; last_offset: string }[]>(
      'subscription_id',
      'topic',
      'partition',
      'last_offset',
    );
  const lag = new Map<string, bigint>();
  for (const t of new Set(rows.map((r) => r.topic))) if (p.existing.has(t)) await offsetsOf(p, t);
  for (const r of rows) {
    const high = p.ends.get(r.topic)?.get(r.partition)?.high;
    if (high === undefined) continue;
    const behind = high - (BigInt(r.last_offset) + 1n);
    lag.set(r.subscription_id, (lag.get(r.subscription_id) ?? 0n) + (behind > 0n ? behind : 0n));
  }
  return Object.fromEntries([...lag].map(([k, v]) => [k, v.toString()]));
}

async function readPipeline(ctx: ConsoleContext, o: Required<FlowReaderOptions>): Promise<PipelineView> {
  const problems: string[] = [];
  const s = ctx.settings;
  let existing: string[] = [];
  let kafkaUp = true;
  let pgUp = true;
  await listTopics(ctx.kafka).then(
    (t) => void (existing = t),
    (err: unknown) => {
      kafkaUp = false;
      problems.push(`kafka: ${toHubError(err).code}`);
    },
  );
  await ctx.db.raw('select 1').catch((err: unknown) => {
    pgUp = false;
    problems.push(`postgres: ${toHubError(err).code}`);
  });
  const p: StatusProbe = {
    settings: {
      topic: s.topic,
      opsSchema: s.opsSchema,
      analyticsSchema: s.analyticsSchema,
      auditSchema: s.auditSchema,
      auditTopic: s.auditTopic,
      auditMaxLag: auditTrailEnv.AUDIT_MAX_LAG.parse(undefined),
      deliverySchema: s.deliverySchema,
    },
    kafka: ctx.kafka,
    db: ctx.db,
    now: ctx.now,
    problems,
    kafkaUp,
    pgUp,
    registryUp: false,
    existing: new Set(existing),
    catalog: catalogTopicDefinitions(s.topic).map((t) => t.name),
    dlqTopics: [],
    ends: new Map(),
  };
  const projections = await projectionStatuses(p, o.projectionSchemas, o.stallAfterMs).catch(
    (err: unknown) => {
      problems.push(`projections: ${toHubError(err).code}`);
      return [];
    },
  );
  const consumerGroups = await consumerGroupStatuses(p);
  const subscriptions = await subscriptionStatuses(p);
  const subscriptionLag =
    subscriptions?.present && kafkaUp
      ? await subscriptionLags(p, s.deliverySchema).catch((err: unknown) => {
          problems.push(`subscription lag: ${toHubError(err).code}`);
          return {};
        })
      : {};
  return { projections, consumerGroups, subscriptions, subscriptionLag, problems };
}

/** The console's one reader (its tracker keeps the sources between refreshes). */
export function createFlowReader(ctx: ConsoleContext, opts: FlowReaderOptions = {}): FlowReader {
  const o: Required<FlowReaderOptions> = {
    rules: opts.rules ?? DEFAULT_SOURCE_RULES,
    lookbackMs: opts.lookbackMs ?? 6 * 3600_000,
    rateWindowMs: opts.rateWindowMs ?? 5 * 60_000,
    capPerTopic: opts.capPerTopic ?? 5000,
    projectionSchemas: opts.projectionSchemas ?? '%',
    stallAfterMs: opts.stallAfterMs ?? 5 * 60_000,
    waitMs: opts.waitMs ?? 4000,
  };
  const tracker = new SourceTracker(o.rules, o.capPerTopic);
  // Fresh enough for a poll every refreshMs, however many browsers poll.
  const maxAge = Math.max(1000, ctx.settings.refreshMs - 500);
  const onError = (section: string) => (err: unknown) =>
    ctx.logger.warn({ section, code: toHubError(err).code }, 'flow section not read');
  const traffic = new Refreshing(() => readTraffic(ctx, tracker, o), maxAge, ctx.now, onError('traffic'));
  const pipeline = new Refreshing(() => readPipeline(ctx, o), maxAge, ctx.now, onError('pipeline'));
  const targets = serviceTargets(ctx.settings.serviceUrls || undefined);
  const services = new Refreshing(
    async () => (await probeServices(targets, Boolean(ctx.settings.serviceUrls))).services,
    Math.max(maxAge, 10_000),
    ctx.now,
    onError('services'),
  );
  return {
    read: async () => {
      const [t, p, sv] = await Promise.all([
        traffic.get(o.waitMs),
        pipeline.get(o.waitMs),
        services.get(o.waitMs),
      ]);
      return {
        at: ctx.now(),
        rules: o.rules,
        rateWindowMs: o.rateWindowMs,
        traffic: t,
        pipeline: p,
        services: sv,
      };
    },
  };
}
