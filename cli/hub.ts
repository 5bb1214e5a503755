/**
 * `hub`: the one command operators and developers use. Entry point like a
 * service's main.ts: it reads config, opens connections and handles signals.
 *
 * Exit codes scripts can rely on:
 *   0 ok · 1 failed · 2 usage or invalid input · 3 schema incompatible · 4 infrastructure unavailable
 */
import { Command, CommanderError } from 'commander';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { databaseEnv, kafkaEnv, loadConfig, logEnv, topicNamer, z } from '../libs/config/index.js';
import { HubError, isHubError, toHubError, type ErrorCode } from '../libs/errors/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import {
  assertAllCompatible,
  catalogTopicDefinitions,
  checkAgainstEarlier,
  checkCompatibility,
  registerAllSchemas,
  type CompatibilityFinding,
} from '../libs/events/contracts.js';
import {
  EVENT_CONTRACTS,
  assertValidEvent,
  avroTypeOf,
  deterministicEventId,
  isEventType,
  type ClinicalEvent,
} from '../libs/events/index.js';
import { createRegistryClient } from '../libs/events/registry.js';
import { composeEvents, readSchemaDir } from '../libs/events/schema-source.js';
import { ensureTopics, listTopics } from '../libs/kafka/admin.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { runUp } from './up.js';
import { runInfra } from './infra.js';
import { registerHl7Commands } from './hl7.js';
import { registerAuthCommands } from './auth.js';
import { registerAuditCommands } from './audit.js';
import { registerFhirCommands } from './fhir.js';
import { registerProjectionsCommands } from './projections.js';
import { registerOpsCommands } from './ops.js';

export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, INCOMPATIBLE: 3, UNAVAILABLE: 4 } as const;

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..');

// Every code is listed, so a new code cannot silently fall into "failed".
const EXIT_FOR: Record<ErrorCode, number> = {
  HUB_SCHEMA_INCOMPATIBLE: EXIT.INCOMPATIBLE,
  HUB_KAFKA_UNAVAILABLE: EXIT.UNAVAILABLE,
  HUB_REGISTRY_UNAVAILABLE: EXIT.UNAVAILABLE,
  HUB_DB_UNAVAILABLE: EXIT.UNAVAILABLE,
  HUB_INFRA_FAILED: EXIT.UNAVAILABLE,
  HUB_CONFIG_INVALID: EXIT.USAGE,
  HUB_INPUT_INVALID: EXIT.USAGE,
  HUB_EVENT_INVALID: EXIT.USAGE,
  HUB_SCHEMA_INVALID: EXIT.USAGE,
  HUB_SCHEMA_NOT_REGISTERED: EXIT.FAILED,
  HUB_EVENT_UNDECODABLE: EXIT.FAILED,
  HUB_EVENT_UNKNOWN_TYPE: EXIT.FAILED,
  HUB_KAFKA_ERROR: EXIT.FAILED,
  HUB_DB_ERROR: EXIT.FAILED,
  HUB_PROJECTION_FAILED: EXIT.FAILED,
  HUB_NOT_FOUND: EXIT.FAILED,
  HUB_INTERNAL: EXIT.FAILED,
  HUB_UNAUTHENTICATED: EXIT.FAILED,
  HUB_FORBIDDEN: EXIT.FAILED,
  HUB_AUDIT_CHAIN_BROKEN: EXIT.FAILED,
  HUB_AUTH_UNAVAILABLE: EXIT.UNAVAILABLE,
};

function exitCodeFor(code: ErrorCode): number {
  return EXIT_FOR[code];
}

const NEXT_STEP: Partial<Record<ErrorCode, string>> = {
  HUB_KAFKA_UNAVAILABLE: 'is the stack up? run `npm run infra:up` (or `hub up`) or set KAFKA_BROKERS',
  HUB_REGISTRY_UNAVAILABLE: 'is the registry up? run `npm run infra:up` or set SCHEMA_REGISTRY_URL',
  HUB_SCHEMA_NOT_REGISTERED: 'run `hub schemas register`',
  HUB_SCHEMA_INCOMPATIBLE:
    'make the change compatible (add fields with defaults; never remove or retype a field) or publish a new topic version',
  HUB_DB_UNAVAILABLE: 'is PostgreSQL running? check DATABASE_URL',
};

function env() {
  return loadConfig(z.object({ ...kafkaEnv, ...databaseEnv, ...logEnv }));
}

