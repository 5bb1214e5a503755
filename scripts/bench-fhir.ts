/**
 * FHIR bulk import benchmark: writes an NDJSON file of made-up resources
 * (default 100,000), imports it with `hub fhir import`'s code path and
 * progress display into topics and a store schema of its own, prints
 * resources/s, then removes what it created (unless --keep).
 *
 *   npm run bench:fhir:standalone -- [--count 100000] [--chunk-size 1000] [--workers n] [--keep]
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { importFile } from '../libs/fhir/import/file.js';
import { databaseEnv, kafkaEnv, loadConfig, z } from '../libs/config/index.js';
import { createDb, dropSchema } from '../libs/db/index.js';
import { catalogTopicDefinitions, registerAllSchemas } from '../libs/events/contracts.js';
import { EVENT_CONTRACTS, type EventType } from '../libs/events/index.js';
import { createRegistryClientFromEnv } from '../libs/events/registry.js';
import { deleteTopics, ensureTopics } from '../libs/kafka/admin.js';
import { createKafkaClientFromEnv } from '../libs/kafka/client.js';
import { dlqTopicFor } from '../libs/kafka/dlq.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { generateResources } from '../test/fixtures/fhir/generate.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    'chunk-size': { type: 'string', default: '1000' },
    keep: { type: 'boolean', default: false },
    workers: { type: 'string' },
  },
});
const count = Number.parseInt(values.count, 10);
const chunkSize = Number.parseInt(values['chunk-size'], 10);
const cfg = loadConfig(z.object({ ...kafkaEnv, ...databaseEnv }));
const id = `bench_${randomBytes(3).toString('hex')}`;
const topic = (n: string) => `${n}.${id}`;
const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
const logger = createLogger({ name: 'bench-fhir', level: 'error' });
const kafka = createKafkaClientFromEnv(cfg, { clientId: id, logger });
const registry = createRegistryClientFromEnv(cfg);
const dir = mkdtempSync(join(tmpdir(), 'bench-fhir-'));
const file = join(dir, `bench-${count}.ndjson`);

async function cleanup(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  if (values.keep) return;
  await deleteTopics(kafka, [
    ...catalogTopicDefinitions(topic).map((t) => t.name),
    dlqTopicFor('adapter-fhir', topic),
  ]);
  for (const t of Object.keys(EVENT_CONTRACTS) as EventType[]) {
    await registry.deleteSubject(`${topicFor(t)}-${EVENT_CONTRACTS[t].fullName}`).catch(() => undefined);
  }
  const db = createDb(cfg.DATABASE_URL, { passwordFile: cfg.DATABASE_PASSWORD_FILE });
  await dropSchema(db, id);
  await db.destroy();
}

try {
  process.stderr.write(`generating ${count} resources into ${file}\n`);
  const out = createWriteStream(file);
  for (const r of generateResources(count, { prefix: id.replace('_', '-') })) {
    if (!out.write(`${JSON.stringify(r)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  process.stderr.write(`${(statSync(file).size / 1e6).toFixed(1)} MB; topics *.${id}, store schema ${id}\n`);
  await ensureTopics(kafka, catalogTopicDefinitions(topic));
  await registerAllSchemas(registry, { topicFor });

  const r = await importFile({
    file,
    chunkSize,
    progress: true,
    ...(values.workers !== undefined ? { workers: Number.parseInt(values.workers, 10) } : {}),
    env: { ...process.env, HUB_TOPIC_SUFFIX: id, FHIR_STORE_SCHEMA: id },
  });
  const line = `bench:fhir ${r.lastLine} resources (${r.counts.created} created, ${r.counts.invalid} invalid), ${r.events} events in ${r.seconds.toFixed(1)} s = ${Math.round(r.resourcesPerSecond)} resources/s`;
  process.stdout.write(`${line}\n`);
} finally {
  await cleanup();
}
process.exit(0);
