/**
 * `hub dlq …`: dead letters across every DLQ topic. An edge like main.ts:
 * reads config, opens connections, parses options and prints. Reading the
 * headers is libs/kafka/dlq.ts; the state table, the claim protocol and the
 * audit trail of every action are libs/kafka/dlq-ops.ts (see its decisions
 * and docs/runbook.md).
 */
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { hostname, userInfo } from 'node:os';
import { AUDIT_TOPIC } from '../libs/audit/topic.js';
import { loadConfig, schemaNameEnv, topicNamer, z } from '../libs/config/index.js';
import { assertSqlIdentifier, type Knex } from '../libs/db/index.js';
import { HubError, isHubError } from '../libs/errors/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import { listTopics } from '../libs/kafka/admin.js';
import type { KafkaClient } from '../libs/kafka/client.js';
import { dlqTopicsOf, matches, safeHeaders, type DlqFilter } from '../libs/kafka/dlq.js';
import {
  REDRIVE_CHUNK,
  auditEntryFor,
  collectDeadLetters,
  createDlqAuditTrail,
  decodeDeadLetterValue,
  discardDeadLetters,
  findDeadLetter,
  redriveDeadLetters,
  type DiscardOutcome,
  type DlqActionDeps,
  type FoundDeadLetter,
  type ListedDeadLetter,
  type Operator,
  type RedriveOutcome,
} from '../libs/kafka/dlq-ops.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { cliDb, cliKafka, cliRegistry, commonEnvSchema } from './env.js';
import { formatTable, isJsonOutput, printAll, toJson } from './output.js';

const dlqEnv = commonEnvSchema.extend({
  HUB_OPS_SCHEMA: schemaNameEnv('hub_ops'),
  /** Who is acting, for the audit trail; the OS user by default. */
  HUB_OPERATOR: z.string().min(1).optional(),
  /** The audit topic, as the API's AUDIT_TOPIC; default hub.audit.v1 with the topic suffix. */
  AUDIT_TOPIC: z.string().optional(),
});
type DlqEnv = z.infer<typeof dlqEnv>;

function operator(cfg: DlqEnv): Operator {
  let name = cfg.HUB_OPERATOR;
  if (!name) {
    try {
      name = userInfo().username;
    } catch {
      name = 'unknown';
    }
  }
  return { name, host: hostname() };
}

function kafkaUnavailable(what: string) {
  return (err: unknown): never => {
    throw isHubError(err) ? err : new HubError('HUB_KAFKA_UNAVAILABLE', `could not ${what}`, { cause: err });
  };
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
  const kafka = cliKafka(cfg, 'hub-cli-dlq');
  const db = cliDb(cfg, { min: 0, max: 2 });
  return {
    cfg,
    kafka,
    db,
    schema: assertSqlIdentifier(cfg.HUB_OPS_SCHEMA),
    close: () => db.destroy(),
  };
}

