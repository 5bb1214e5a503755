/**
 * Imports one file (NDJSON or a Bundle document) from the command line or a
 * benchmark: reads the import's configuration from the environment, opens its
 * own connections, shows progress on the terminal, and runs runImport with
 * the file's hash as the checkpoint key (a rerun resumes).
 */
import { SingleBar } from 'cli-progress';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import {
  databaseEnv,
  kafkaEnv,
  loadConfig,
  logEnv,
  topicNamer,
  z,
  schemaNameEnv,
} from '../../config/index.js';
import { createDb } from '../../db/index.js';
import { HubError, isHubError } from '../../errors/index.js';
import { createEventCodec } from '../../events/codec.js';
import { EVENT_CONTRACTS, type EventType } from '../../events/index.js';
import { createRegistryClientFromEnv } from '../../events/registry.js';
import { identityEnvDeprecation, identityPolicyFromSite, type IdentityPolicy } from '../../identity/index.js';
import { ensureTopics } from '../../kafka/admin.js';
import { createKafkaClientFromEnv } from '../../kafka/client.js';
import { dlqTopicFor } from '../../kafka/dlq.js';
import { createEventProducer } from '../../kafka/producer.js';
import { siteConfigFromEnv } from '../../site-config/index.js';
import { createLogger } from '../../telemetry/logger.js';
import { loadFhirDefinitions } from '../validate.js';
import { emptyCounts, runImport, type ImportSummary } from './import.js';
import { inlinePreparer, workerPreparer } from './prepare-pool.js';
import { createFhirStore } from './store.js';

export interface FileImportOptions {
  file: string;
  format?: 'ndjson' | 'bundle';
  chunkSize?: number;
  progress?: boolean;
  /** Ignore (and overwrite) an earlier checkpoint of this file. */
  restart?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Worker threads for parsing and validation; 0 = in the main thread. Default: one per core (max 4). */
  workers?: number;
}

export interface FileImportResult extends ImportSummary {
  file: string;
  lines: number;
  seconds: number;
  resourcesPerSecond: number;
}

/** One streamed pass: the file's hash (its checkpoint key) and line count (the progress total). */
export async function hashAndCount(file: string): Promise<{ sha256: string; lines: number }> {
  const h = createHash('sha256');
  let lines = 0;
  let last = 10;
  for await (const chunk of createReadStream(file)) {
    const b = chunk as Buffer;
    h.update(b);
    for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) lines++;
    const end = b.at(-1);
    if (end !== undefined) last = end;
  }
  if (last !== 10) lines++;
  return { sha256: h.digest('hex'), lines };
}

const progressBar = () =>
  new SingleBar({
    format:
      'import |{bar}| {percentage}% {value}/{total} lines | created {created} updated {updated} unchanged {unchanged} invalid {invalid} | {speed}/s',
    noTTYOutput: true,
    notTTYSchedule: 2000,
    hideCursor: true,
  });

const fhirCliEnv = z.object({
  ...kafkaEnv,
  ...databaseEnv,
  ...logEnv,
  FHIR_STORE_SCHEMA: schemaNameEnv('adapter_fhir'),
  FHIR_IMPORT_SOURCE_SYSTEM: z.string().min(1).default('fhir-bulk-import'),
  DLQ_TOPIC: z.string().optional(),
  /** The site configuration the adapters use (authorities, enterprise systems): the same ids as theirs. */
  HUB_SITE_CONFIG: z.string().optional(),
  /** Deprecated (one release): use the site configuration. */
  HUB_ENTERPRISE_ID_SYSTEMS: z.string().optional(),
  HUB_AUTHORITY_ALIASES: z.string().optional(),
});

export async function importFile(o: FileImportOptions): Promise<FileImportResult> {
  if (!existsSync(o.file) || !statSync(o.file).isFile()) {
    throw new HubError('HUB_INPUT_INVALID', `${o.file}: no such file`);
  }
  const cfg = loadConfig(fhirCliEnv, o.env ?? process.env);
  const policy: IdentityPolicy = identityPolicyFromSite(siteConfigFromEnv(cfg.HUB_SITE_CONFIG), cfg);
  const deprecation = identityEnvDeprecation(cfg);
  if (deprecation) process.stderr.write(`warning: ${deprecation}\n`);
  const format = o.format ?? (/\.json$/i.test(o.file) ? 'bundle' : 'ndjson');
  const { sha256, lines } = await hashAndCount(o.file);
  const importKey = `file:${sha256}`;
  const topic = topicNamer(cfg.HUB_TOPIC_SUFFIX);
  // The progress bar owns the terminal: only errors are logged unless asked for more.
  const logger = createLogger({
    name: 'hub-fhir-import',
    level: cfg.LOG_LEVEL === 'info' ? 'error' : cfg.LOG_LEVEL,
  });
  const kafka = createKafkaClientFromEnv(cfg, { clientId: 'hub-fhir-import', logger });
  const codec = createEventCodec(createRegistryClientFromEnv(cfg));
  const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
  const producer = createEventProducer({ kafka, codec, topicFor, retries: 5 });
  const db = createDb(cfg.DATABASE_URL, { passwordFile: cfg.DATABASE_PASSWORD_FILE });
  const store = createFhirStore(db, cfg.FHIR_STORE_SCHEMA);
  const dlqTopic = cfg.DLQ_TOPIC ?? dlqTopicFor('adapter-fhir', topic);
  const bar = o.progress === false ? null : progressBar();
  const preparer = o.workers === 0 ? inlinePreparer() : workerPreparer(o.workers);
  const t0 = Date.now();
  let summary: ImportSummary;
  try {
    loadFhirDefinitions();
    await store.migrate();
    if (o.restart) await store.saveCheckpoint({ importKey, lastLine: 0, counts: {} });
    await producer.connect().catch((err: unknown) => {
      throw isHubError(err)
        ? err
        : new HubError('HUB_KAFKA_UNAVAILABLE', 'could not reach Kafka', { cause: err });
    });
    await codec.warmUp(undefined, topicFor);
    await ensureTopics(kafka, [{ name: dlqTopic, partitions: 1, retentionMs: -1 }]);
    bar?.start(format === 'ndjson' ? lines : 0, 0, { ...emptyCounts(), speed: 0 });
    summary = await runImport(
      { store, producer, policy, sourceSystem: cfg.FHIR_IMPORT_SOURCE_SYSTEM, dlqTopic, logger, preparer },
      createReadStream(o.file),
      {
        importKey,
        format,
        label: basename(o.file).replace(/[^A-Za-z0-9._-]/g, '_'),
        ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}),
        onProgress: (line, counts) => {
          const secs = (Date.now() - t0) / 1000;
          bar?.update(line, { ...counts, speed: secs > 0 ? Math.round(line / secs) : 0 });
        },
      },
    );
    bar?.update(summary.lastLine);
  } finally {
    bar?.stop();
    await preparer.close();
    await producer.disconnect().catch(() => undefined);
    await db.destroy().catch(() => undefined);
  }
  const seconds = (Date.now() - t0) / 1000;
  const done = summary.lastLine - summary.resumedAfterLine;
  return { ...summary, file: o.file, lines, seconds, resourcesPerSecond: seconds > 0 ? done / seconds : 0 };
}
