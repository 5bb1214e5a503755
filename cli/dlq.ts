/**
 * `hub dlq …`: dead letters across every DLQ topic. An edge like main.ts:
 * reads config, opens connections; the parsing is libs/kafka/dlq.ts.
 *
 * Decisions (see docs/runbook.md):
 *  - What was done to a dead letter (redriven / discarded) is a row in
 *    Postgres `hub_ops.dlq_state` (schema from HUB_OPS_SCHEMA), keyed by the
 *    dead letter's topic/partition/offset. A table, not a compacted topic: it
 *    is queried by key and joined in `list`, and a claim (insert … on conflict
 *    do nothing) stops two operators redriving the same record twice.
 *  - Redrive re-publishes the original record to its source topic. Every hub
 *    consumer de-duplicates by event id, so consumers that already applied it
 *    skip it and the one that failed applies it once. `--to` sends it
 *    elsewhere (e.g. a consumer's private retry topic) instead.
 *  - Reading a payload (`show --include-phi --reason`) is recorded first, as
 *    a JSON line on the Kafka topic `hub.audit.v1` (acks=all, kept forever);
 *    if that write fails nothing is shown. Redrive and discard are audited
 *    there too.
 */
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { hostname, userInfo } from 'node:os';
import {
  databaseEnv,
  kafkaEnv,
  loadConfig,
  logEnv,
  topicNamer,
  z,
  schemaNameEnv,
} from '../libs/config/index.js';
import { assertSqlIdentifier, createDb, toDbError, type Knex } from '../libs/db/index.js';
import { HubError, isHubError } from '../libs/errors/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import { createRegistryClient } from '../libs/events/registry.js';
import { ensureTopics, listTopics } from '../libs/kafka/admin.js';
import { createKafkaClient, type KafkaClient } from '../libs/kafka/client.js';
import {
  isDlqTopic,
  matches,
  parseDeadLetter,
  redriveRecord,
  safeHeaders,
  type DeadLetterInfo,
  type DlqFilter,
} from '../libs/kafka/dlq.js';
import { scanTopic, type ScannedRecord } from '../libs/kafka/scan.js';
import { createEventProducer, type EventProducer, type RawRecord } from '../libs/kafka/producer.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { formatTable } from './hub.js';

export const AUDIT_TOPIC = 'hub.audit.v1';

const dlqEnv = z.object({
  ...kafkaEnv,
  ...databaseEnv,
  ...logEnv,
  HUB_OPS_SCHEMA: schemaNameEnv('hub_ops'),
  /** Who is acting, for the audit trail; the OS user by default. */
  HUB_OPERATOR: z.string().min(1).optional(),
});
type DlqEnv = z.infer<typeof dlqEnv>;

export type DlqState = 'redriven' | 'discarded';

export interface StateRow {
  dlq_topic: string;
  dlq_partition: number;
  dlq_offset: string;
  state: DlqState;
  reason: string | null;
  actor: string;
  target_topic: string | null;
  at: Date;
}

export interface ListedDeadLetter extends DeadLetterInfo {
  state: DlqState | 'open';
  stateReason: string | null;
}

const keyOf = (t: string, p: number, o: string) => `${t}/${p}/${o}`;

export async function ensureStateTable(db: Knex, schema: string): Promise<void> {
  assertSqlIdentifier(schema);
  await db.raw('create schema if not exists ??', [schema]);
  await db.raw(
    `create table if not exists ??.dlq_state (
       dlq_topic text not null,
       dlq_partition integer not null,
       dlq_offset bigint not null,
       state text not null check (state in ('redriven', 'discarded')),
       reason text,
       actor text not null,
       target_topic text,
       at timestamptz not null default now(),
       primary key (dlq_topic, dlq_partition, dlq_offset))`,
    [schema],
  );
}

async function readStates(
  db: Knex,
  schema: string,
  topics: readonly string[],
): Promise<Map<string, StateRow>> {
  const rows = (await db
    .withSchema(schema)
    .from('dlq_state')
    .whereIn('dlq_topic', [...topics])
    .select('*')) as StateRow[];
  return new Map(rows.map((r) => [keyOf(r.dlq_topic, r.dlq_partition, String(r.dlq_offset)), r]));
}

