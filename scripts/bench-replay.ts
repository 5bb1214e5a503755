/**
 * Replay benchmark: publishes N synthetic clinical events to a private set of
 * topics (suffix), then builds each read model from offset 0 into a fresh
 * schema (indexes in place, as in production) and reports events/s.
 *
 *   npm run bench:replay:standalone -- --events 100000 [--only billing] [--rounds 5] [--keep] [--read-limit]
 *
 * `--read-limit` reads the log once more after each build with the
 * runner's client and codec alone (scripts/bench/read-limit.ts) and prints
 * its events/s beside the build's.
 *
 * Uses KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL (defaults: the dev stack).
 * runReplayBench is also the replay scenario of `npm run bench` (scripts/bench/replay.ts).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { databaseEnv, kafkaEnv, loadConfig, z } from '../libs/config/index.js';
import { createDb, dropSchema } from '../libs/db/index.js';
import { createProjectionRunner, migrateProjection } from '../libs/projections/runner.js';
import { codecSkipping, createEventCodec } from '../libs/events/codec.js';
import { EVENT_CONTRACTS, type EventType } from '../libs/events/index.js';
import { createRegistryClient } from '../libs/events/registry.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { dlqTopicFor } from '../libs/kafka/dlq.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { lagOf } from '../libs/projections/inspect.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { READ_MODEL_NAMES, readModelNamed } from '../libs/read-models/index.js';
import { syntheticEvents } from '../test/support/hospital-day.js';
import { readLogOnce, type ReadLimit } from './bench/read-limit.js';
import {
  deleteSyntheticLog,
  prepareSyntheticLog,
  publishInChunks,
  type SyntheticLog,
} from './bench/synthetic-log.js';

export interface ReplayOptions {
  kafkaBrokers: string[];
  registryUrl: string;
  databaseUrl: string;
  events: number;
  only?: string[];
  /**
   * Builds of each read model from offset 0 (default 1), each into a fresh
   * schema with its own consumer group: the replay slices that `afterEach`
   * pairs with a COPY slice.
   */
  rounds?: number;
  /** Keeps the last build of each read model and the topics (a debugging aid). */
  keep?: boolean;
  suffix?: string;
  log?: (line: string) => void;
  /** Published events so far, then applied events of the projection being built. */
  progress?: (phase: string, done: number, total: number) => void;
  /** Called with each build's schema before it is dropped (e.g. to measure COPY of its rows). */
  afterEach?: (built: ReplayedProjection) => Promise<void>;
  /**
   * After each build, reads the log once more with the runner's client and
   * codec and nothing behind them (scripts/bench/read-limit.ts): the
   * consumer's own ceiling, paired with that build.
   */
  readLimit?: boolean;
}

export interface ReplayedProjection {
  name: string;
  /** 0-based build of this read model. */
  round: number;
  schema: string;
  events: number;
  /** From the partitions' assignment until the lag was 0. */
  seconds: number;
  /** From the runner's start until its partitions were assigned (connect, join the group). */
  startSeconds: number;
  eventsPerSec: number;
  /** With `readLimit`: the read of the same log right after this build. */
  read?: ReadLimit;
}

export interface ReplayResult {
  published: number;
  publishSeconds: number;
  projections: ReplayedProjection[];
}

type RunnerOptions = Parameters<typeof createProjectionRunner>[0];

/** What every build of a read model shares. */
type BuildContext = Pick<RunnerOptions, 'db' | 'kafka' | 'codec' | 'producer' | 'dlqTopic' | 'logger'> & {
  topics: string[];
  /** Applied events so far. */
  progress: (done: number) => void;
};

/**
 * Builds one read model from offset 0 into a fresh `schema` until its lag is
 * 0. Timed from the partitions' assignment, not from the runner's start:
 * connecting and joining the group is a fixed cost (0.01-0.2 s measured) that
 * does not grow with the backlog (a COPY limit's connection is not timed
 * either), and in a 200,000-event slice it would weigh five times what it
 * does in a 1,000,000-event rebuild; it is returned apart. The lag is polled
 * more often as the end nears (down to every 10 ms), so that a build of a few
 * seconds is timed to about 1%, without a query every few ms throughout.
 */
async function buildOnce(
  c: BuildContext,
  projection: RunnerOptions['projection'],
  schema: string,
  groupId: string,
): Promise<{ seconds: number; startSeconds: number }> {
  await dropSchema(c.db, schema);
  await migrateProjection(c.db, schema, projection);
  const { db, kafka, codec, producer, dlqTopic, logger } = c;
  const runner = createProjectionRunner({
    projection,
    schema,
    groupId,
    db,
    kafka,
    codec,
    producer,
    dlqTopic,
    logger,
    onAssigned: () => {
      assignedAt ??= performance.now();
    },
  });
  let assignedAt: number | null = null;
  const t0 = performance.now();
  await runner.start();
  let wait = 200;
  for (;;) {
    await new Promise((r) => setTimeout(r, wait));
    const l = await lagOf(db, kafka, schema, c.topics);
    c.progress(Number(l.done));
    if (l.lag === 0n) break;
    const perMs = Number(l.done) / (performance.now() - (assignedAt ?? t0));
    // Half the time the remaining events should take at the rate so far, within 10-200 ms.
    wait = perMs > 0 ? Math.min(200, Math.max(10, Number(l.lag) / perMs / 2)) : 200;
  }
  const end = performance.now();
  await runner.stop();
  const from = assignedAt ?? t0;
  return { seconds: (end - from) / 1000, startSeconds: (from - t0) / 1000 };
}

/** What the rounds of one read model need beyond a build's context: where results and schemas go. */
type RoundsContext = BuildContext & {
  id: string;
  events: number;
  out: (line: string) => void;
  /** Schemas still to drop at the end. */
  schemas: string[];
  result: ReplayResult;
};

