import { spawnSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { INGEST_TOPICS, catalogTopicDefinitions } from '../../libs/events/contracts.js';
import { endOffsets, ensureTopics } from '../../libs/kafka/admin.js';
import { createKafkaClient, type KafkaClient } from '../../libs/kafka/client.js';
import kafkajs from 'kafkajs';
import { createEventProducer, type EventProducer } from '../../libs/kafka/producer.js';
import { lagOf } from '../../libs/projections/inspect.js';
import type { ProjectorService } from '../../libs/projections/service.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { dropReadModel } from '../../libs/projections/versions.js';
import { buildPatientDirectory } from '../../services/patient-directory/app.js';
import { PATIENT_TOPIC } from '../../services/patient-directory/projection.js';
import { buildAnalyticsProjector } from '../../services/projector-analytics/app.js';
import { buildBillingProjector } from '../../services/projector-billing/app.js';
import { buildPortalProjector } from '../../services/projector-portal/app.js';
import { readTopic } from '../../libs/hl7/raw-store.js';
import type { FaultFigures } from './fault-report.js';
import { createTestContext, eventually, type TestContext } from './harness.js';
import { privateCluster, type PrivateCluster } from './kafka-cluster.js';
import { projectorDeps } from './projectors.js';

/** The four read models a fault test checks, each by its own projector. */
export type ReadModelName = 'billing' | 'analytics' | 'portal' | 'directory';
export const READ_MODELS: readonly ReadModelName[] = ['billing', 'analytics', 'portal', 'directory'];

/** Scales a fault test's size while developing (HUB_FAULT_SCALE=0.05); 1 = the size. */
export function faultScale(full: number, min = 1): number {
  const s = Number(process.env['HUB_FAULT_SCALE'] ?? '1');
  return Math.max(min, Math.round(full * (Number.isFinite(s) && s > 0 ? s : 1)));
}

/**
 * A fault test's world: a three-broker cluster of its own with the catalog
 * topics at RF 3 / min.insync.replicas 2, the shared registry and Postgres,
 * and the four projectors in-process on that cluster. `ctx.kafka` and
 * `ctx.producer` point at the cluster; the shared Kafka is not written.
 */
export interface FaultRig {
  ctx: TestContext;
  cluster: PrivateCluster;
  kafka: KafkaClient;
  producer: EventProducer;
  stable: Record<ReadModelName, string>;
  projectors: Record<ReadModelName, ProjectorService>;
  /** Resolves once every projector has applied everything in the log. */
  caughtUp(timeoutMs?: number): Promise<void>;
  /**
   * Projectors that gave up after their bounded consumer restarts and were started
   * again, as "<read model>: <code>" (main.ts exits then, and a supervisor restarts it).
   */
  restarted: string[];
  cleanup(): Promise<void>;
}

export const topicsOf = (ctx: TestContext, m: ReadModelName): string[] =>
  m === 'directory' ? [ctx.topic(PATIENT_TOPIC)] : clinicalTopics(ctx.topic);

/** One projector instance (several on one stable schema share its consumer group: scale-out). */
export function buildProjector(
  ctx: TestContext,
  m: ReadModelName,
  stableSchema: string,
  deps = projectorDeps(ctx),
): ProjectorService {
  const cfg = {
    stableSchema,
    dlqTopic: `hub.dlq.${ctx.id}`,
    topicFor: ctx.topic,
    groupPrefix: `hub.projection.${ctx.id}`,
    followEveryMs: 500,
  };
  if (m === 'billing') return buildBillingProjector(deps, cfg);
  if (m === 'portal') return buildPortalProjector(deps, cfg);
  if (m === 'analytics') return buildAnalyticsProjector(deps, { ...cfg, deadLetterTopics: [cfg.dlqTopic] });
  return buildPatientDirectory(deps, cfg);
}

export async function startFaultRig(
  name: string,
  o: { ackTimeoutMs?: number; producerRetries?: number } = {},
): Promise<FaultRig> {
  const base = await createTestContext(name);
  const cluster = await privateCluster(base, `fault-${name}`);
  const started: ProjectorService[] = [];
  const stable = Object.fromEntries(READ_MODELS.map((m) => [m, `${base.schema}_${m}`])) as Record<
    ReadModelName,
    string
  >;
  let kafka: KafkaClient | undefined;
  let producer: EventProducer | undefined;
  const cleanup = async () => {
    for (const p of started) await p.stop().catch(() => undefined);
    for (const m of READ_MODELS) await dropReadModel(base.db, stable[m]).catch(() => undefined);
    await producer?.disconnect().catch(() => undefined);
    await cluster.remove().catch(() => undefined);
    await base.cleanup();
  };
  try {
    await cluster.start();
    // The 3-broker profile's replication for every topic created through this client, those of
    // adapters started on it too (an RF 1 audit topic on a killed broker stops every write).
    kafka = createKafkaClient({
      brokers: cluster.brokers,
      clientId: base.id,
      logger: base.logger,
      topicEnvironment: 'cluster',
    });
    // Production's replication (RF 3, min.insync.replicas 2 = ensureTopics' min(2, RF)).
    const dlq = { name: `hub.dlq.${base.id}`, partitions: 1, replicationFactor: 3, retentionMs: -1 };
    await ensureTopics(kafka, [
      ...catalogTopicDefinitions(base.topic).map((t) => ({ ...t, replicationFactor: 3 })),
      dlq,
    ]);
    producer = createEventProducer({
      kafka,
      codec: base.codec,
      topicFor: base.topicFor,
      retries: o.producerRetries ?? 5,
      // As adapter-hl7's main.ts: the adapter applies the ack timeout itself.
      ackTimeoutMs: o.ackTimeoutMs ?? 5_000,
      rejectAtAckTimeout: false,
    });
    await producer.connect();
    // The first idempotent write creates and loads the transaction coordinator's topic
    // (50 partitions, RF 3): minutes on a loaded machine, during which every producer's
    // InitProducerId is refused. Waited for here, once, not inside each test's timings.
    const warm = {
      topic: base.topic(INGEST_TOPICS.hl7Raw),
      key: 'fault-rig-warm-up',
      value: Buffer.from('-'),
    };
    await eventually(() => producer!.publishRaw([warm]).then(() => true), {
      timeoutMs: 600_000,
      intervalMs: 1_000,
      what: 'transaction coordinator loaded',
    });
    const ctx: TestContext = { ...base, kafka, producer };
    const projectors = {} as Record<ReadModelName, ProjectorService>;
    const restarted: string[] = [];
    // A projector whose consumer gives up exits in production (libs/projections/main.ts) and its
    // supervisor (Kubernetes, compose's restart policy) starts it again, resuming from its
    // checkpoints; here the rig plays the supervisor, and counts each time.
    const supervised = (m: ReadModelName): ProjectorService =>
      buildProjector(ctx, m, stable[m], {
        ...projectorDeps(ctx),
        onFatal: (err) => {
          restarted.push(`${m}: ${err.code}`);
          void (async () => {
            await projectors[m].stop().catch(() => undefined);
            for (let attempt = 1; attempt <= 10; attempt++) {
              const next = supervised(m);
              started.push(next);
              try {
                await next.start();
                projectors[m] = next;
                return;
              } catch {
                await next.stop().catch(() => undefined);
                await new Promise((r) => setTimeout(r, 2_000));
              }
            }
          })();
        },
      });
    for (const m of READ_MODELS) {
      projectors[m] = supervised(m);
      await projectors[m].start();
      started.push(projectors[m]);
    }
    return {
      ctx,
      cluster,
      kafka,
      producer,
      stable,
      projectors,
      restarted,
      async caughtUp(timeoutMs = 300_000) {
        for (const m of READ_MODELS) {
          await eventually(
            async () => {
              const s = projectors[m].activeSchema();
              if (!s) return undefined;
              return (await lagOf(base.db, kafka!, s, topicsOf(ctx, m))).lag === 0n ? true : undefined;
            },
            { timeoutMs, intervalMs: 500, what: `${m} caught up` },
          );
        }
      },
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** What the log and the read models hold of a set of control ids (MSH-10). */
export interface LandedFigures {
  /** Event records in the log (resends written twice count twice). */
  logRecords: number;
  /** Records whose event id was already in the log: written again, absorbed by the projectors. */
  logDuplicates: number;
  /** Control ids expected that have no event in the log. */
  notInLog: string[];
  /** Records the projectors dead-lettered (none expected: nothing here is malformed). */
  deadLetters: number;
  /** Per read model: control ids with an event missing, and events applied more than once. */
  lost: Record<ReadModelName, string[]>;
  duplicated: Record<ReadModelName, number>;
}

async function logEvents(
  rig: FaultRig,
): Promise<{ byCid: Map<string, Map<string, string>>; records: number }> {
  const byCid = new Map<string, Map<string, string>>();
  let records = 0;
  for (const t of clinicalTopics(rig.ctx.topic)) {
    for (const r of await readTopic(rig.kafka, t)) {
      const e = await rig.ctx.codec.decode(r.value);
      const cid = e.data.meta.source.messageId ?? '';
      const ids = byCid.get(cid) ?? new Map<string, string>();
      ids.set(e.data.meta.eventId, t);
      byCid.set(cid, ids);
      records++;
    }
  }
  return { byCid, records };
}

/**
 * Checks, for every expected control id, that each read model applied each
 * of its events exactly once. Applied events are counted from the
 * projector's ledger (applied_events, one row per applied event id), and a
 * patient row's version counts the events applied to it: one message per
 * patient in these tests, so any version above one is a second application.
 */
export async function landedFigures(rig: FaultRig, expected: Iterable<string>): Promise<LandedFigures> {
  const { byCid, records } = await logEvents(rig);
  const distinct = [...byCid.values()].reduce((n, m) => n + m.size, 0);
  const want = [...expected];
  const lost = {} as Record<ReadModelName, string[]>;
  const duplicated = {} as Record<ReadModelName, number>;
  for (const m of READ_MODELS) {
    const schema = rig.projectors[m].activeSchema();
    if (!schema) throw new Error(`${m} is not serving`);
    const topics = new Set(topicsOf(rig.ctx, m));
    const rows: { event_id: string }[] = await rig.ctx.db
      .withSchema(schema)
      .from('applied_events')
      .select('event_id');
    const applied = new Map<string, number>();
    for (const r of rows) applied.set(r.event_id, (applied.get(r.event_id) ?? 0) + 1);
    lost[m] = want.filter((cid) => {
      const evs = [...(byCid.get(cid) ?? new Map<string, string>())].filter(([, t]) => topics.has(t));
      return evs.length === 0 || evs.some(([id]) => !applied.has(id));
    });
    duplicated[m] = [...applied.values()].reduce((n, c) => n + (c - 1), 0);
    if (m === 'directory') {
      const r = await rig.ctx.db.raw<{ rows: { extra: string }[] }>(
        'select coalesce(sum(version - 1), 0) as extra from ??.patients',
        [schema],
      );
      duplicated[m] += Number(r.rows[0]?.extra ?? 0);
    }
  }
  return {
    logRecords: records,
    logDuplicates: records - distinct,
    notInLog: want.filter((cid) => !byCid.has(cid)),
    deadLetters: [...(await endOffsets(rig.kafka, `hub.dlq.${rig.ctx.id}`)).values()].reduce(
      (a, b) => a + Number(b),
      0,
    ),
    lost,
    duplicated,
  };
}

/**
 * Totals over the read models: control ids lost in at least one, extra
 * applications in all, and (for the run's log) where the first lost ones are.
 */
export function totals(f: LandedFigures): { lost: number; duplicated: number; lostWhere: string } {
  const lost = new Set(READ_MODELS.flatMap((m) => f.lost[m]));
  for (const cid of f.notInLog) lost.add(cid);
  const where = [
    ...(f.notInLog.length > 0 ? [`log: ${f.notInLog.slice(0, 5).join(' ')}`] : []),
    ...READ_MODELS.filter((m) => f.lost[m].length > 0).map((m) => `${m}: ${f.lost[m].slice(0, 5).join(' ')}`),
  ];
  return {
    lost: lost.size,
    duplicated: READ_MODELS.reduce((n, m) => n + f.duplicated[m], 0),
    lostWhere: where.join('; ') || 'none',
  };
}

/** Resolves once every partition of the rig's catalog topics has all three replicas in sync. */
export async function allInSync(rig: FaultRig, timeoutMs = 300_000): Promise<void> {
  const topics = catalogTopicDefinitions(rig.ctx.topic).map((t) => t.name);
  const admin = rig.kafka.admin();
  await admin.connect();
  try {
    await eventually(
      async () => {
        const meta = await admin.fetchTopicMetadata({ topics });
        const ok = meta.topics.every((t) => t.partitions.every((p) => p.isr.length === 3 && p.leader >= 0));
        return ok ? true : undefined;
      },
      { timeoutMs, intervalMs: 500, what: 'all replicas in sync' },
    );
  } finally {
    await admin.disconnect();
  }
}

/** What settle() found: the read models' figures, or why they could not be taken. */
export interface Settled {
  f: LandedFigures | null;
  t: ReturnType<typeof totals> | null;
  failure: Error | null;
  figures: FaultFigures;
}

/**
 * Waits for the projectors to catch up, then counts what landed. A failure
 * (a cluster that does not recover in time) is returned rather than thrown,
 * so that the test still reports the figures it has before failing.
 */
export async function settle(rig: FaultRig, expected: Iterable<string>): Promise<Settled> {
  try {
    await rig.caughtUp();
    const f = await landedFigures(rig, expected);
    const t = totals(f);
    return {
      f,
      t,
      failure: null,
      figures: {
        lost: t.lost,
        lostWhere: t.lostWhere,
        duplicated: t.duplicated,
        logDuplicatesAbsorbed: f.logDuplicates,
        deadLetters: f.deadLetters,
        projectorsRestartedAfterGivingUp: rig.restarted.join(', ') || 'none',
      },
    };
  } catch (err) {
    const failure = err instanceof Error ? err : new Error(String(err));
    process.stderr.write(
      `[fault] settle failed; the cluster as each broker sees it:\n${await clusterView(rig)}\n`,
    );
    return {
      f: null,
      t: null,
      failure,
      figures: {
        readModelsChecked: `no: ${failure.message.slice(0, 160)}`,
        projectorsRestartedAfterGivingUp: rig.restarted.join(', ') || 'none',
      },
    };
  }
}

/**
 * Each broker's view of the catalog topics (leader/ISR per partition) and
 * whether ListOffsets through it succeeds: what a failed settle() leaves in
 * the log, because the cluster is removed with the test.
 */
async function clusterView(rig: FaultRig): Promise<string> {
  const topics = clinicalTopics(rig.ctx.topic);
  const lines: string[] = [];
  for (const b of rig.cluster.brokers) {
    const admin = new kafkajs.Kafka({
      clientId: `${rig.ctx.id}-view`,
      brokers: [b],
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    try {
      await admin.connect();
      const md = await admin.fetchTopicMetadata({ topics });
      for (const t of md.topics) {
        const parts = [...t.partitions]
          .sort((x, y) => x.partitionId - y.partitionId)
          .map((p) => `${p.partitionId}:${p.leader}/${p.isr.join('')}`)
          .join(' ');
        let offsets = 'ok';
        await admin.fetchTopicOffsets(t.name).catch((e: unknown) => {
          offsets = e instanceof Error ? e.message : String(e);
        });
        lines.push(`  via ${b} ${t.name}: ${parts}; ListOffsets ${offsets}`);
      }
    } catch (e) {
      lines.push(`  via ${b}: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
  // Per read model, the partitions a projector has not reached the end of.
  for (const m of READ_MODELS) {
    const schema = rig.projectors[m].activeSchema();
    if (!schema) continue;
    const rows: { topic: string; partition: number; last_offset: string }[] = await rig.ctx.db
      .withSchema(schema)
      .from('checkpoints')
      .select('topic', 'partition', 'last_offset');
    const cp = new Map(rows.map((r) => [`${r.topic}:${r.partition}`, BigInt(r.last_offset) + 1n]));
    for (const t of topicsOf(rig.ctx, m)) {
      const ends = await endOffsets(rig.kafka, t).catch(() => new Map<number, bigint>());
      for (const [p, end] of ends) {
        const next = cp.get(`${t}:${p}`) ?? 0n;
        if (next < end) lines.push(`  ${m} behind on ${t}:${p}: next ${next}, end ${end}`);
      }
    }
  }
  // Transactions left open on a partition (they hold read-committed consumers at the last stable offset).
  const libsDir = join(homedir(), '.cache', 'clinical-hub', 'kafka-4.1.1', 'libs', '*');
  for (const [i, b] of rig.cluster.brokers.entries()) {
    const r = spawnSync(
      'java',
      [
        '-cp',
        libsDir,
        'org.apache.kafka.tools.TransactionsCommand',
        '--bootstrap-server',
        b,
        'find-hanging',
        '--broker-id',
        String(rig.cluster.nodeIds[i]),
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    lines.push(
      `  find-hanging --broker-id ${rig.cluster.nodeIds[i]}: ${(r.stdout || r.stderr || '').trim().slice(0, 600)}`,
    );
  }
  return lines.join('\n');
}