/** Takes a dead letter for one action; false when someone already handled it. */
async function claim(
  db: Knex,
  schema: string,
  info: DeadLetterInfo,
  row: Omit<StateRow, 'dlq_topic' | 'dlq_partition' | 'dlq_offset' | 'at'>,
): Promise<boolean> {
  const inserted = (await db
    .withSchema(schema)
    .into('dlq_state')
    .insert({ dlq_topic: info.topic, dlq_partition: info.partition, dlq_offset: info.offset, ...row })
    .onConflict(['dlq_topic', 'dlq_partition', 'dlq_offset'])
    .ignore()
    .returning('dlq_offset')) as unknown[];
  return inserted.length > 0;
}

const REDRIVE_CHUNK = 500;

/** Claims many at once; returns the keys this call took (others were handled meanwhile). */
async function claimMany(
  db: Knex,
  schema: string,
  rows: readonly (Omit<StateRow, 'dlq_topic' | 'dlq_partition' | 'dlq_offset' | 'at'> & {
    info: DeadLetterInfo;
  })[],
): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const q = db
    .withSchema(schema)
    .into('dlq_state')
    .insert(
      rows.map(({ info, ...r }) => ({
        dlq_topic: info.topic,
        dlq_partition: info.partition,
        dlq_offset: info.offset,
        ...r,
      })),
    )
    .onConflict(['dlq_topic', 'dlq_partition', 'dlq_offset'])
    .ignore()
    .returning(['dlq_topic', 'dlq_partition', 'dlq_offset']);
  const inserted = (await q) as {
    dlq_topic: string;
    dlq_partition: number;
    dlq_offset: string | number;
  }[];
  return new Set(inserted.map((r) => keyOf(r.dlq_topic, r.dlq_partition, String(r.dlq_offset))));
}

async function releaseMany(db: Knex, schema: string, infos: readonly DeadLetterInfo[]): Promise<void> {
  if (infos.length === 0) return;
  await db
    .withSchema(schema)
    .from('dlq_state')
    .whereIn(
      ['dlq_topic', 'dlq_partition', 'dlq_offset'],
      infos.map((i) => [i.topic, i.partition, i.offset]),
    )
    .delete();
}

