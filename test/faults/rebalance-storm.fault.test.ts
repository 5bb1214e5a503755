import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lagOf, tableHashes } from '../../libs/projections/inspect.js';
import type { ProjectorService } from '../../libs/projections/service.js';
import { dropReadModel, readRegistry } from '../../libs/projections/versions.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';
import {
  buildProjector,
  faultScale,
  READ_MODELS,
  startFaultRig,
  topicsOf,
  type FaultRig,
  type ReadModelName,
} from '../support/fault-rig.js';
import { reportFault } from '../support/fault-report.js';
import { eventually } from '../support/harness.js';
import { syntheticEvents } from '../support/hospital-day.js';
import { projectorDeps } from '../support/projectors.js';

const EVENTS = faultScale(100_000, 500);
const STORM_MS = faultScale(180_000, 6_000);
const STEP_MS = faultScale(20_000, 2_000);

interface Instance {
  svc: ProjectorService;
  metrics: HubMetrics;
}

const total = async (c: { get(): Promise<{ values: { value: number }[] }> }) =>
  (await c.get()).values.reduce((n, v) => n + v.value, 0);

/**
 * Fault 3: each projector scaled 1 → 3 → 1 instances every 20 s for 3
 * minutes on a three-broker cluster while 100,000 events replay. Every
 * instance of a projector is one member of its consumer group, resuming from
 * the Postgres checkpoints; the read models must hash equal to a clean build,
 * and no batch of a stale generation may commit (the store fences it).
 */
