import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { kafkaEnv, loadConfig, z } from '../../libs/config/index.js';
import { createDb, dropSchema } from '../../libs/db/index.js';
import { createEventCodec } from '../../libs/events/codec.js';
import { registerAllSchemas } from '../../libs/events/contracts.js';
import { EVENT_CONTRACTS, type EventType } from '../../libs/events/index.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { createKafkaClient, type KafkaClient } from '../../libs/kafka/client.js';
import { createEventProducer, type EventProducer } from '../../libs/kafka/producer.js';
import { kafkaSecurityFromEnv, type KafkaSecurity } from '../../libs/kafka/security.js';
import {
  stackConfig,
  startStack,
  type ClientPrincipal,
  type SecureAccess,
  type StackHandle,
} from '../../libs/stack/index.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { endpoints, uniqueId, type TestContext } from './harness.js';
import { freePort, repoDir } from './processes.js';

/**
 * A secure-profile Kafka broker of one test's own (SASL_SSL, SCRAM users, ACLs;
 * libs/stack/secure.ts), freshly formatted on free ports, with the plan's
 * topics created under the test's suffix. The shared registry and Postgres
 * are reused (the registry keeps schemas in Postgres, it never talks to
 * Kafka), never started or stopped here.
 */
export interface SecureBroker {
  brokers: string[];
  access: SecureAccess;
  /** The test's context on this broker: topics, schemas and database; `kafka` and `producer` are the operator's. */
  ctx: TestContext;
  /** The settings a principal's env file gives, parsed as a service parses them (libs/config kafkaEnv). */
  securityOf(principal: ClientPrincipal): KafkaSecurity;
  /** A Kafka client, and an event producer on it, with a principal's own credentials. */
  as(principal: ClientPrincipal): { kafka: KafkaClient; producer: EventProducer };
  /** Stops the broker, removes its data dir and the test's schemas. */
  remove(): Promise<void>;
}

/** KEY=value lines (the env files the stack writes) → a record. */
function parseEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

async function startSecureStack(
  id: string,
  dataDir: string,
  topic: (n: string) => string,
): Promise<StackHandle> {
  const ep = endpoints();
  const cfg = stackConfig('secure', {
    ...process.env,
    HUB_SECURE_KAFKA_PORT: String(await freePort()),
    HUB_SECURE_KAFKA_CONTROLLER_PORT: String(await freePort()),
    HUB_SECURE_REGISTRY_PORT: new URL(ep.registryUrl).port || '8081',
    HUB_SECURE_DATA_DIR: dataDir,
    DATABASE_URL: ep.databaseUrl,
  });
  const log = process.env['TEST_LOG_LEVEL']
    ? (m: string) => process.stderr.write(`[secure] ${m}\n`)
    : undefined;
  const stack = await startStack(cfg, { topicsFor: topic, ...(log ? { log } : {}) }).catch(
    async (err: unknown) => {
      // startStack stopped what it started; the data dir (CA, credentials, logs) goes too.
      await rm(dataDir, { recursive: true, force: true });
      throw err;
    },
  );
  if (stack.started.join() !== 'kafka') {
    await stack.stop();
    throw new Error(`expected to start kafka only, started ${stack.started.join()}`);
  }
  return stack;
}

export async function secureBroker(name: string): Promise<SecureBroker> {
  const ep = endpoints();
  const id = uniqueId(name);
  const topic = (n: string) => `${n}.${id}`;
  const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
  const dataDir = join(repoDir, '.hub', `secure-${id}`);
  const stack = await startSecureStack(id, dataDir, topic);
  // Nothing of a failed start is left behind: the broker stops, its data dir goes.
  const release = async (err: unknown): Promise<never> => {
    await stack.stop().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  };
  const access = stack.secure ?? (await release(new Error('the secure profile gave no credentials')));
  const logger = createLogger({ name: `test-${name}`, level: process.env['TEST_LOG_LEVEL'] || 'silent' });
  const registry = createRegistryClient(ep.registryUrl);
  await registerAllSchemas(registry, { topicFor }).catch(release);
  const codec = createEventCodec(registry);
  const securityOf = (p: ClientPrincipal): KafkaSecurity => {
    const cfg = loadConfig(z.object(kafkaEnv), parseEnvFile(access.envFiles[p]));
    const security = kafkaSecurityFromEnv(cfg);
    if (!security) throw new Error(`${p}: the env file gives no security settings`);
    return security;
  };
  const as = (p: ClientPrincipal) => {
    const kafka = createKafkaClient({
      brokers: stack.kafka.brokers,
      clientId: `${p}-${id}`,
      logger,
      security: securityOf(p),
    });
    return { kafka, producer: createEventProducer({ kafka, codec, topicFor }) };
  };
  const operator = as('hub');
  await operator.producer.connect().catch(release);
  const db = createDb(ep.databaseUrl);
  const schema = id.toLowerCase();
  const ctx: TestContext = {
    id,
    ep: { ...ep, kafkaBrokers: stack.kafka.brokers },
    logger,
    kafka: operator.kafka,
    registry,
    codec,
    producer: operator.producer,
    db,
    schema,
    topic,
    topicFor,
    extraTopics: [],
    async cleanup() {
      await operator.producer.disconnect().catch(() => undefined);
      // The broker and its topics go with the data dir; the schemas live in the shared registry.
      for (const t of Object.keys(EVENT_CONTRACTS) as EventType[]) {
        await registry.deleteSubject(`${topicFor(t)}-${EVENT_CONTRACTS[t].fullName}`).catch(() => undefined);
      }
      await dropSchema(db, schema);
      await db.destroy();
    },
  };
  return {
    brokers: stack.kafka.brokers,
    access,
    ctx,
    securityOf,
    as,
    async remove() {
      await ctx.cleanup().catch(() => undefined);
      await stack.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