function actor(cfg: DlqEnv): string {
  if (cfg.HUB_OPERATOR) return cfg.HUB_OPERATOR;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export interface AuditEntry {
  action: 'dlq.show.include-phi' | 'dlq.redrive' | 'dlq.discard';
  target: { topic: string; partition: number; offset: string };
  reason: string | null;
  detail?: Record<string, string>;
}

const auditTopicReady = new Set<string>();

/** Resolves once the audit line is acknowledged by Kafka (acks=all). */
async function audit(
  producer: EventProducer,
  cfg: DlqEnv,
  kafka: KafkaClient,
  entries: readonly AuditEntry[],
): Promise<void> {
  if (entries.length === 0) return;
  const topic = topicNamer(cfg.HUB_TOPIC_SUFFIX)(AUDIT_TOPIC);
  if (!auditTopicReady.has(topic)) {
    await ensureTopics(kafka, [{ name: topic, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    auditTopicReady.add(topic);
  }
  const who = actor(cfg);
  const at = new Date().toISOString();
  const records: RawRecord[] = entries.map((e) => ({
    topic,
    key: e.action,
    value: Buffer.from(JSON.stringify({ at, actor: who, host: hostname(), ...e })),
    headers: { 'hub-audit-action': e.action },
  }));
  await producer.publishRaw(records);
}

function kafkaUnavailable(what: string) {
  return (err: unknown): never => {
    throw isHubError(err) ? err : new HubError('HUB_KAFKA_UNAVAILABLE', `could not ${what}`, { cause: err });
  };
}

function dbUnavailable(err: unknown): never {
  throw toDbError(err);
}

interface Session {
  cfg: DlqEnv;
  kafka: KafkaClient;
  db: Knex;
  schema: string;
  close(): Promise<void>;
}

function open(): Session {
  const cfg = loadConfig(dlqEnv);
  const logger = createLogger({ name: 'hub-cli', level: 'error' });
  const kafka = createKafkaClient({ brokers: cfg.KAFKA_BROKERS, clientId: 'hub-cli-dlq', logger });
  const db = createDb(cfg.DATABASE_URL, { pool: { min: 0, max: 2 } });
  return {
    cfg,
    kafka,
    db,
    schema: assertSqlIdentifier(cfg.HUB_OPS_SCHEMA),
    close: () => db.destroy(),
  };
}

async function dlqTopics(s: Session, only?: string): Promise<string[]> {
  const all = await listTopics(s.kafka).catch(kafkaUnavailable('list topics'));
  if (only !== undefined) {
    if (!all.includes(only)) {
      throw new HubError('HUB_NOT_FOUND', `no topic ${only}; run \`hub dlq list\` to see the DLQ topics`);
    }
    return [only];
  }
  const suffix = s.cfg.HUB_TOPIC_SUFFIX;
  return all.filter((t) => isDlqTopic(t) && (suffix === undefined || t.endsWith(`.${suffix}`)));
}

async function collect(
  s: Session,
  topics: readonly string[],
): Promise<{ rec: ScannedRecord; info: ListedDeadLetter }[]> {
  await ensureStateTable(s.db, s.schema).catch(dbUnavailable);
  const states = await readStates(s.db, s.schema, topics).catch(dbUnavailable);
  const out: { rec: ScannedRecord; info: ListedDeadLetter }[] = [];
  for (const t of topics) {
    const recs = await scanTopic(s.kafka, t).catch(kafkaUnavailable(`read ${t}`));
    for (const rec of recs) {
      const st = states.get(keyOf(rec.topic, rec.partition, rec.offset));
      out.push({
        rec,
        info: { ...parseDeadLetter(rec), state: st?.state ?? 'open', stateReason: st?.reason ?? null },
      });
    }
  }
  return out;
}

function row(d: ListedDeadLetter): Record<string, unknown> {
  return {
    topic: d.topic,
    at: `${d.partition}:${d.offset}`,
    failedAt: d.failedAt ?? '',
    consumer: d.consumer,
    reasonCode: d.reasonCode,
    source: d.source ? `${d.source.topic}/${d.source.partition}/${d.source.offset}` : (d.origin ?? ''),
    eventType: d.eventType ?? '',
    state: d.state,
  };
}

function parseAt(values: readonly string[] | undefined): string[] | undefined {
  if (!values || values.length === 0) return undefined;
  const out = values.flatMap((v) => v.split(',')).map((v) => v.trim());
  for (const v of out) {
    if (!/^\d+:\d+$/.test(v)) {
      throw new HubError(
        'HUB_INPUT_INVALID',
        `--at ${v}: expected <partition>:<offset>, as in \`hub dlq list\``,
      );
    }
  }
  return out;
}

interface SelectOpts {
  topic?: string;
  at?: string[];
  consumer?: string;
  reasonCode?: string;
  all?: boolean;
}

function filterOf(o: SelectOpts): DlqFilter {
  const f: DlqFilter = {};
  const at = parseAt(o.at);
  if (at) f.at = at;
  if (o.consumer !== undefined) f.consumer = o.consumer;
  if (o.reasonCode !== undefined) f.reasonCode = o.reasonCode;
  if (!o.all && !f.at && f.consumer === undefined && f.reasonCode === undefined) {
    throw new HubError(
      'HUB_INPUT_INVALID',
      'select dead letters with --at <partition:offset>, --consumer, --reason-code, or --all',
    );
  }
  if (f.at && o.topic === undefined) {
    throw new HubError('HUB_INPUT_INVALID', '--at needs --topic (offsets are per topic)');
  }
  return f;
}

function json(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x: unknown) => {
      if (typeof x === 'bigint') return x.toString();
      return x;
    },
    2,
  );
}

/** Resolves once written: hub.ts exits right after the action, which would cut a piped write short. */
export function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) =>
    process.stdout.write(text, (err) => (err ? reject(err) : resolve())),
  );
}

function out(isJson: boolean, value: unknown, table: () => string): Promise<void> {
  return writeOut(isJson ? `${json(value)}\n` : `${table()}\n`);
}

