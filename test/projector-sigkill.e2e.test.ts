import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProjectionRunner, migrateProjection } from '../libs/projections/runner.js';
import { dropSchema } from '../libs/db/index.js';
import { endOffsets, ensureTopics } from '../libs/kafka/admin.js';
import { lagOf, tableHashes } from '../libs/projections/inspect.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { dropReadModel, readRegistry } from '../libs/projections/versions.js';
import { analyticsProjection } from '../libs/read-models/analytics/model.js';
import { billingProjection } from '../libs/read-models/billing/model.js';
import { portalProjection } from '../libs/read-models/portal/model.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { syntheticEvents } from './support/hospital-day.js';
import { freePort, startProcess } from './support/processes.js';

const EVENTS = Number(process.env['SIGKILL_EVENTS'] ?? 100_000);
const PROJECTIONS = { portal: portalProjection, billing: billingProjection, analytics: analyticsProjection };
type Name = keyof typeof PROJECTIONS;
const restartsOf = (kills: number) => kills + 1;
/** Stops guaranteed per projection (half SIGKILL, half SIGTERM). */
const STOPS = 6;

/**
 * Crash safety of the exactly-once runner: each projector service (its own
 * process, started from main.ts) replays 100,000 events and is killed with
 * SIGKILL again and again mid-replay, restarting each time. Far behind the
 * log it catches up on the bulk path (binary COPY); its tables must hash
 * equal to a clean, uninterrupted build of the same events on the
 * per-event (statement) path.
 */
