import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import { syntheticEvents } from '../../test/support/hospital-day.js';
import { dropSchema } from '../db/index.js';
import { TOPIC_CATALOG } from '../events/index.js';
import { ensureTopics } from '../kafka/admin.js';
import type { ConsumerRunner } from '../kafka/consumer.js';
import { portalProjection } from '../read-models/portal/model.js';
import { lagOf, tableHashes } from './inspect.js';
import {
  claimPartition,
  createProjectionRunner,
  migrateProjection,
  storedOffsets,
  type Projection,
} from './runner.js';
import { clinicalTopics } from './topics.js';

/** Counts, per event id, the applications that were committed (a refused or retried transaction counts nothing). */
function countingCommits(p: Projection, committed: Map<string, number>): Projection {
  return {
    ...p,
    async apply(trx, schema, records, opts) {
      await p.apply(trx, schema, records, opts);
      trx.executionPromise.then(
        () => {
          for (const r of records) {
            const id = r.event.data.meta.eventId;
            committed.set(id, (committed.get(id) ?? 0) + 1);
          }
        },
        () => undefined,
      );
    },
  };
}

/** A knex whose transactions wait for `open()` (the first one tells `entered`): a batch held between its fetch and its commit. */
function gatedDb(db: Knex): { db: Knex; entered: Promise<void>; open(): void } {
  let open!: () => void;
  let enter!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const entered = new Promise<void>((r) => (enter = r));
  const gated = new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== 'transaction') return Reflect.get(target, prop, receiver) as unknown;
      return async (...args: Parameters<Knex['transaction']>) => {
        enter();
        await gate;
        return (target.transaction as (...a: unknown[]) => unknown)(...args);
      };
    },
  });
  return { db: gated, entered, open };
}

/**
 * Several instances of one projector on one consumer group, resuming from
 * the Postgres checkpoints: every event applied exactly once, and a batch
 * fetched by an instance that lost its partition can never commit.
 */
describe('projector scale-out: instances sharing a consumer group', () => {
  let ctx: TestContext;
  let topics: string[];
  let dlq: string;
  const committed = new Map<string, number>();
  const events = syntheticEvents(1_200, 19);
  const runners: ConsumerRunner[] = [];
  const schemas = () => ({ shared: `${ctx.schema}_so`, clean: `${ctx.schema}_clean` });

  beforeAll(async () => {
    ctx = await createTestContext('scaleout');
    topics = clinicalTopics(ctx.topic);
    dlq = `hub.dlq.${ctx.id}`;
    ctx.extraTopics.push(dlq);
    await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    for (const s of Object.values(schemas())) await migrateProjection(ctx.db, s, portalProjection(topics));
  });
  afterAll(async () => {
    for (const r of runners) await r.stop().catch(() => undefined);
    for (const s of Object.values(schemas())) await dropSchema(ctx.db, s).catch(() => undefined);
    await ctx.cleanup();
  });

  /** A runner on the shared schema and group (an instance), or on a schema and group of its own. */
  const runner = (
    db: Knex,
    o: { fenced?: string[]; schema?: string; group?: string; projection?: Projection } = {},
  ) => {
    const r = createProjectionRunner({
      projection: o.projection ?? countingCommits(portalProjection(topics), committed),
      schema: o.schema ?? schemas().shared,
      groupId: o.group ?? `hub.projection.so.${ctx.id}`,
      db,
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      dlqTopic: dlq,
      logger: ctx.logger,
      onFenced: (topic, partition) => o.fenced?.push(`${topic}[${partition}]`),
    });
    runners.push(r);
    return r;
  };
  const caughtUp = (schema: string) =>
    eventually(async () => ((await lagOf(ctx.db, ctx.kafka, schema, topics)).lag === 0n ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 200,
      what: `${schema} caught up`,
    });

  it('regression: a batch of an instance whose partition was claimed by another (stale generation) is refused and nothing of it commits', async () => {
    // Given instance A holding a fetched batch, not yet committed
    await ctx.producer.publish(events.slice(0, 400));
    const fencedA: string[] = [];
    const gate = gatedDb(ctx.db);
    const a = runner(gate.db, { fenced: fencedA });
    await a.start();
    await gate.entered;
    // When another instance is assigned every partition meanwhile (its claims, as on assignment)
    for (const t of TOPIC_CATALOG) {
      for (let p = 0; p < t.partitions; p++)
        await claimPartition(ctx.db, schemas().shared, ctx.topic(t.name), p);
    }
    gate.open();
    // Then A's batch is refused: nothing applied, no checkpoint moved
    await eventually(() => Promise.resolve(fencedA.length > 0 ? true : undefined), {
      what: 'a refused batch',
    });
    for (const topic of topics)
      expect(await storedOffsets(ctx.db, schemas().shared, topic)).toEqual(new Map());
    expect(committed.size).toBe(0);

    // And when B joins the group (a rebalance: both claim anew), everything lands exactly once
    const b = runner(ctx.db);
    await b.start();
    await ctx.producer.publish(events.slice(400, 800));
    await caughtUp(schemas().shared);
    expect(committed.size).toBe(800);
    expect([...committed.values()].every((n) => n === 1)).toBe(true);

    // And after A leaves, B resumes A's partitions from their checkpoints: nothing applied twice
    await a.stop();
    await ctx.producer.publish(events.slice(800));
    await caughtUp(schemas().shared);
    expect(committed.size).toBe(events.length);
    expect([...committed.values()].every((n) => n === 1)).toBe(true);

    // And the read model equals a clean build by one instance
    const clean = runner(ctx.db, {
      schema: schemas().clean,
      group: `hub.projection.clean.${ctx.id}`,
      projection: portalProjection(topics),
    });
    await clean.start();
    await caughtUp(schemas().clean);
    expect(await tableHashes(ctx.db, schemas().shared)).toEqual(await tableHashes(ctx.db, schemas().clean));
  });
});