/** Runs `fn` on a fresh session, closing it whatever happens. */
async function withSession<T>(fn: (s: Session) => Promise<T>): Promise<T> {
  const s = open();
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** Runs `fn` with a connected producer and the audit trail that writes through it. */
async function withActionDeps<T>(s: Session, fn: (deps: DlqActionDeps) => Promise<T>): Promise<T> {
  const producer = createEventProducer({
    kafka: s.kafka,
    codec: createEventCodec(cliRegistry(s.cfg)),
    retries: 3,
  });
  await producer.connect().catch(kafkaUnavailable('connect to Kafka'));
  try {
    const who = operator(s.cfg);
    const audit = createDlqAuditTrail({
      kafka: s.kafka,
      producer,
      topic: s.cfg.AUDIT_TOPIC ?? topicNamer(s.cfg.HUB_TOPIC_SUFFIX)(AUDIT_TOPIC),
      operator: who,
    });
    return await fn({ kafka: s.kafka, db: s.db, schema: s.schema, producer, audit, operator: who });
  } finally {
    await producer.disconnect();
  }
}

async function dlqTopics(s: Session, only?: string): Promise<string[]> {
  const all = await listTopics(s.kafka).catch(kafkaUnavailable('list topics'));
  if (only !== undefined) {
    if (!all.includes(only)) {
      throw new HubError('HUB_NOT_FOUND', `no topic ${only}; run \`hub dlq list\` to see the DLQ topics`);
    }
    return [only];
  }
  return dlqTopicsOf(all, s.cfg.HUB_TOPIC_SUFFIX);
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

function checkAtFound(f: DlqFilter, found: readonly FoundDeadLetter[]): void {
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

/** The dead letters a redrive or discard selected; `--at` values that match none are an error. */
async function selected(s: Session, o: SelectOpts, f: DlqFilter): Promise<FoundDeadLetter[]> {
  const topics = await dlqTopics(s, o.topic);
  const found = (await collectDeadLetters(s, topics)).filter((x) => matches(x.info, f));
  checkAtFound(f, found);
  return found;
}

// ---------------------------------------------------------------- list

interface ListOpts {
  topic?: string;
  consumer?: string;
  reasonCode?: string;
  all?: boolean;
}

async function runList(json: boolean, o: ListOpts): Promise<void> {
  await withSession(async (s) => {
    const topics = await dlqTopics(s, o.topic);
    const f: DlqFilter = {};
    if (o.consumer !== undefined) f.consumer = o.consumer;
    if (o.reasonCode !== undefined) f.reasonCode = o.reasonCode;
    const all = (await collectDeadLetters(s, topics)).map((x) => x.info).filter((d) => matches(d, f));
    const shown = o.all ? all : all.filter((d) => d.state === 'open');
    await printAll(json, shown, () => {
      const hidden = all.length - shown.length;
      return (
        formatTable(shown.map(row)) +
        `\n${shown.length} dead letter(s) on ${topics.length} topic(s)` +
        (hidden > 0 ? `; ${hidden} redriven/discarded hidden (--all shows them)` : '')
      );
    });
  });
}

function registerList(dlq: Command, json: () => boolean): void {
  dlq
    .command('list')
    .description('dead letters with reason, consumer, source and time (never payloads); open ones by default')
    .option('--topic <topic>', 'one DLQ topic (default: every *.dlq.* topic)')
    .option('--consumer <name>', 'only this consumer (group)')
    .option('--reason-code <code>', 'only this reason code')
    .option('--all', 'include redriven and discarded ones')
    .action((o: ListOpts) => runList(json(), o));
}

// ---------------------------------------------------------------- show

interface ShowOpts {
  includePhi?: boolean;
  reason?: string;
}

function checkShowArgs(partitionArg: string, offsetArg: string, o: ShowOpts): void {
  if (!/^\d+$/.test(partitionArg) || !/^\d+$/.test(offsetArg)) {
    throw new HubError('HUB_INPUT_INVALID', 'partition and offset are numbers, as `hub dlq list` shows them');
  }
  if (o.includePhi && (o.reason === undefined || o.reason.trim().length < 5)) {
    throw new HubError(
      'HUB_INPUT_INVALID',
      '--include-phi needs --reason "<why, e.g. the incident or ticket>" (at least 5 characters); the access is audited',
    );
  }
}

function showText(result: Record<string, unknown>): string {
  const lines = Object.entries(result)
    .filter(([k]) => k !== 'headers' && k !== 'payload')
    .map(([k, v]) => `${k.padEnd(12)} ${v === null ? '' : typeof v === 'string' ? v : toJson(v)}`);
  lines.push('headers:');
  for (const [k, v] of Object.entries(result['headers'] as Record<string, string>))
    lines.push(`  ${k}: ${v}`);
  if ('payload' in result) lines.push('payload (PHI, access audited):', toJson(result['payload']));
  else lines.push('payload: not shown (use --include-phi --reason "..."; the access is audited)');
  return lines.join('\n');
}

async function runShow(json: boolean, topic: string, partitionArg: string, offsetArg: string, o: ShowOpts) {
  checkShowArgs(partitionArg, offsetArg, o);
  const partition = Number(partitionArg);
  await withSession(async (s) => {
    await dlqTopics(s, topic);
    const found = await findDeadLetter(s, topic, partition, BigInt(offsetArg));
    if (!found) {
      throw new HubError(
        'HUB_NOT_FOUND',
        `no record at ${topic}/${partition}/${offsetArg}; run \`hub dlq list --topic ${topic}\``,
      );
    }
    const { rec, info, stateBy } = found;
    const result: Record<string, unknown> = {
      ...info,
      stateBy,
      headers: safeHeaders(rec.headers),
      valueBytes: rec.value?.length ?? 0,
    };
    if (o.includePhi) {
      // Recorded first: if the audit write fails, nothing is shown.
      await withActionDeps(s, (deps) =>
        deps.audit.record([auditEntryFor(found, 'dlq.show.include-phi', o.reason ?? null)]),
      );
      result['payload'] = await decodeDeadLetterValue(createEventCodec(cliRegistry(s.cfg)), rec);
    }
    await printAll(json, result, () => showText(result));
  });
}

function registerShow(dlq: Command, json: () => boolean): void {
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
    .action((topic: string, partition: string, offset: string, o: ShowOpts) =>
      runShow(json(), topic, partition, offset, o),
    );
}

// ---------------------------------------------------------------- redrive

interface RedriveOpts extends SelectOpts {
  to?: string;
  reason?: string;
  dryRun?: boolean;
}

function redriveRow(x: RedriveOutcome): Record<string, unknown> {
  return x.result === 'redriven'
    ? { ...row(x.d.info), state: 'redriven', result: `redriven to ${x.to}` }
    : { ...row(x.d.info), result: 'skipped: handled meanwhile' };
}

async function redriveWithProgress(
  s: Session,
  json: boolean,
  todo: readonly FoundDeadLetter[],
  o: RedriveOpts,
): Promise<RedriveOutcome[]> {
  const bar =
    !json && process.stderr.isTTY && todo.length > REDRIVE_CHUNK
      ? new SingleBar({
          format: 'redrive |{bar}| {percentage}% {value}/{total} | ETA {eta_formatted}',
          stream: process.stderr,
          hideCursor: true,
        })
      : null;
  bar?.start(todo.length, 0);
  try {
    return await withActionDeps(s, (deps) =>
      redriveDeadLetters(deps, todo, {
        ...(o.to !== undefined ? { to: o.to } : {}),
        reason: o.reason ?? null,
        onProgress: (n) => bar?.update(n),
      }),
    );
  } finally {
    bar?.stop();
  }
}

async function runRedrive(json: boolean, o: RedriveOpts): Promise<void> {
  const f = filterOf(o);
  await withSession(async (s) => {
    const found = await selected(s, o, f);
    const skipped = found
      .filter((x) => x.info.state !== 'open' || !x.info.redrivable)
      .map((x) => ({
        ...row(x.info),
        result: x.info.state !== 'open' ? `skipped: already ${x.info.state}` : 'skipped: not redrivable',
      }));
    const todo = found.filter((x) => x.info.state === 'open' && x.info.redrivable);
    let done: Record<string, unknown>[];
    if (!o.dryRun && todo.length > 0) {
      done = (await redriveWithProgress(s, json, todo, o)).map(redriveRow);
    } else {
      done = todo.map((x) => ({
        ...row(x.info),
        result: `would redrive to ${o.to ?? x.info.source?.topic ?? ''}`,
      }));
    }
    const report = [...done, ...skipped];
    await printAll(json, report, () => formatTable(report));
  });
}

// ---------------------------------------------------------------- discard

interface DiscardOpts extends SelectOpts {
  reason: string;
}

function discardRow(x: DiscardOutcome): Record<string, unknown> {
  if (x.result === 'not-open') return { ...row(x.d.info), result: `skipped: already ${x.d.info.state}` };
  return x.result === 'discarded'
    ? { ...row(x.d.info), state: 'discarded', result: 'discarded' }
    : { ...row(x.d.info), state: x.d.info.state, result: 'skipped: handled meanwhile' };
}

async function runDiscard(json: boolean, o: DiscardOpts): Promise<void> {
  const f = filterOf(o);
  if (o.reason.trim().length < 5) {
    throw new HubError('HUB_INPUT_INVALID', '--reason must say why (at least 5 characters)');
  }
  await withSession(async (s) => {
    const found = await selected(s, o, f);
    // Nothing open: nothing to claim or audit, so no producer either.
    const outcomes = found.some((x) => x.info.state === 'open')
      ? await withActionDeps(s, (deps) => discardDeadLetters(deps, found, o.reason))
      : found.map((d): DiscardOutcome => ({ d, result: 'not-open' }));
    const report = outcomes.map(discardRow);
    await printAll(json, report, () => formatTable(report));
  });
}

// ---------------------------------------------------------------- registration

/** Options that select dead letters for redrive and discard. */
function withSelection(c: Command): Command {
  return c
    .option('--topic <topic>', 'one DLQ topic (default: every *.dlq.* topic)')
    .option(
      '--at <partition:offset...>',
      'specific dead letters (with --topic), as `hub dlq list` shows them',
    )
    .option('--consumer <name>', 'dead letters of one consumer (group)')
    .option('--reason-code <code>', 'dead letters with one reason code')
    .option('--all', 'every open dead letter matching the other options');
}

function registerRedrive(dlq: Command, json: () => boolean): void {
  withSelection(
    dlq
      .command('redrive')
      .description(
        're-publish dead letters to their source topic after a fix (consumers de-duplicate by event id); marks them redriven',
      ),
  )
    .option('--to <topic>', 'publish here instead of the source topic (e.g. a consumer-private retry topic)')
    .option('--reason <text>', 'note kept with the state and the audit line')
    .option('--dry-run', 'show what would be redriven, publish nothing')
    .action((o: RedriveOpts) => runRedrive(json(), o));
}

function registerDiscard(dlq: Command, json: () => boolean): void {
  withSelection(
    dlq
      .command('discard')
      .description('mark dead letters as deliberately not repaired, with a reason; list hides them'),
  )
    .requiredOption('--reason <text>', 'why (kept with the state and on the audit topic)')
    .action((o: DiscardOpts) => runDiscard(json(), o));
}

export function registerDlqCommands(program: Command): void {
  const json = () => isJsonOutput(program);
  const dlq = program
    .command('dlq')
    .description('dead letters on every DLQ topic: list, show, redrive after a fix, discard');
  registerList(dlq, json);
  registerShow(dlq, json);
  registerRedrive(dlq, json);
  registerDiscard(dlq, json);
}