describe(`projectors killed with SIGKILL (and stopped with SIGTERM) during a replay of ${EVENTS} events`, () => {
  let ctx: TestContext;
  let topics: string[];
  let published = 0;
  const dlq = () => `hub.dlq.kill.${ctx.id}`;

  beforeAll(async () => {
    ctx = await createTestContext('kill');
    topics = clinicalTopics(ctx.topic);
    ctx.extraTopics.push(dlq());
    await ensureTopics(ctx.kafka, [{ name: dlq(), partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    const events = syntheticEvents(EVENTS, 7);
    published = events.length;
    for (let i = 0; i < events.length; i += 2000) await ctx.producer.publish(events.slice(i, i + 2000));
  });
  afterAll(async () => {
    for (const n of Object.keys(PROJECTIONS)) {
      await dropReadModel(ctx.db, `${ctx.schema}_${n}`).catch(() => undefined);
      await dropSchema(ctx.db, `${ctx.schema}_${n}_clean`).catch(() => undefined);
    }
    await ctx.cleanup();
  });

  async function cleanBuild(name: Name): Promise<Record<string, string>> {
    const schema = `${ctx.schema}_${name}_clean`;
    const projection = PROJECTIONS[name](topics);
    await migrateProjection(ctx.db, schema, projection);
    const runner = createProjectionRunner({
      projection,
      schema,
      groupId: `hub.clean.${name}.${ctx.id}`,
      db: ctx.db,
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      dlqTopic: dlq(),
      logger: ctx.logger,
      // The reference is built with statements only: the killed builds ran on the bulk path.
      bulkMinEvents: Number.POSITIVE_INFINITY,
    });
    await runner.start();
    try {
      await eventually(
        async () => ((await lagOf(ctx.db, ctx.kafka, schema, topics)).lag === 0n ? true : undefined),
        {
          timeoutMs: 300_000,
          intervalMs: 250,
          what: `clean ${name} build`,
        },
      );
    } finally {
      await runner.stop();
    }
    return tableHashes(ctx.db, schema);
  }

  /** hub_projection_transactions_total{path="bulk"} of a projector process, from its /metrics. */
  async function bulkTransactions(port: number): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return [...text.matchAll(/^hub_projection_transactions_total\{[^}]*path="bulk"[^}]*\} (\d+)/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
  }

  it.each(Object.keys(PROJECTIONS) as Name[])(
    '%s: tables after repeated SIGKILLs and SIGTERMs equal a clean build',
    async (name) => {
      const stable = `${ctx.schema}_${name}`;
      let kills = 0;
      let terms = 0;
      let killedMidway = 0;
      /** Stops of a process that had committed transactions on the bulk (COPY) path. */
      let stoppedInBulk = 0;
      let lastDone = 0n;
      /** When the previous process was stopped, and how: the next start's first progress is timed from it. */
      let stopped: { at: number; signal: 'SIGKILL' | 'SIGTERM' } | null = null;
      const resumeMs: Record<'SIGKILL' | 'SIGTERM', number[]> = { SIGKILL: [], SIGTERM: [] };
      const exitMs: number[] = [];
      for (let restart = 0; ; restart++) {
        // The same consumer group on every start, as a supervisor's restart has:
        // the stored checkpoints decide where to resume, and a killed member's
        // session (GROUP_SESSION_TIMEOUT_MS) holds the next start up only briefly.
        const port = await freePort();
        const proc = startProcess([`services/projector-${name}/main.ts`], {
          KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
          SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
          DATABASE_URL: ctx.ep.databaseUrl,
          HUB_TOPIC_SUFFIX: ctx.id,
          PROJECTION_SCHEMA: stable,
          DLQ_TOPIC: dlq(),
          CONSUMER_GROUP_PREFIX: 'hub.kill',
          HTTP_PORT: String(port),
          LOG_LEVEL: 'warn',
        });
        try {
          // Listening means started: signal handlers are installed and the consumer runs.
          await eventually(
            async () =>
              (await fetch(`http://127.0.0.1:${port}/health`).catch(() => null))?.ok ? true : undefined,
            { timeoutMs: 60_000, what: `${name} listening` },
          );
          await eventually(async () => ((await readRegistry(ctx.db, stable)) ? true : undefined), {
            timeoutMs: 60_000,
            what: `${name} started`,
          });
          const schema = (await readRegistry(ctx.db, stable))!.active_schema;
          // Kill once it has made some progress (a different point every time), or finish when caught up.
          // Interrupt the first STOPS starts as soon as each has committed progress of
          // its own (so every projection, whatever its batch size, is stopped that
          // often mid-replay); later starts at least a step further; then let it finish.
          const step = restart < STOPS ? 1n : BigInt(Math.floor(EVENTS / 24));
          const state = await eventually(
            async () => {
              const l = await lagOf(ctx.db, ctx.kafka, schema, topics).catch(() => undefined);
              if (!l) return undefined;
              if (l.lag === 0n) return { done: true, lag: l.lag };
              if (l.done >= lastDone + step) return { done: false, lag: l.lag, at: l.done };
              return undefined;
            },
            { timeoutMs: 120_000, intervalMs: 25, what: `${name} progress` },
          );
          if (stopped && !state.done)
            resumeMs[stopped.signal].push(Math.round(performance.now() - stopped.at));
          if (state.done) {
            expect(await proc.stop('SIGTERM')).toBe(0);
            break;
          }
          // Every other stop is graceful: SIGTERM mid-replay must finish the batch in
          // flight, commit it with its offsets and exit 0 (graceful shutdown under load).
          if ((await bulkTransactions(port)) > 0) stoppedInBulk++;
          const signal = restart % 2 === 1 ? 'SIGTERM' : 'SIGKILL';
          stopped = { at: performance.now(), signal };
          if (signal === 'SIGTERM') {
            expect(await proc.stop('SIGTERM')).toBe(0);
            exitMs.push(Math.round(performance.now() - stopped.at));
            terms++;
          } else {
            await proc.stop('SIGKILL');
            kills++;
          }
          if (state.lag > 0n) killedMidway++;
          // A graceful stop commits the batch it was in, so progress is read back
          // after the stop: the next start must make progress of its own.
          lastDone = (await lagOf(ctx.db, ctx.kafka, schema, topics)).done;
        } catch (err) {
          await proc.stop('SIGKILL');
          throw new Error(`${String(err)}\n--- ${name} output ---\n${proc.output().slice(-4000)}`);
        }
      }
      process.stdout.write(
        `${name}: ${kills} SIGKILLs and ${terms} SIGTERMs mid-replay, ${restartsOf(kills + terms)} starts; ` +
          `stop -> restarted process applied a batch of its own after ms: ` +
          `SIGKILL [${resumeMs.SIGKILL.join(', ')}], SIGTERM [${resumeMs.SIGTERM.join(', ')}] ` +
          `(SIGTERM -> exit [${exitMs.join(', ')}])\n`,
      );
      // Analytics applies the log in few, large batches and is often caught up
      // before all STOPS happen; two kills and one graceful stop are the floor.
      expect(kills).toBeGreaterThanOrEqual(2);
      expect(terms).toBeGreaterThanOrEqual(1);
      expect(killedMidway).toBe(kills + terms);
      // The catch-up went by binary COPY, and was interrupted there (not only on the statement path).
      expect(stoppedInBulk).toBeGreaterThanOrEqual(2);
      const active = (await readRegistry(ctx.db, stable))!.active_schema;
      const killed = await tableHashes(ctx.db, active);
      const clean = await cleanBuild(name);
      expect(killed).toEqual(clean);
      // Every event applied exactly once, none parked.
      const applied = await ctx.db
        .withSchema(active)
        .from('applied_events')
        .count<{ n: string }[]>({ n: '*' });
      expect(Number(applied[0]?.n)).toBe(published);
      expect([...(await endOffsets(ctx.kafka, dlq())).values()].reduce((a, b) => a + b, 0n)).toBe(0n);
    },
    600_000,
  );
});
