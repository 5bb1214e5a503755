/**
 * Replay benchmark: publishes N synthetic clinical events to a private set of
 * topics (suffix), then builds each read model from offset 0 into a fresh
 * schema (indexes in place, as in production) and reports events/s.
 *
 *   npm run bench:replay -- --events 100000 [--only billing] [--keep]
 *
 * Uses KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL (defaults: the dev stack).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { databaseEnv, kafkaEnv, loadConfig, z } from '../libs/config/index.js';
import { createDb, dropSchema } from '../libs/db/index.js';
import { createProjectionRunner, migrateProjection, type Projection } from '../libs/db/projection.js';
import { createEventCodec } from '../libs/events/codec.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../libs/events/contracts.js';
import { EVENT_CONTRACTS, type EventType } from '../libs/events/index.js';
import { createRegistryClient } from '../libs/events/registry.js';
import { deleteTopics, ensureTopics } from '../libs/kafka/admin.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { lagOf } from '../libs/projections/inspect.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { analyticsProjection } from '../services/projector-analytics/projection.js';
import { billingProjection } from '../services/projector-billing/projection.js';
import { portalProjection } from '../services/projector-portal/projection.js';
import { syntheticEvents } from '../test/support/hospital-day.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    only: { type: 'string' },
    keep: { type: 'boolean', default: false },
    suffix: { type: 'string' },
  },
});
const cfg = loadConfig(z.object({ ...kafkaEnv, ...databaseEnv }));
const n = Number(values.events);
const id = values.suffix ?? `bench_${randomBytes(3).toString('hex')}`;
const logger = createLogger({ name: 'bench-replay', level: 'error' });
const kafka = createKafkaClient({ brokers: cfg.KAFKA_BROKERS, clientId: id, logger });
const registry = createRegistryClient(cfg.SCHEMA_REGISTRY_URL);
const topic = (name: string) => `${name}.${id}`;
const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
const codec = createEventCodec(registry);
const producer = createEventProducer({ kafka, codec, topicFor });
const db = createDb(cfg.DATABASE_URL, { pool: { min: 0, max: 4 } });
const topics = clinicalTopics(topic);
const dlq = topic('hub.dlq.bench');

const all: Record<string, (t: readonly string[]) => Projection> = {
  portal: portalProjection,
  billing: billingProjection,
  analytics: analyticsProjection,
};
const chosen = values.only ? values.only.split(',') : Object.keys(all);

const out = (s: string) => process.stdout.write(`${s}\n`);
const schemas: string[] = [];
try {
  await ensureTopics(kafka, [
    ...catalogTopicDefinitions(topic),
    { name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 },
  ]);
  await registerAllSchemas(registry, { topicFor });
  await producer.connect();
  const events = syntheticEvents(n);
  const tp = Date.now();
  for (let i = 0; i < events.length; i += 2000) await producer.publish(events.slice(i, i + 2000));
  const pubSec = (Date.now() - tp) / 1000;
  out(
    `published ${events.length} events to *.${id} in ${pubSec.toFixed(1)}s (${(events.length / pubSec).toFixed(0)} ev/s)`,
  );
  out('');
  out('projection  events   seconds  events/s');
  for (const name of chosen) {
    const make = all[name];
    if (!make) throw new Error(`unknown projection ${name}`);
    const projection = make(topics);
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
      if (l.lag === 0n) break;
    }
    const sec = (Date.now() - t0) / 1000;
    await runner.stop();
    out(
      `${name.padEnd(10)}  ${String(events.length).padEnd(7)}  ${sec.toFixed(1).padStart(7)}  ${(events.length / sec).toFixed(0).padStart(8)}`,
    );
  }
} finally {
  await producer.disconnect().catch(() => undefined);
  if (!values.keep) {
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
process.exit(0);