export function registerDlqCommands(program: Command): void {
  const isJson = () => Boolean(program.opts()['json']);
  const dlq = program
    .command('dlq')
    .description('dead letters on every DLQ topic: list, show, redrive after a fix, discard');

  const selection = (c: Command) =>
    c
      .option('--topic <topic>', 'one DLQ topic (default: every *.dlq.* topic)')
      .option(
        '--at <partition:offset...>',
        'specific dead letters (with --topic), as `hub dlq list` shows them',
      )
      .option('--consumer <name>', 'dead letters of one consumer (group)')
      .option('--reason-code <code>', 'dead letters with one reason code')
      .option('--all', 'every open dead letter matching the other options');

  dlq
    .command('list')
    .description('dead letters with reason, consumer, source and time (never payloads); open ones by default')
    .option('--topic <topic>', 'one DLQ topic (default: every *.dlq.* topic)')
    .option('--consumer <name>', 'only this consumer (group)')
    .option('--reason-code <code>', 'only this reason code')
    .option('--all', 'include redriven and discarded ones')
    .action(async (o: { topic?: string; consumer?: string; reasonCode?: string; all?: boolean }) => {
      const s = open();
      try {
        const topics = await dlqTopics(s, o.topic);
        const f: DlqFilter = {};
        if (o.consumer !== undefined) f.consumer = o.consumer;
        if (o.reasonCode !== undefined) f.reasonCode = o.reasonCode;
        const all = (await collect(s, topics)).map((x) => x.info).filter((d) => matches(d, f));
        const shown = o.all ? all : all.filter((d) => d.state === 'open');
        await out(isJson(), shown, () => {
          const hidden = all.length - shown.length;
          return (
            formatTable(shown.map(row)) +
            `\n${shown.length} dead letter(s) on ${topics.length} topic(s)` +
            (hidden > 0 ? `; ${hidden} redriven/discarded hidden (--all shows them)` : '')
          );
        });
      } finally {
        await s.close();
      }
    });

  dlq
    .command('show')
    .description(
      'one dead letter: metadata and hub headers; the payload only with --include-phi --reason (audited)',
    )
    .argument('<topic>')
    .argument('<partition>')
    .argument('<offset>')
    .option('--include-phi', 'decode and print the payload (PHI); recorded on hub.audit.v1 first')
    .option('--reason <text>', 'why the payload is needed (ticket, incident); required with --include-phi')
    .action(
      async (
        topic: string,
        partitionArg: string,
        offsetArg: string,
        o: { includePhi?: boolean; reason?: string },
      ) => {
        if (!/^\d+$/.test(partitionArg) || !/^\d+$/.test(offsetArg)) {
          throw new HubError(
            'HUB_INPUT_INVALID',
            'partition and offset are numbers, as `hub dlq list` shows them',
          );
        }
        if (o.includePhi && (o.reason === undefined || o.reason.trim().length < 5)) {
          throw new HubError(
            'HUB_INPUT_INVALID',
            '--include-phi needs --reason "<why, e.g. the incident or ticket>" (at least 5 characters); the access is audited',
          );
        }
        const partition = Number(partitionArg);
        const offset = BigInt(offsetArg);
        const s = open();
        try {
          await dlqTopics(s, topic);
          const recs = await scanTopic(s.kafka, topic, {
            range: (p) => (p === partition ? { from: offset, to: offset + 1n } : null),
          }).catch(kafkaUnavailable(`read ${topic}`));
          const rec = recs[0];
          if (!rec) {
            throw new HubError(
              'HUB_NOT_FOUND',
              `no record at ${topic}/${partition}/${offsetArg}; run \`hub dlq list --topic ${topic}\``,
            );
          }
          await ensureStateTable(s.db, s.schema).catch(dbUnavailable);
          const st = (await readStates(s.db, s.schema, [topic]).catch(dbUnavailable)).get(
            keyOf(topic, partition, rec.offset),
          );
          const result: Record<string, unknown> = {
            ...parseDeadLetter(rec),
            state: st?.state ?? 'open',
            stateReason: st?.reason ?? null,
            stateBy: st?.actor ?? null,
            headers: safeHeaders(rec.headers),
            valueBytes: rec.value?.length ?? 0,
          };
          if (o.includePhi) {
            const producer = createEventProducer({
              kafka: s.kafka,
              codec: createEventCodec(createRegistryClient(s.cfg.SCHEMA_REGISTRY_URL)),
              retries: 3,
            });
            await producer.connect();
            try {
              await audit(producer, s.cfg, s.kafka, [
                {
                  action: 'dlq.show.include-phi',
                  target: { topic, partition, offset: rec.offset },
                  reason: o.reason ?? null,
                },
              ]);
            } finally {
              await producer.disconnect();
            }
            result['payload'] = await decodePayload(s.cfg, rec);
          }
          await out(isJson(), result, () => {
            const lines = Object.entries(result)
              .filter(([k]) => k !== 'headers' && k !== 'payload')
              .map(([k, v]) => `${k.padEnd(12)} ${v === null ? '' : typeof v === 'string' ? v : json(v)}`);
            lines.push('headers:');
            for (const [k, v] of Object.entries(result['headers'] as Record<string, string>))
              lines.push(`  ${k}: ${v}`);
            if ('payload' in result) lines.push('payload (PHI, access audited):', json(result['payload']));
            else lines.push('payload: not shown (use --include-phi --reason "..."; the access is audited)');
            return lines.join('\n');
          });
        } finally {
          await s.close();
        }
      },
    );

  selection(
    dlq
      .command('redrive')
      .description(
        're-publish dead letters to their source topic after a fix (consumers de-duplicate by event id); marks them redriven',
      ),
  )
    .option('--to <topic>', 'publish here instead of the source topic (e.g. a consumer-private retry topic)')
    .option('--reason <text>', 'note kept with the state and the audit line')
    .option('--dry-run', 'show what would be redriven, publish nothing')
    .action(async (o: SelectOpts & { to?: string; reason?: string; dryRun?: boolean }) => {
      const f = filterOf(o);
      const s = open();
      try {
        const topics = await dlqTopics(s, o.topic);
        const found = (await collect(s, topics)).filter((x) => matches(x.info, f));
        checkAtFound(f, found);
        const open_ = found.filter((x) => x.info.state === 'open');
        const skipped = found
          .filter((x) => x.info.state !== 'open' || !x.info.redrivable)
          .map((x) => ({
            ...row(x.info),
            result: x.info.state !== 'open' ? `skipped: already ${x.info.state}` : 'skipped: not redrivable',
          }));
        const todo = open_.filter((x) => x.info.redrivable);
        const done: Record<string, unknown>[] = [];
        if (!o.dryRun && todo.length > 0) {
          const producer = createEventProducer({
            kafka: s.kafka,
            codec: createEventCodec(createRegistryClient(s.cfg.SCHEMA_REGISTRY_URL)),
            retries: 3,
          });
          await producer.connect().catch(kafkaUnavailable('connect to Kafka'));
          const bar =
            !isJson() && process.stderr.isTTY && todo.length > REDRIVE_CHUNK
              ? new SingleBar({
                  format: 'redrive |{bar}| {percentage}% {value}/{total} | ETA {eta_formatted}',
                  stream: process.stderr,
                  hideCursor: true,
                })
              : null;
          bar?.start(todo.length, 0);
          try {
            const targetOf = (x: (typeof todo)[number]) => o.to ?? x.info.source!.topic;
            // In DLQ order and in chunks: one claim statement, one produce
            // request and one audit write per chunk.
            for (let i = 0; i < todo.length; i += REDRIVE_CHUNK) {
              const chunk = todo.slice(i, i + REDRIVE_CHUNK);
              const mine = await claimMany(
                s.db,
                s.schema,
                chunk.map((x) => ({
                  info: x.info,
                  state: 'redriven' as const,
                  reason: o.reason ?? null,
                  actor: actor(s.cfg),
                  target_topic: targetOf(x),
                })),
              ).catch(dbUnavailable);
              const claimed = chunk.filter((x) =>
                mine.has(keyOf(x.info.topic, x.info.partition, x.info.offset)),
              );
              for (const x of chunk) {
                if (!claimed.includes(x)) done.push({ ...row(x.info), result: 'skipped: handled meanwhile' });
              }
              const now = Date.now();
              try {
                await producer.publishRaw(claimed.map((x) => redriveRecord(x.rec, targetOf(x), now)));
              } catch (err) {
                // Not published: give them back so a later redrive can take them.
                await releaseMany(
                  s.db,
                  s.schema,
                  claimed.map((x) => x.info),
                ).catch(() => undefined);
                throw kafkaUnavailableErr(err, 'publish the redriven records');
              }
              await audit(
                producer,
                s.cfg,
                s.kafka,
                claimed.map((x) => ({
                  action: 'dlq.redrive' as const,
                  target: { topic: x.info.topic, partition: x.info.partition, offset: x.info.offset },
                  reason: o.reason ?? null,
                  detail: { to: targetOf(x) },
                })),
              );
              for (const x of claimed) {
                done.push({ ...row(x.info), state: 'redriven', result: `redriven to ${targetOf(x)}` });
              }
              bar?.update(Math.min(todo.length, i + chunk.length));
            }
          } finally {
            bar?.stop();
            await producer.disconnect();
          }
        } else {
          for (const x of todo) {
            done.push({ ...row(x.info), result: `would redrive to ${o.to ?? x.info.source!.topic}` });
          }
        }
        const report = [...done, ...skipped];
        await out(isJson(), report, () => formatTable(report));
      } finally {
        await s.close();
      }
    });

  selection(
    dlq
      .command('discard')
      .description('mark dead letters as deliberately not repaired, with a reason; list hides them'),
  )
    .requiredOption('--reason <text>', 'why (kept with the state and on the audit topic)')
    .action(async (o: SelectOpts & { reason: string }) => {
      const f = filterOf(o);
      if (o.reason.trim().length < 5) {
        throw new HubError('HUB_INPUT_INVALID', '--reason must say why (at least 5 characters)');
      }
      const s = open();
      try {
        const topics = await dlqTopics(s, o.topic);
        const found = (await collect(s, topics)).filter((x) => matches(x.info, f));
        checkAtFound(f, found);
        const report: Record<string, unknown>[] = [];
        const audited: AuditEntry[] = [];
        for (const x of found) {
          if (x.info.state !== 'open') {
            report.push({ ...row(x.info), result: `skipped: already ${x.info.state}` });
            continue;
          }
          const mine = await claim(s.db, s.schema, x.info, {
            state: 'discarded',
            reason: o.reason,
            actor: actor(s.cfg),
            target_topic: null,
          }).catch(dbUnavailable);
          report.push({
            ...row(x.info),
            state: mine ? 'discarded' : x.info.state,
            result: mine ? 'discarded' : 'skipped: handled meanwhile',
          });
          if (mine) {
            audited.push({
              action: 'dlq.discard',
              target: { topic: x.info.topic, partition: x.info.partition, offset: x.info.offset },
              reason: o.reason,
            });
          }
        }
        if (audited.length > 0) {
          const producer = createEventProducer({
            kafka: s.kafka,
            codec: createEventCodec(createRegistryClient(s.cfg.SCHEMA_REGISTRY_URL)),
            retries: 3,
          });
          await producer.connect().catch(kafkaUnavailable('connect to Kafka'));
          try {
            await audit(producer, s.cfg, s.kafka, audited);
          } finally {
            await producer.disconnect();
          }
        }
        await out(isJson(), report, () => formatTable(report));
      } finally {
        await s.close();
      }
    });
}