describe(`rebalance storm: projectors scaled 1 → 3 → 1 every ${STEP_MS / 1000} s while ${EVENTS} events replay`, () => {
  let rig: FaultRig;
  /** Live instances per read model, oldest first; `gone` keeps the stopped ones' counters. */
  const live = {} as Record<ReadModelName, Instance[]>;
  const gone: Instance[] = [];

  beforeAll(async () => {
    rig = await startFaultRig('storm');
    for (const m of READ_MODELS) live[m] = [];
  });
  afterAll(async () => {
    for (const m of READ_MODELS) for (const i of live[m] ?? []) await i.svc.stop().catch(() => undefined);
    for (const m of READ_MODELS)
      await dropReadModel(rig.ctx.db, `${rig.stable[m]}_clean`).catch(() => undefined);
    await rig?.cleanup();
  });

  /**
   * A started instance; a start that fails on the loaded cluster (kafkajs'
   * "Broker not connected" on a metadata request) is retried with a fresh one.
   */
  async function started(m: ReadModelName, stable: string): Promise<Instance> {
    for (let attempt = 1; ; attempt++) {
      const deps = projectorDeps(rig.ctx);
      const svc = buildProjector(rig.ctx, m, stable, deps);
      try {
        await svc.start();
        return { svc, metrics: deps.metrics };
      } catch (err) {
        await svc.stop().catch(() => undefined);
        if (attempt >= 5) throw err;
      }
    }
  }

  async function scaleTo(m: ReadModelName, n: number): Promise<void> {
    while (live[m].length < n) live[m].push(await started(m, rig.stable[m]));
    // Down to the newest: the members that held partitions longest leave, mid-batch.
    while (live[m].length > n) {
      const i = live[m].shift()!;
      await i.svc.stop();
      gone.push(i);
    }
  }

  async function cleanHashes(m: ReadModelName): Promise<Record<string, string>> {
    const { svc } = await started(m, `${rig.stable[m]}_clean`);
    try {
      await eventually(
        async () => {
          const s = svc.activeSchema();
          if (!s) return undefined;
          return (await lagOf(rig.ctx.db, rig.kafka, s, topicsOf(rig.ctx, m))).lag === 0n ? true : undefined;
        },
        { timeoutMs: 1_200_000, intervalMs: 1_000, what: `clean ${m} build` },
      );
      return await tableHashes(rig.ctx.db, svc.activeSchema()!);
    } finally {
      await svc.stop();
    }
  }

  /** For a read model that is not equal: per table, rows only in one build and a few of them (synthetic data, no PHI). */
  async function explainDiff(m: ReadModelName, schema: string): Promise<void> {
    const clean = (await readRegistry(rig.ctx.db, `${rig.stable[m]}_clean`))?.active_schema ?? '';
    const [a, b] = [await tableHashes(rig.ctx.db, schema), await tableHashes(rig.ctx.db, clean)];
    for (const table of Object.keys(a)) {
      if (a[table] === b[table]) continue;
      const only = async (x: string, y: string) =>
        (
          await rig.ctx.db.raw<{ rows: { t: string }[] }>(
            `select t::text as t from (select * from ??.?? except all select * from ??.??) t order by 1 limit 5`,
            [x, table, y, table],
          )
        ).rows.map((r) => r.t);
      console.log(`[storm] ${m}.${table}: storm ${a[table]} clean ${b[table]}`);
      console.log(`[storm]   only after the storm:`, await only(schema, clean));
      console.log(`[storm]   only in the clean build:`, await only(clean, schema));
    }
  }

  it('read models hash equal to a clean build, and no stale generation commits', async () => {
    // Given half the log written before the projectors start (they replay it from the first
    // offset) and the other half arriving in slices over the storm's first 80 %, so that every
    // rebalance meets projectors with work in hand; one instance of each projector to begin with.
    const events = syntheticEvents(EVENTS, 19);
    const half = Math.floor(events.length / 2);
    for (let i = 0; i < half; i += 2000)
      await rig.producer.publish(events.slice(i, Math.min(i + 2000, half)));
    for (const m of READ_MODELS) {
      await rig.projectors[m].stop();
      await scaleTo(m, 1);
    }
    const started = performance.now();
    const sleepUntil = (ms: number) =>
      new Promise((r) => setTimeout(r, Math.max(0, started + ms - performance.now())));
    const publishing = (async () => {
      const slices = Math.ceil((events.length - half) / 2000);
      for (let k = 0; k < slices; k++) {
        await sleepUntil((k * 0.8 * STORM_MS) / slices);
        await rig.producer.publish(
          events.slice(half + k * 2000, Math.min(half + (k + 1) * 2000, events.length)),
        );
      }
    })();
    /** Events not yet applied, summed over the read models, when each scaling step began. */
    const lagAtSteps: string[] = [];
    const lagNow = async () => {
      let n = 0n;
      for (const m of READ_MODELS) {
        const s = live[m][0]?.svc.activeSchema();
        if (s) n += (await lagOf(rig.ctx.db, rig.kafka, s, topicsOf(rig.ctx, m))).lag;
      }
      return n.toString();
    };

    // When every projector is scaled 1 → 3 → 1 every STEP_MS for STORM_MS
    let steps = 0;
    for (let at = STEP_MS; at <= STORM_MS; at += STEP_MS) {
      await sleepUntil(at);
      lagAtSteps.push(await lagNow().catch(() => '?'));
      const n = steps % 2 === 0 ? 3 : 1;
      await Promise.all(READ_MODELS.map((m) => scaleTo(m, n)));
      steps++;
    }
    await Promise.all(READ_MODELS.map((m) => scaleTo(m, 1)));
    await publishing;
    const stormEnded = performance.now();
    await rig.caughtUp(1_200_000);
    const caughtUpMs = Math.round(performance.now() - stormEnded);
    const replayMs = Math.round(performance.now() - started);

    // Then each read model equals a clean build of the same log
    const equal: Record<string, boolean> = {};
    for (const m of READ_MODELS) {
      const schema = live[m][0]!.svc.activeSchema()!;
      equal[m] =
        JSON.stringify(await tableHashes(rig.ctx.db, schema)) === JSON.stringify(await cleanHashes(m));
    }
    for (const m of READ_MODELS) if (!equal[m]) await explainDiff(m, live[m][0]!.svc.activeSchema()!);
    const all = [...gone, ...READ_MODELS.flatMap((m) => live[m])];
    let fenced = 0;
    let assignments = 0;
    let deadLetters = 0;
    for (const i of all) {
      fenced += await total(i.metrics.consumerFencedBatches);
      assignments += await total(i.metrics.consumerAssignments);
      deadLetters += await total(i.metrics.deadLetters);
    }
    reportFault('rebalance-storm', 'Rebalance storm: projectors scaled 1 → 3 → 1 during a replay', {
      events: EVENTS,
      projectors: READ_MODELS.join(','),
      stormSeconds: STORM_MS / 1000,
      scaleSteps: steps,
      lagAtEachStep: lagAtSteps.join(' '),
      instancesStarted: all.length,
      assignmentsSeen: assignments,
      staleBatchesRefused: fenced,
      deadLetters,
      ...Object.fromEntries(READ_MODELS.map((m) => [`hashEqual.${m}`, equal[m]!])),
      catchUpAfterStormMs: caughtUpMs,
      totalMs: replayMs,
    });
    expect(equal).toEqual({ billing: true, analytics: true, portal: true, directory: true });
    expect(deadLetters).toBe(0);
  });
});
