import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startStack, stackConfig, type StackHandle } from '../libs/stack/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../libs/events/contracts.js';
import { EVENT_CONTRACTS, type ClinicalEvent } from '../libs/events/index.js';
import { createRegistryClient } from '../libs/events/registry.js';
import { ensureTopics } from '../libs/kafka/admin.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { patientRegistered } from './support/fixtures.js';
import { endpoints, uniqueId } from './support/harness.js';
import { freePort } from './support/processes.js';

/**
 * The log is the event store and the registry holds the contracts: both must
 * survive a restart of the infrastructure. This file runs a stack of its own
 * (own ports, data dir and registry database) so that stopping it cannot
 * disturb the shared test stack.
 */
describe('infrastructure restart', () => {
  const id = uniqueId('restart').toLowerCase();
  const registryDb = `hub_registry_${id}`;
  const logger = createLogger({ name: 'test-restart', level: 'silent' });
  let dataDir = '';
  let stack: StackHandle | undefined;

  afterAll(async () => {
    await stack?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    const c = new pg.Client({ connectionString: endpoints().databaseUrl });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS "${registryDb}" WITH (FORCE)`);
    await c.end();
  });

  async function readAll(brokers: string[], topic: string, expected: number): Promise<ClinicalEvent[]> {
    const kafka = createKafkaClient({ brokers, clientId: id, logger });
    // A registry client with an empty cache: ids must resolve from the restarted registry.
    const codec = createEventCodec(createRegistryClient(stack!.registryUrl));
    const c = kafka.consumer({ groupId: uniqueId('restart-reader') });
    const got: ClinicalEvent[] = [];
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      void c.run({
        eachMessage: async ({ message }) => {
          try {
            got.push(await codec.decode(message.value ?? Buffer.alloc(0)));
            if (got.length >= expected) resolve();
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        },
      });
    });
    await c.disconnect();
    return got;
  }

  it('keeps events and schema ids across a stop and start of Kafka and the registry', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'hub-restart-'));
    const env = {
      ...process.env,
      HUB_DATA_DIR: dataDir,
      HUB_KAFKA_PORT: String(await freePort()),
      HUB_KAFKA_CONTROLLER_PORT: String(await freePort()),
      HUB_REGISTRY_PORT: String(await freePort()),
      HUB_REGISTRY_DATABASE: registryDb,
      DATABASE_URL: endpoints().databaseUrl,
    };
    const cfg = stackConfig('dev', env);
    stack = await startStack(cfg);
    expect(stack.started).toEqual(['kafka', 'registry']);

    const registry = createRegistryClient(stack.registryUrl);
    const before = await registerAllSchemas(registry);
    const kafka = createKafkaClient({ brokers: stack.kafka.brokers, clientId: id, logger });
    await ensureTopics(kafka, catalogTopicDefinitions());
    const producer = createEventProducer({ kafka, codec: createEventCodec(registry) });
    await producer.connect();
    const written = [
      patientRegistered('P-R1', 'Durable', 'r-1'),
      patientRegistered('P-R2', 'Durable', 'r-2'),
    ];
    await producer.publish(written);
    await producer.disconnect();

    await stack.stop();
    stack = await startStack(cfg);
    expect(stack.started).toEqual(['kafka', 'registry']);

    // Same subjects, same ids: nothing was re-registered from scratch.
    const after = await registerAllSchemas(createRegistryClient(stack.registryUrl));
    expect(after).toEqual(before);
    const topic = EVENT_CONTRACTS.PatientRegistered.topic;
    const read = await readAll(stack.kafka.brokers, topic, written.length);
    expect(read.map((e) => e.data.meta.eventId).sort()).toEqual(
      written.map((e) => e.data.meta.eventId).sort(),
    );
  }, 240_000);
});
