import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventCodec } from '../../libs/events/codec.js';
import { registerAllSchemas } from '../../libs/events/contracts.js';
import { EVENT_CONTRACTS, type ClinicalEvent, type EventType } from '../../libs/events/index.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { endOffsets, ensureTopics } from '../../libs/kafka/admin.js';
import { createEventProducer, type EventProducer } from '../../libs/kafka/producer.js';
import { lagOf } from '../../libs/projections/inspect.js';
import type { ProjectorService } from '../../libs/projections/service.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { dropReadModel } from '../../libs/projections/versions.js';
import { stackConfig, startStack, type StackConfig, type StackHandle } from '../../libs/stack/index.js';
import { createMetrics, type HubMetrics } from '../../libs/telemetry/metrics.js';
import { buildPortalProjector } from '../../services/projector-portal/app.js';
import { faultScale } from '../support/fault-rig.js';
import { reportFault } from '../support/fault-report.js';
import { createTestContext, eventually, type TestContext } from '../support/harness.js';
import { syntheticEvents } from '../support/hospital-day.js';
import { freePort, repoDir } from '../support/processes.js';

const OUTAGE_MS = faultScale(120_000, 10_000);
const EVENTS = faultScale(30_000, 1_000);
/**
 * The types the consumer meets before the outage (the patient topic's): their
 * partitions go on during it, every other type's schema id is new to it then.
 */
const KNOWN_BEFORE = new Set(
  (Object.keys(EVENT_CONTRACTS) as EventType[]).filter(
    (t) => EVENT_CONTRACTS[t].topic === 'clinical.patient.v1',
  ),
);

const total = async (c: { get(): Promise<{ values: { value: number }[] }> }) =>
  (await c.get()).values.reduce((n, v) => n + v.value, 0);

/**
 * A schema registry of this test's own (own port, own Postgres database),
 * beside the shared broker and Postgres: stopping it touches nobody else.
 */
async function privateRegistry(ctx: TestContext): Promise<{ url: string; cfg: StackConfig }> {
  const kafkaPort = Number(ctx.ep.kafkaBrokers[0]!.split(':').pop());
  const cfg = stackConfig('dev', {
    ...process.env,
    HUB_KAFKA_PORT: String(kafkaPort),
    HUB_KAFKA_CONTROLLER_PORT: String(await freePort()),
    HUB_REGISTRY_PORT: String(await freePort()),
    HUB_REGISTRY_DATABASE: `hub_registry_${ctx.id.toLowerCase()}`,
    HUB_DATA_DIR: join(repoDir, '.hub', `regdown-${ctx.id}`),
    DATABASE_URL: ctx.ep.databaseUrl,
  });
  return { url: cfg.registry.url, cfg };
}

async function startOnlyRegistry(cfg: StackConfig): Promise<StackHandle> {
  const stack = await startStack(cfg);
  if (stack.started.join() !== 'registry') {
    await stack.stop();
    throw new Error(`expected to start the registry only, started ${stack.started.join()}`);
  }
  return stack;
}

/**
 * Fault 4: the schema registry down for 2 minutes under load. Producers whose
 * codecs hold the schema ids keep producing; a projector that meets a schema
 * id it has not resolved yet pauses on it (no skip, no dead letter), and
 * resumes and catches up when the registry is back.
 */