function kafkaUnavailableErr(err: unknown, what: string): HubError {
  return isHubError(err) ? err : new HubError('HUB_KAFKA_UNAVAILABLE', `could not ${what}`, { cause: err });
}

function checkAtFound(f: DlqFilter, found: readonly { info: DeadLetterInfo }[]): void {
  if (!f.at) return;
  const have = new Set(found.map((x) => `${x.info.partition}:${x.info.offset}`));
  const missing = f.at.filter((a) => !have.has(a));
  if (missing.length > 0) {
    throw new HubError(
      'HUB_NOT_FOUND',
      `no dead letter at ${missing.join(', ')}; run \`hub dlq list --all\` to see partition:offset values`,
    );
  }
}

async function decodePayload(cfg: DlqEnv, rec: ScannedRecord): Promise<unknown> {
  const v = rec.value;
  if (!v) return null;
  if (v.length > 5 && v[0] === 0) {
    try {
      const codec = createEventCodec(createRegistryClient(cfg.SCHEMA_REGISTRY_URL));
      return await codec.decode(v);
    } catch (err) {
      return {
        undecodable: isHubError(err) ? err.code : 'HUB_EVENT_UNDECODABLE',
        base64: v.toString('base64'),
      };
    }
  }
  const text = v.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // HL7 v2 uses CR between segments; show one per line.
    return text.split('\r').filter(Boolean);
  }
}
