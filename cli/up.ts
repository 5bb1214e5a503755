import { startStack, stackConfig } from '../deploy/local/stack.js';
import { createDb } from '../libs/db/index.js';
import { HubError } from '../libs/errors/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../libs/events/contracts.js';
import { createRegistryClient } from '../libs/events/registry.js';
import { ensureTopics } from '../libs/kafka/admin.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { createMetrics } from '../libs/telemetry/metrics.js';
import { buildPatientDirectory } from '../services/patient-directory/app.js';
import { PATIENT_TOPIC } from '../services/patient-directory/projection.js';

/**
 * `hub up`: the local default of running the whole hub in one process.
 * Infrastructure runs as child JVMs; services run in this process. Ctrl-C
 * stops the services first (so they finish their batch), then whatever
 * infrastructure this command started; infrastructure that was already
 * running (e.g. from `npm run infra:up`) is left alone.
 */
export async function runUp(opts: { repoDir: string; services: boolean }): Promise<void> {
  const say = (m: string) => process.stderr.write(`${m}\n`);
  const t0 = Date.now();
  const stack = await startStack(stackConfig('dev'), { log: say }).catch((cause: unknown) => {
    throw new HubError('HUB_INFRA_FAILED', cause instanceof Error ? cause.message : String(cause), { cause });
  });
  const logger = createLogger({ name: 'hub', level: process.env['LOG_LEVEL'] ?? 'info' });
  const stops: (() => Promise<void>)[] = [() => stack.stop()];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch((err: unknown) => say(`stop: ${String(err)}`));
  };
  try {
    const registry = createRegistryClient(stack.registryUrl);
    const registered = await registerAllSchemas(registry);
    say(`schemas: ${registered.length} subjects registered (FULL_TRANSITIVE)`);
    const kafka = createKafkaClient({ brokers: stack.kafka.brokers, clientId: 'hub', logger });
    const topics = await ensureTopics(kafka, catalogTopicDefinitions());
    say(`topics: ${topics.map((t) => `${t.name} (${t.action})`).join(', ')}`);
    const endpoints: [string, string][] = [
      ['kafka', stack.kafka.brokers.join(',')],
      ['schema registry', stack.registryUrl],
      ['postgres', stack.databaseUrl],
    ];
    if (opts.services) {
      const db = createDb(stack.databaseUrl);
      const codec = createEventCodec(registry);
      const producer = createEventProducer({ kafka, codec });
      await producer.connect();
      stops.push(async () => {
        await producer.disconnect();
        await db.destroy();
      });
      const metrics = createMetrics();
      const dir = buildPatientDirectory(
        { db, kafka, codec, producer, logger, metrics },
        { schema: 'patient_directory', patientTopic: PATIENT_TOPIC, dlqTopic: 'hub.dlq.patient-directory' },
      );
      await dir.start();
      stops.push(() => dir.stop());
      const port = Number(process.env['PATIENT_DIRECTORY_PORT'] ?? 8091);
      const addr = await dir.http.listen({ host: '127.0.0.1', port });
      endpoints.push(['patient-directory', `${addr}/patients/{id}  (/health /ready /metrics)`]);
    }
    say(`\nhub is up in ${((Date.now() - t0) / 1000).toFixed(1)}s:`);
    for (const [k, v] of endpoints) say(`  ${k.padEnd(18)} ${v}`);
    say('\nCtrl-C stops everything this command started.');
  } catch (err) {
    await stopAll();
    throw err;
  }
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      say(`\n${sig}: stopping...`);
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  await stopAll();
  say('stopped.');
}
