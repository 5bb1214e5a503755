import type { Knex } from 'knex';
import { dropSchema } from '../db/index.js';
import { createProjectionRunner, migrateProjection, type Projection } from './runner.js';
import type { EventCodec } from '../events/codec.js';
import { ensureTopics } from '../kafka/admin.js';
import type { KafkaClient } from '../kafka/client.js';
import type { EventProducer } from '../kafka/producer.js';
import type { Logger } from '../telemetry/logger.js';
import { lagOf } from './inspect.js';
import { pointStableAt, readRegistry, versionSchema, type VersionHooks } from './versions.js';

export interface RebuildProgress {
  phase: 'replaying' | 'switching' | 'waiting-for-projector' | 'dropping-old' | 'done';
  done: number;
  total: number;
  lag: number;
  /** Events per second over the last interval. */
  rate: number;
  etaSeconds: number | null;
}

export interface RebuildOptions {
  db: Knex;
  kafka: KafkaClient;
  codec: EventCodec;
  producer: EventProducer;
  logger: Logger;
  projection: Projection;
  stable: string;
  dlqTopic: string;
  hooks?: VersionHooks;
  keepOld?: boolean;
  /** How long to wait for a running projector to move to the new version before keeping the old one. */
  handoverTimeoutMs?: number;
  pollMs?: number;
  onProgress?(p: RebuildProgress): void;
}

export interface RebuildResult {
  stable: string;
  from: string | null;
  to: string;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  droppedOld: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Builds the next version of a read model from offset 0 next to the serving
 * one, switches readers to it atomically when it has caught up, waits for
 * the live projector to follow, then drops the old version.
 */
export async function rebuildReadModel(o: RebuildOptions): Promise<RebuildResult> {
  const { db, projection, stable } = o;
  const pollMs = o.pollMs ?? 500;
  const current = await readRegistry(db, stable);
  const version = (current?.version ?? 0) + 1;
  const target = versionSchema(stable, version);
  // A rebuild that died half-way leaves a partial schema nobody serves: start it afresh.
  if (target !== current?.active_schema) await dropSchema(db, target);
  await migrateProjection(db, target, projection);
  await ensureTopics(o.kafka, [{ name: o.dlqTopic, partitions: 1, retentionMs: -1 }]);

  const runner = createProjectionRunner({
    projection,
    schema: target,
    // A fresh group: nothing but the (empty) checkpoints of the new schema decides where to start.
    groupId: `hub.rebuild.${projection.name}.${target}.${Date.now()}`,
    db,
    kafka: o.kafka,
    codec: o.codec,
    producer: o.producer,
    dlqTopic: o.dlqTopic,
    logger: o.logger,
  });
  const t0 = Date.now();
  let lastDone = 0;
  let lastAt = t0;
  let rate = 0;
  let done = 0;
  await runner.start();
  try {
    for (;;) {
      await sleep(pollMs);
      const l = await lagOf(db, o.kafka, target, projection.topics);
      done = Number(l.done);
      const now = Date.now();
      const inst = ((done - lastDone) * 1000) / Math.max(1, now - lastAt);
      rate = rate === 0 ? inst : 0.7 * rate + 0.3 * inst;
      lastDone = done;
      lastAt = now;
      o.onProgress?.({
        phase: 'replaying',
        done,
        total: Number(l.total),
        lag: Number(l.lag),
        rate,
        etaSeconds: rate > 0 ? Number(l.lag) / rate : null,
      });
      if (l.lag === 0n) break;
    }
  } finally {
    await runner.stop();
  }
  const seconds = (Date.now() - t0) / 1000;

  o.onProgress?.({ phase: 'switching', done, total: done, lag: 0, rate, etaSeconds: 0 });
  await db.transaction((trx) => pointStableAt(trx, stable, projection.name, target, version, o.hooks));

  let droppedOld = false;
  const old = current?.active_schema ?? null;
  if (old && old !== target) {
    // A projector that reported in recently is running on the old version: let it move first,
    // so that dropping the schema never pulls the tables from under a transaction.
    const alive = current?.serving_at && Date.now() - new Date(current.serving_at).getTime() < 30_000;
    let moved = !alive;
    if (alive) {
      o.onProgress?.({ phase: 'waiting-for-projector', done, total: done, lag: 0, rate, etaSeconds: null });
      const deadline = Date.now() + (o.handoverTimeoutMs ?? 60_000);
      while (Date.now() < deadline) {
        const row = await readRegistry(db, stable);
        if (row?.serving_schema === target) {
          moved = true;
          break;
        }
        await sleep(pollMs);
      }
    }
    if (!moved) {
      o.logger.warn(
        { old, target },
        'the running projector did not move to the new version; old version kept',
      );
    } else if (!o.keepOld) {
      o.onProgress?.({ phase: 'dropping-old', done, total: done, lag: 0, rate, etaSeconds: null });
      await dropSchema(db, old);
      droppedOld = true;
    }
  }
  o.onProgress?.({ phase: 'done', done, total: done, lag: 0, rate, etaSeconds: 0 });
  return {
    stable,
    from: old,
    to: target,
    events: done,
    seconds,
    eventsPerSecond: seconds > 0 ? done / seconds : 0,
    droppedOld,
  };
}
