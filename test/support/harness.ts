import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createDb, dropSchema, type Knex } from '../../libs/db/index.js';
import { createEventCodec, type EventCodec } from '../../libs/events/codec.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../../libs/events/contracts.js';
import { EVENT_CONTRACTS, type EventType } from '../../libs/events/index.js';
import { createRegistryClient, type RegistryClient } from '../../libs/events/registry.js';
import { deleteTopics, ensureTopics } from '../../libs/kafka/admin.js';
import { createKafkaClient, type KafkaClient } from '../../libs/kafka/client.js';
import { createEventProducer, type EventProducer } from '../../libs/kafka/producer.js';
import { createLogger, type Logger } from '../../libs/telemetry/logger.js';

export interface TestEndpoints {
  kafkaBrokers: string[];
  registryUrl: string;
  databaseUrl: string;
}

export function endpoints(): TestEndpoints {
  return {
    kafkaBrokers: inject('kafkaBrokers'),
    registryUrl: inject('registryUrl'),
    databaseUrl: inject('databaseUrl'),
  };
}

export function uniqueId(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/**
 * Everything one test file needs, isolated: its own copy of the catalog
 * topics (suffixed), schemas registered under those topics' subjects, and its
 * own Postgres schema. `cleanup` removes all of it.
 */
export interface TestContext {
  id: string;
  ep: TestEndpoints;
  logger: Logger;
  kafka: KafkaClient;
  registry: RegistryClient;
  codec: EventCodec;
  producer: EventProducer;
  db: Knex;
  schema: string;
  topic(catalogName: string): string;
  topicFor(type: EventType): string;
  extraTopics: string[];
  cleanup(): Promise<void>;
}

export async function createTestContext(name: string): Promise<TestContext> {
  const ep = endpoints();
  const id = uniqueId(name);
  const logger = createLogger({ name: `test-${name}`, level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
  const kafka = createKafkaClient({ brokers: ep.kafkaBrokers, clientId: id, logger });
  const registry = createRegistryClient(ep.registryUrl);
  const topic = (n: string) => `${n}.${id}`;
  const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
  await ensureTopics(kafka, catalogTopicDefinitions(topic));
  await registerAllSchemas(registry, { topicFor });
  const codec = createEventCodec(registry);
  const producer = createEventProducer({ kafka, codec, topicFor });
  await producer.connect();
  const db = createDb(ep.databaseUrl);
  const schema = id.toLowerCase();
  const extraTopics: string[] = [];
  return {
    id,
    ep,
    logger,
    kafka,
    registry,
    codec,
    producer,
    db,
    schema,
    topic,
    topicFor,
    extraTopics,
    async cleanup() {
      await producer.disconnect().catch(() => undefined);
      await deleteTopics(kafka, [...catalogTopicDefinitions(topic).map((t) => t.name), ...extraTopics]);
      for (const t of Object.keys(EVENT_CONTRACTS) as EventType[]) {
        await registry.deleteSubject(`${topicFor(t)}-${EVENT_CONTRACTS[t].fullName}`).catch(() => undefined);
      }
      await dropSchema(db, schema);
      await db.destroy();
    },
  };
}

/** Polls a condition until it holds: for effects that cross a process or a broker, with a deadline. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
      // The condition was checked and is not met yet: an earlier error is no longer why.
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${opts.what ?? 'condition'}${last instanceof Error ? `: ${last.message}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
