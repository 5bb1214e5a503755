/**
 * Replay benchmark: publishes N synthetic clinical events to a private set of
 * topics (suffix), then builds each read model from offset 0 into a fresh
 * schema (indexes in place, as in production) and reports events/s.
 *
 *   npm run bench:replay:standalone -- --events 100000 [--only billing] [--keep]
 *
 * Uses KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL (defaults: the dev stack).
 * runReplayBench is also the replay scenario of `npm run bench` (scripts/bench/replay.ts).
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { databaseEnv, kafkaEnv, loadConfig, z } from '../libs/config/index.js';
import { createDb, dropSchema } from '../libs/db/index.js';
import { createProjectionRunner, migrateProjection } from '../libs/projections/runner.js';
import { createEventCodec } from '../libs/events/codec.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../libs/events/contracts.js';
import { EVENT_CONTRACTS, type EventType } from '../libs/events/index.js';
import { createRegistryClient } from '../libs/events/registry.js';
import { deleteTopics, ensureTopics } from '../libs/kafka/admin.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { dlqTopicFor } from '../libs/kafka/dlq.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { lagOf } from '../libs/projections/inspect.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { READ_MODEL_NAMES, readModelNamed } from '../libs/read-models/index.js';
import { syntheticEvents } from '../test/support/hospital-day.js';

export interface ReplayOptions {
  kafkaBrokers: string[];
  registryUrl: string;
  databaseUrl: string;
  events: number;
  only?: string[];
  keep?: boolean;
  suffix?: string;
  log?: (line: string) => void;
  /** Published events so far, then applied events of the projection being built. */
  progress?: (phase: string, done: number, total: number) => void;
  /** Called with each built read model's schema before it is dropped (e.g. to measure COPY into it). */
  afterEach?: (built: ReplayedProjection) => Promise<void>;
}

export interface ReplayedProjection {
  name: string;
  schema: string;
  events: number;
  seconds: number;
  eventsPerSec: number;
}

export interface ReplayResult {
  published: number;
  publishSeconds: number;
  projections: ReplayedProjection[];
}

export async function runReplayBench(o: ReplayOptions): Promise<ReplayResult> {
  const n = o.events;
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
  try {
    // ensureTopics waits until every partition answers: on a broker that has
    // just started, a new topic's metadata lags ("does not host this topic-partition").
    await ensureTopics(kafka, [
      ...catalogTopicDefinitions(topic),
      { name: dlq, partitions: 1, retentionMs: -1 },
    ]);
    await registerAllSchemas(registry, { topicFor });
    await producer.connect();
    const events = syntheticEvents(n);
    const tp = Date.now();
    for (let i = 0; i < events.length; i += 2000) {
      await producer.publish(events.slice(i, i + 2000));
      o.progress?.('publish', Math.min(events.length, i + 2000), events.length);
    }
    const pubSec = (Date.now() - tp) / 1000;
    result.published = events.length;
    result.publishSeconds = pubSec;
    out(
      `published ${events.length} events to *.${id} in ${pubSec.toFixed(1)}s (${(events.length / pubSec).toFixed(0)} ev/s)`,
    );
    out('');
    out('projection  events   seconds  events/s');
    for (const name of chosen) {
      const model = readModelNamed(name);
      if (!model) throw new Error(`unknown projection ${name}`);
      const projection = model.projection(topics);
      const schema = `${id}_${name}`;
      schemas.push(schema);
      await dropSchema(db, schema);
      await migrateProjection(db, schema, projection);
      const runner = createProjectionRunner({
        projection,
        schema,
        groupId: `hub.bench.${name}.${id}`,
        db,
        kafka,
        codec,
        producer,
        dlqTopic: dlq,
        logger,
      });
      const t0 = Date.now();
      await runner.start();
      for (;;) {
        await new Promise((r) => setTimeout(r, 200));
        const l = await lagOf(db, kafka, schema, topics);
        o.progress?.(name, events.length - Number(l.lag), events.length);
        if (l.lag === 0n) break;
      }
      const sec = (Date.now() - t0) / 1000;
      await runner.stop();
      const built = { name, schema, events: events.length, seconds: sec, eventsPerSec: events.length / sec };
      result.projections.push(built);
      out(
        `${name.padEnd(10)}  ${String(events.length).padEnd(7)}  ${sec.toFixed(1).padStart(7)}  ${(events.length / sec).toFixed(0).padStart(8)}`,
      );
      await o.afterEach?.(built);
    }
  } finally {
    await producer.disconnect().catch(() => undefined);
    if (!o.keep) {
      for (const s of schemas) await dropSchema(db, s).catch(() => undefined);
      await deleteTopics(kafka, [...catalogTopicDefinitions(topic).map((t) => t.name), dlq]).catch(
        () => undefined,
      );
      for (const t of Object.keys(EVENT_CONTRACTS) as EventType[]) {
        await registry.deleteSubject(`${topicFor(t)}-${EVENT_CONTRACTS[t].fullName}`).catch(() => undefined);
      }
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
      keep: { type: 'boolean', default: false },
      suffix: { type: 'string' },
    },
  });
  const cfg = loadConfig(z.object({ ...kafkaEnv, ...databaseEnv }));
  await runReplayBench({
    kafkaBrokers: cfg.KAFKA_BROKERS,
    registryUrl: cfg.SCHEMA_REGISTRY_URL,
    databaseUrl: cfg.DATABASE_URL,
    events: Number(values.events),
    keep: values.keep,
    log: (s) => process.stdout.write(`${s}\n`),
    ...(values.only ? { only: values.only.split(',') } : {}),
    ...(values.suffix ? { suffix: values.suffix } : {}),
  });
  process.exit(0);
}