function print(json: boolean, value: unknown, table: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${table()}\n`);
}

export function formatTable(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '(none)';
  const cols = Object.keys(rows[0]!);
  const cell = (v: unknown): string => {
    if (v === null || v === undefined) return '';
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return v.toString();
    return JSON.stringify(v);
  };
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join(
    '\n',
  );
}

function findingsTable(findings: CompatibilityFinding[]): string {
  return formatTable(
    findings.map((f) => ({
      subject: f.subject,
      result: f.newSubject ? 'new' : f.compatible ? 'compatible' : 'INCOMPATIBLE',
      problems: f.problems.join('; '),
    })),
  );
}

/** Composes schemas/ as it was at a git revision, for history checks. */
function composeAtRevision(rev: string) {
  const dir = mkdtempSync(join(tmpdir(), 'hub-schemas-'));
  try {
    const tar = execFileSync('git', ['-C', repoDir, 'archive', rev, 'schemas'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
    const { files, catalog } = readSchemaDir(join(dir, 'schemas'));
    return composeEvents(files, catalog);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Fills what a caller may omit (recordedAt, eventType, defaults, a deterministic eventId). */
export function completeEvent(input: unknown, index: number, now: number): ClinicalEvent {
  if (typeof input !== 'object' || input === null) {
    throw new HubError('HUB_INPUT_INVALID', `item ${index}: expected {"type": ..., "data": {...}}`);
  }
  const { type, data } = input as { type?: unknown; data?: unknown };
  if (typeof type !== 'string' || !isEventType(type)) {
    throw new HubError('HUB_INPUT_INVALID', `item ${index}: unknown event type ${JSON.stringify(type)}`);
  }
  if (typeof data !== 'object' || data === null) {
    throw new HubError('HUB_INPUT_INVALID', `item ${index}: "data" must be an object`);
  }
  const d = data as { meta?: Record<string, unknown> };
  const meta = { ...(d.meta ?? {}) };
  meta['eventType'] = type;
  meta['recordedAt'] ??= now;
  if (meta['eventId'] === undefined) {
    const src = (meta['source'] ?? {}) as { system?: unknown; facility?: unknown; messageId?: unknown };
    if (typeof src.system !== 'string' || typeof src.messageId !== 'string') {
      throw new HubError(
        'HUB_INPUT_INVALID',
        `item ${index}: give meta.eventId, or meta.source.system and meta.source.messageId so that a resend is de-duplicated`,
      );
    }
    meta['eventId'] = deterministicEventId([
      src.system,
      typeof src.facility === 'string' ? src.facility : '',
      src.messageId,
      type,
    ]);
  }
  const filled = avroTypeOf(type).clone({ ...d, meta }) as unknown;
  assertValidEvent(type, filled);
  return { type, data: filled } as ClinicalEvent;
}

function parseEventsInput(text: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) return JSON.parse(trimmed) as unknown[];
  if (trimmed.startsWith('{') && !trimmed.includes('\n{')) {
    try {
      return [JSON.parse(trimmed)];
    } catch {
      // fall through to NDJSON
    }
  }
  return trimmed
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as unknown);
}

export function buildProgram(): Command {
  const program = new Command('hub')
    .description('Clinical data hub: run the stack, manage contracts and topics, publish events')
    .option('--json', 'machine-readable output')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('up')
    .description(
      'start Kafka, the registry and the hub services; register schemas; create topics (Ctrl-C stops it all)',
    )
    .option('--no-services', 'only infrastructure, schemas and topics')
    .option('--only <names>', 'a comma-separated subset of services (default: all)')
    .action(async (o: { services: boolean; only?: string }) => {
      const only = o.only
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      await runUp({ repoDir, services: o.services, ...(only ? { only } : {}) });
    });

  runInfra(program, repoDir);
  registerHl7Commands(program);
  registerAuthCommands(program);
  registerAuditCommands(program);
  registerFhirCommands(program);
  registerProjectionsCommands(program);
  registerOpsCommands(program);

  const schemas = program.command('schemas').description('Avro contracts in schemas/ and the registry');
  schemas
    .command('register')
    .description('register every event schema (TopicRecordNameStrategy, FULL_TRANSITIVE); idempotent')
    .action(async () => {
      const cfg = env();
      const topic = topicNamer(cfg.HUB_TOPIC_SUFFIX);
      const results = await registerAllSchemas(createRegistryClient(cfg.SCHEMA_REGISTRY_URL), {
        topicFor: (t) => topic(EVENT_CONTRACTS[t].topic),
      });
      print(Boolean(program.opts()['json']), results, () => formatTable(results.map((r) => ({ ...r }))));
    });
  schemas
    .command('list')
    .description('event types with their topic and subject')
    .action(() => {
      const rows = Object.values(EVENT_CONTRACTS).map((c) => ({
        type: c.type,
        topic: c.topic,
        subject: c.subject,
      }));
      print(Boolean(program.opts()['json']), rows, () => formatTable(rows));
    });
  schemas
    .command('check')
    .description('check schemas/ (working tree) for compatibility before it lands')
    .option('--git-history', 'against schemas/ at every earlier commit that changed it (no registry needed)')
    .option('--registry', 'against every version registered in the registry (the default)')
    .action(async (o: { gitHistory?: boolean }) => {
      const { files, catalog } = readSchemaDir(join(repoDir, 'schemas'));
      const candidates = composeEvents(files, catalog);
      let findings: CompatibilityFinding[] = [];
      if (o.gitHistory) {
        const revs = execFileSync('git', ['-C', repoDir, 'log', '--format=%H', '--', 'schemas'], {
          encoding: 'utf8',
        })
          .split('\n')
          .filter(Boolean);
        for (const rev of revs) {
          for (const f of checkAgainstEarlier(
            candidates,
            composeAtRevision(rev),
            `schemas/ at ${rev.slice(0, 10)}`,
          )) {
            if (!f.compatible) findings.push(f);
          }
        }
        const bad = new Set(findings.map((f) => f.subject));
        findings = [
          ...findings,
          ...candidates
            .filter((c) => !bad.has(c.subject))
            .map((c) => ({
              type: c.type,
              subject: c.subject,
              compatible: true,
              problems: [],
              newSubject: false,
            })),
        ];
        if (!program.opts()['json'])
          process.stderr.write(`checked against ${revs.length} earlier revision(s)\n`);
      } else {
        const cfg = env();
        findings = await checkCompatibility(createRegistryClient(cfg.SCHEMA_REGISTRY_URL), candidates);
      }
      print(Boolean(program.opts()['json']), findings, () => findingsTable(findings));
      assertAllCompatible(findings);
    });

  const topics = program.command('topics').description('Kafka topics from schemas/catalog.json');
  topics
    .command('create')
    .description('create the catalog topics (retention forever, same partition count); idempotent')
    .action(async () => {
      const cfg = env();
      const logger = createLogger({ name: 'hub-cli', level: 'error' });
      const kafka = createKafkaClient({ brokers: cfg.KAFKA_BROKERS, clientId: 'hub-cli', logger });
      const report = await ensureTopics(
        kafka,
        catalogTopicDefinitions(topicNamer(cfg.HUB_TOPIC_SUFFIX)),
      ).catch((err: unknown) => {
        throw isHubError(err)
          ? err
          : new HubError('HUB_KAFKA_UNAVAILABLE', 'could not reach Kafka', { cause: err });
      });
      print(Boolean(program.opts()['json']), report, () =>
        formatTable(
          report.map((r) => ({
            name: r.name,
            // An upgraded install: the limit was raised on a topic that existed.
            action: r.raisedMaxMessageBytes
              ? `${r.action}, max.message.bytes ${r.raisedMaxMessageBytes.from} -> ${r.raisedMaxMessageBytes.to}`
              : r.action,
          })),
        ),
      );
    });
  topics
    .command('list')
    .description('list topics on the broker')
    .action(async () => {
      const cfg = env();
      const logger = createLogger({ name: 'hub-cli', level: 'error' });
      const kafka = createKafkaClient({ brokers: cfg.KAFKA_BROKERS, clientId: 'hub-cli', logger });
      const names = await listTopics(kafka).catch((err: unknown) => {
        throw new HubError('HUB_KAFKA_UNAVAILABLE', 'could not reach Kafka', { cause: err });
      });
      print(Boolean(program.opts()['json']), names, () => names.join('\n'));
    });

  program
    .command('publish')
    .description(
      'publish events from a JSON file or stdin ("-"): {"type","data"} objects, an array, or NDJSON',
    )
    .argument('<file>', 'path, or - for stdin')
    .action(async (file: string) => {
      const cfg = env();
      const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
      let items: unknown[];
      try {
        items = parseEventsInput(text);
      } catch (cause) {
        throw new HubError('HUB_INPUT_INVALID', `${file}: not JSON, a JSON array or NDJSON`, { cause });
      }
      const now = Date.now();
      const events = items.map((it, i) => completeEvent(it, i + 1, now));
      const logger = createLogger({ name: 'hub-cli', level: 'error' });
      const kafka = createKafkaClient({ brokers: cfg.KAFKA_BROKERS, clientId: 'hub-cli', logger });
      const codec = createEventCodec(createRegistryClient(cfg.SCHEMA_REGISTRY_URL));
      const topic = topicNamer(cfg.HUB_TOPIC_SUFFIX);
      const producer = createEventProducer({
        kafka,
        codec,
        retries: 3,
        topicFor: (t) => topic(EVENT_CONTRACTS[t].topic),
      });
      await producer.connect();
      try {
        const published = await producer.publish(events);
        print(Boolean(program.opts()['json']), published, () =>
          formatTable(
            published.map((p, i) => ({ type: events[i]!.type, topic: p.topic, eventId: p.eventId })),
          ),
        );
      } finally {
        await producer.disconnect();
      }
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const h = toHubError(err);
    const json = process.argv.includes('--json');
    const hint = NEXT_STEP[h.code];
    if (json) process.stderr.write(`${JSON.stringify({ error: h.toJSON(), hint })}\n`);
    else process.stderr.write(`hub: ${h.code}: ${h.message}${hint ? `\n  next: ${hint}` : ''}\n`);
    return exitCodeFor(h.code);
  }
}

const isEntry = process.argv[1] && /(?:^|[/\\])(hub\.(ts|js)|hub)$/.test(process.argv[1]);
if (isEntry) {
  // Explicit exit: client libraries can keep sockets (and the process) alive.
  process.exit(await main(process.argv));
}