/** Every round of one read model: build, report, hand to afterEach, drop. */
async function buildRounds(o: ReplayOptions, c: RoundsContext, name: string): Promise<void> {
  const model = readModelNamed(name);
  if (!model) throw new Error(`unknown projection ${name}`);
  const rounds = Math.max(1, o.rounds ?? 1);
  for (let round = 0; round < rounds; round++) {
    const schema = `${c.id}_${name}_${round}`;
    c.schemas.push(schema);
    const projection = model.projection(c.topics);
    const { seconds, startSeconds } = await buildOnce(
      { ...c, progress: (done) => o.progress?.(name, done, c.events) },
      projection,
      schema,
      `hub.bench.${name}.${c.id}.${round}`,
    );
    const eventsPerSec = c.events / seconds;
    const read = o.readLimit
      ? await readLogOnce({
          kafka: c.kafka,
          topics: c.topics,
          codec: projection.skip ? codecSkipping(c.codec, projection.skip) : c.codec,
          groupId: `hub.bench.read.${name}.${c.id}.${round}`,
          total: c.events,
        })
      : undefined;
    const built: ReplayedProjection = {
      name,
      round,
      schema,
      events: c.events,
      seconds,
      startSeconds,
      eventsPerSec,
      ...(read ? { read } : {}),
    };
    c.result.projections.push(built);
    c.out(
      `${name.padEnd(10)}  ${String(round + 1).padStart(5)}  ${String(c.events).padEnd(7)}  ${seconds.toFixed(2).padStart(7)}  ${eventsPerSec.toFixed(0).padStart(8)}` +
        (read ? `  ${(c.events / read.seconds).toFixed(0).padStart(10)}` : ''),
    );
    await o.afterEach?.(built);
    // Each build's tables go once measured: rounds x read models of them would crowd Postgres's cache.
    if (!o.keep || round < rounds - 1) {
      await dropSchema(c.db, schema).catch(() => undefined);
      c.schemas.pop();
    }
  }
}

/**
 * Publishes the synthetic log and lets go of its events: a runner in a
 * service does not hold the log it replays, and 200,000 events kept alive
 * in this process would be marked by every major collection of the builds.
 */
async function publishLog(
  o: ReplayOptions,
  producer: ReturnType<typeof createEventProducer>,
): Promise<{ published: number; seconds: number }> {
  const events = syntheticEvents(o.events);
  const t0 = Date.now();
  await publishInChunks(producer, events, 2000, (done, total) => o.progress?.('publish', done, total));
  return { published: events.length, seconds: (Date.now() - t0) / 1000 };
}

export async function runReplayBench(o: ReplayOptions): Promise<ReplayResult> {
  const id = o.suffix ?? `bench_${randomBytes(3).toString('hex')}`;
  const out = o.log ?? (() => undefined);
  const logger = createLogger({ name: 'bench-replay', level: 'error' });
  const kafka = createKafkaClient({ brokers: o.kafkaBrokers, clientId: id, logger });
  const registry = createRegistryClient(o.registryUrl);
  const topic = (name: string) => `${name}.${id}`;
  const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
  const codec = createEventCodec(registry);
  const producer = createEventProducer({ kafka, codec, topicFor });
  const db = createDb(o.databaseUrl, { pool: { min: 0, max: 4 } });
  const topics = clinicalTopics(topic);
  const dlq = dlqTopicFor('bench', topic);
  const chosen = o.only ?? READ_MODEL_NAMES;
  const schemas: string[] = [];
  const result: ReplayResult = { published: 0, publishSeconds: 0, projections: [] };
  const log: SyntheticLog = { kafka, registry, topic, extraTopics: [dlq] };
  try {
    await prepareSyntheticLog(log);
    await producer.connect();
    const { published, seconds: pubSec } = await publishLog(o, producer);
    result.published = published;
    result.publishSeconds = pubSec;
    out(
      `published ${published} events to *.${id} in ${pubSec.toFixed(1)}s (${(published / pubSec).toFixed(0)} ev/s)`,
    );
    out('');
    const ctx: BuildContext = {
      db,
      kafka,
      codec,
      producer,
      dlqTopic: dlq,
      logger,
      topics,
      progress: () => undefined,
    };
    out(`projection  round  events   seconds  events/s${o.readLimit ? '  read limit' : ''}`);
    const run = { ...ctx, id, events: published, out, schemas, result };
    for (const name of chosen) await buildRounds(o, run, name);
  } finally {
    await producer.disconnect().catch(() => undefined);
    if (!o.keep) {
      for (const s of schemas) await dropSchema(db, s).catch(() => undefined);
      await deleteSyntheticLog(log);
    }
    await db.destroy();
  }
  return result;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '100000' },
      only: { type: 'string' },
      rounds: { type: 'string', default: '1' },
      keep: { type: 'boolean', default: false },
      suffix: { type: 'string' },
      'read-limit': { type: 'boolean', default: false },
    },
  });
  const cfg = loadConfig(z.object({ ...kafkaEnv, ...databaseEnv }));
  await runReplayBench({
    kafkaBrokers: cfg.KAFKA_BROKERS,
    registryUrl: cfg.SCHEMA_REGISTRY_URL,
    databaseUrl: cfg.DATABASE_URL,
    events: Number(values.events),
    rounds: Number(values.rounds),
    keep: values.keep,
    readLimit: values['read-limit'],
    log: (s) => process.stdout.write(`${s}\n`),
    ...(values.only ? { only: values.only.split(',') } : {}),
    ...(values.suffix ? { suffix: values.suffix } : {}),
  });
  process.exit(0);
}