describe(`schema registry down for ${OUTAGE_MS / 1000} s under load`, () => {
  let ctx: TestContext;
  let reg: { url: string; cfg: StackConfig };
  let stack: StackHandle | null = null;
  let producer: EventProducer;
  let projector: ProjectorService;
  let metrics: HubMetrics;
  const dlq = () => `hub.dlq.${ctx.id}`;
  const stable = () => `${ctx.schema}_portal`;

  beforeAll(async () => {
    ctx = await createTestContext('regdown');
    ctx.extraTopics.push(dlq());
    await ensureTopics(ctx.kafka, [{ name: dlq(), partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    reg = await privateRegistry(ctx);
    stack = await startOnlyRegistry(reg.cfg);
    const registry = createRegistryClient(reg.url);
    await registerAllSchemas(registry, { topicFor: ctx.topicFor });
    // The producer's codec holds every id (as a running adapter's does); the projector's starts cold.
    const producerCodec = createEventCodec(registry);
    await producerCodec.warmUp(Object.keys(EVENT_CONTRACTS) as EventType[], ctx.topicFor);
    producer = createEventProducer({ kafka: ctx.kafka, codec: producerCodec, topicFor: ctx.topicFor });
    await producer.connect();
    metrics = createMetrics({ defaultMetrics: false });
    projector = buildPortalProjector(
      { ...ctx, codec: createEventCodec(createRegistryClient(reg.url)), producer, metrics },
      {
        stableSchema: stable(),
        dlqTopic: dlq(),
        topicFor: ctx.topic,
        groupPrefix: `hub.projection.${ctx.id}`,
      },
    );
    await projector.start();
  });
  afterAll(async () => {
    await projector?.stop().catch(() => undefined);
    await producer?.disconnect().catch(() => undefined);
    await stack?.stop().catch(() => undefined);
    if (reg) {
      await ctx.db
        .raw('drop database if exists ?? with (force)', [reg.cfg.registry.database])
        .catch(() => undefined);
      await rm(reg.cfg.dataDir, { recursive: true, force: true });
    }
    await dropReadModel(ctx.db, stable()).catch(() => undefined);
    await ctx?.cleanup();
  });

  const applied = async () => {
    const s = projector.activeSchema();
    if (!s) return 0;
    const r = await ctx.db.withSchema(s).from('applied_events').count<{ n: string }[]>({ n: '*' });
    return Number(r[0]?.n ?? 0);
  };
  const caughtUp = (timeoutMs: number) =>
    eventually(
      async () => {
        const s = projector.activeSchema();
        if (!s) return undefined;
        return (await lagOf(ctx.db, ctx.kafka, s, clinicalTopics(ctx.topic))).lag === 0n ? true : undefined;
      },
      { timeoutMs, intervalMs: 250, what: 'portal caught up' },
    );

  /** Publishes `events` evenly over `ms`, in small batches as live traffic comes; counts what failed. */
  async function paced(
    events: readonly ClinicalEvent[],
    ms: number,
  ): Promise<{ sent: number; failed: number }> {
    const chunk = 50;
    const start = performance.now();
    let sent = 0;
    let failed = 0;
    for (let i = 0; i < events.length; i += chunk) {
      const due = start + (ms * i) / events.length;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      const part = events.slice(i, i + chunk);
      try {
        await producer.publish(part);
        sent += part.length;
      } catch {
        failed += part.length;
      }
    }
    return { sent, failed };
  }

  it('producers continue, the projector pauses on unknown schema ids without dead letters, and catches up', async () => {
    // Given a projector that has met only the patient events' schemas
    const events = syntheticEvents(EVENTS, 23);
    const before = events.filter((e) => KNOWN_BEFORE.has(e.type)).slice(0, Math.ceil(EVENTS / 10));
    const beforeIds = new Set(before.map((e) => e.data.meta.eventId));
    const during = events.filter((e) => !beforeIds.has(e.data.meta.eventId));
    await producer.publish(before);
    await caughtUp(120_000);

    // When the registry is down for OUTAGE_MS while events keep coming
    await stack!.stop();
    stack = null;
    const down = performance.now();
    const appliedAtDown = await applied();
    let pausedAt: number | null = null;
    const watch = setInterval(() => {
      void total(metrics.consumerPaused).then((v) => {
        if (v > 0 && pausedAt === null) pausedAt = performance.now();
      });
    }, 100);
    const load = await paced(during, OUTAGE_MS * 0.9);
    await new Promise((r) => setTimeout(r, Math.max(0, down + OUTAGE_MS - performance.now())));
    const appliedDuringOutage = (await applied()) - appliedAtDown;
    const pausedDuringOutage = (await total(metrics.consumerPaused)) > 0;

    // Then, once it is back, the projector resumes and applies everything, nothing dead-lettered
    stack = await startOnlyRegistry(reg.cfg);
    const back = performance.now();
    await caughtUp(600_000);
    const caughtUpAt = performance.now();
    clearInterval(watch);
    const dlqRecords = [...(await endOffsets(ctx.kafka, dlq())).values()].reduce((n, o) => n + Number(o), 0);
    const pausedSeconds = await total(metrics.consumerPausedSeconds);
    const appliedTotal = await applied();
    reportFault('registry-down', 'Schema registry down under load', {
      outageMs: Math.round(back - down),
      producedDuringOutage: load.sent,
      produceFailuresDuringOutage: load.failed,
      consumedDuringOutage: appliedDuringOutage,
      pausedOnUnknownSchemaId: pausedDuringOutage,
      pauseMs: pausedAt === null ? -1 : Math.round(back - pausedAt),
      pausedBatchSeconds: Math.round(pausedSeconds),
      catchUpAfterRegistryBackMs: Math.round(caughtUpAt - back),
      eventsPublished: before.length + load.sent,
      eventsApplied: appliedTotal,
      deadLetters: dlqRecords + (await total(metrics.deadLetters)),
    });
    expect(load.failed).toBe(0);
    expect(pausedDuringOutage).toBe(true);
    expect(dlqRecords).toBe(0);
    expect(appliedTotal).toBe(before.length + load.sent);
  });
});
