/**
 * `hub fhir ...`: bulk FHIR import from the command line. Like a service's
 * main.ts, this is an edge: it reads config and opens connections; the
 * import itself is services/adapter-fhir/import.ts, shared with POST /$import.
 */
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
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
} from '../libs/config/index.js';
import { createDb } from '../libs/db/index.js';
import { HubError, isHubError } from '../libs/errors/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import { EVENT_CONTRACTS, type EventType } from '../libs/events/index.js';
import { createRegistryClient } from '../libs/events/registry.js';
import { loadFhirDefinitions } from '../libs/fhir/validate.js';
import {
  identityEnvDeprecation,
  identityPolicyFromSite,
  type IdentityPolicy,
} from '../libs/identity/index.js';
import { siteConfigFromEnv } from '../libs/site-config/index.js';
import { ensureTopics } from '../libs/kafka/admin.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { runImport, type ImportCounts, type ImportSummary } from '../services/adapter-fhir/import.js';
import { inlinePreparer, workerPreparer } from '../services/adapter-fhir/prepare-pool.js';
import { createFhirStore } from '../services/adapter-fhir/store.js';

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
  /** Test hook, see ImportRequest. */
  crashAfterPublishingChunk?: number;
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
    if (b.length > 0) last = b[b.length - 1]!;
  }
  if (last !== 10) lines++;
  return { sha256: h.digest('hex'), lines };
}

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
  const format =
    o.format ??
    (/\.(ndjson|jsonl)$/i.test(o.file) ? 'ndjson' : /\.json$/i.test(o.file) ? 'bundle' : 'ndjson');
  const { sha256, lines } = await hashAndCount(o.file);
  const importKey = `file:${sha256}`;
  const topic = topicNamer(cfg.HUB_TOPIC_SUFFIX);
  // The progress bar owns the terminal: only errors are logged unless asked for more.
  const logger = createLogger({
    name: 'hub-fhir-import',
    level: cfg.LOG_LEVEL === 'info' ? 'error' : cfg.LOG_LEVEL,
  });
  const kafka = createKafkaClient({ brokers: cfg.KAFKA_BROKERS, clientId: 'hub-fhir-import', logger });
  const codec = createEventCodec(createRegistryClient(cfg.SCHEMA_REGISTRY_URL));
  const topicFor = (t: EventType) => topic(EVENT_CONTRACTS[t].topic);
  const producer = createEventProducer({ kafka, codec, topicFor, retries: 5 });
  const db = createDb(cfg.DATABASE_URL);
  const store = createFhirStore(db, cfg.FHIR_STORE_SCHEMA);
  const dlqTopic = cfg.DLQ_TOPIC ?? topic('hub.dlq.adapter-fhir');
  const bar =
    o.progress === false
      ? null
      : new SingleBar({
          format:
            'import |{bar}| {percentage}% {value}/{total} lines | created {created} updated {updated} unchanged {unchanged} invalid {invalid} | {speed}/s',
          noTTYOutput: true,
          notTTYSchedule: 2000,
          hideCursor: true,
        });
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
    await ensureTopics(kafka, [{ name: dlqTopic, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    const counts0: ImportCounts = { created: 0, updated: 0, unchanged: 0, invalid: 0, skipped: 0 };
    bar?.start(format === 'ndjson' ? lines : 0, 0, { ...counts0, speed: 0 });
    summary = await runImport(
      { store, producer, policy, sourceSystem: cfg.FHIR_IMPORT_SOURCE_SYSTEM, dlqTopic, logger, preparer },
      createReadStream(o.file),
      {
        importKey,
        format,
        label: basename(o.file).replace(/[^A-Za-z0-9._-]/g, '_'),
        ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}),
        ...(o.crashAfterPublishingChunk ? { crashAfterPublishingChunk: o.crashAfterPublishingChunk } : {}),
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

export function registerFhirCommands(program: Command): void {
  const fhir = program.command('fhir').description('FHIR R4 ingest');
  fhir
    .command('import')
    .description(
      'import NDJSON (one resource per line, as from $export) or a Bundle document; streamed, resumable (checkpoint per file hash), invalid lines to the dead-letter topic',
    )
    .argument('<file>', 'NDJSON (.ndjson) or Bundle (.json) file')
    .option('--format <format>', 'ndjson | bundle (default: by extension)')
    .option('--chunk-size <n>', 'resources per Kafka/Postgres round', (v) => Number.parseInt(v, 10))
    .option('--no-progress', 'no progress bar')
    .option('--restart', 'ignore an earlier checkpoint of this file and start at line 1')
    .option('--workers <n>', 'validation threads (0 = none; default: one per core, at most 4)', (v) =>
      Number.parseInt(v, 10),
    )
    .action(
      async (
        file: string,
        o: { format?: string; chunkSize?: number; progress: boolean; restart?: boolean; workers?: number },
      ) => {
        if (o.format !== undefined && o.format !== 'ndjson' && o.format !== 'bundle') {
          throw new HubError('HUB_INPUT_INVALID', '--format must be ndjson or bundle');
        }
        if (o.chunkSize !== undefined && (!Number.isInteger(o.chunkSize) || o.chunkSize < 1)) {
          throw new HubError('HUB_INPUT_INVALID', '--chunk-size must be a positive integer');
        }
        if (o.workers !== undefined && (!Number.isInteger(o.workers) || o.workers < 0 || o.workers > 16)) {
          throw new HubError('HUB_INPUT_INVALID', '--workers must be an integer from 0 to 16');
        }
        const r = await importFile({
          file,
          ...(o.workers !== undefined ? { workers: o.workers } : {}),
          ...(o.format ? { format: o.format } : {}),
          ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}),
          progress: o.progress,
          ...(o.restart ? { restart: true } : {}),
        });
        const json = Boolean(program.opts()['json']);
        const out = {
          file: r.file,
          importKey: r.importKey,
          resumedAfterLine: r.resumedAfterLine,
          lastLine: r.lastLine,
          ...r.counts,
          events: r.events,
          deadLetters: r.deadLetters,
          seconds: Number(r.seconds.toFixed(2)),
          resourcesPerSecond: Math.round(r.resourcesPerSecond),
        };
        process.stdout.write(
          json
            ? `${JSON.stringify(out, null, 2)}\n`
            : `${Object.entries(out)
                .map(([k, v]) => `${k.padEnd(18)} ${String(v)}`)
                .join('\n')}\n`,
        );
      },
    );
}
