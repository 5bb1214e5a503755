/**
 * `hub subscriptions …`: outbound subscriptions (issue 20) for the
 * interface team. An edge like main.ts: reads config, opens Postgres (the
 * delivery schema, libs/delivery/store.ts) and Kafka (the audit topic),
 * parses options and prints. Every change is an operator action on the
 * audit trail; the delivery service picks changes up within a second.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { buildOperatorAuditEvent } from '../libs/audit/event.js';
import { AUDIT_TOPIC, createAuditSink, ensureAuditTopic } from '../libs/audit/topic.js';
import { loadConfig, schemaNameEnv, topicNamer, z } from '../libs/config/index.js';
import { assertSqlIdentifier, type Knex } from '../libs/db/index.js';
import { generateSecret, parseSubscription } from '../libs/delivery/input.js';
import { redacted, type Subscription, type SubscriptionInput } from '../libs/delivery/model.js';
import {
  DELIVERY_SCHEMA,
  createSubscription,
  deleteSubscription,
  deliveryStatus,
  getSubscription,
  listDeadLetters,
  listSubscriptions,
  migrateDelivery,
  requestRedrive,
  requestReplay,
  setSubscriptionState,
} from '../libs/delivery/store.js';
import { HubError } from '../libs/errors/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { cliDb, cliKafka, cliRegistry, commonEnvSchema } from './env.js';
import { formatTable, isJsonOutput, printAll } from './output.js';

const subscriptionsEnv = commonEnvSchema.extend({
  DELIVERY_SCHEMA: schemaNameEnv(DELIVERY_SCHEMA),
  /** Who is acting, for the audit trail; the OS user by default. */
  HUB_OPERATOR: z.string().min(1).optional(),
  AUDIT_TOPIC: z.string().optional(),
});
type SubscriptionsEnv = z.infer<typeof subscriptionsEnv>;

interface Session {
  cfg: SubscriptionsEnv;
  db: Knex;
  schema: string;
  /** Records an operator action on the audit trail (acks=all) before the command reports success. */
  audit(
    action: string,
    target: string,
    detail?: Record<string, string>,
    patientId?: string | null,
  ): Promise<void>;
}

function operatorName(cfg: SubscriptionsEnv): string {
  if (cfg.HUB_OPERATOR) return cfg.HUB_OPERATOR;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

async function withSession<T>(fn: (s: Session) => Promise<T>): Promise<T> {
  const cfg = loadConfig(subscriptionsEnv);
  const db = cliDb(cfg, { min: 0, max: 2 });
  const kafka = cliKafka(cfg, 'hub-cli-subscriptions');
  const producer = createEventProducer({ kafka, codec: createEventCodec(cliRegistry(cfg)), retries: 3 });
  const topic = cfg.AUDIT_TOPIC ?? topicNamer(cfg.HUB_TOPIC_SUFFIX)(AUDIT_TOPIC);
  let connected = false;
  try {
    const schema = assertSqlIdentifier(cfg.DELIVERY_SCHEMA);
    await migrateDelivery(db, schema);
    const session: Session = {
      cfg,
      db,
      schema,
      async audit(action, target, detail = {}, patientId = null) {
        if (!connected) {
          await producer.connect();
          await ensureAuditTopic(kafka, topic);
          connected = true;
        }
        await createAuditSink(producer, topic).record(
          buildOperatorAuditEvent({
            id: randomUUID(),
            recorded: Date.now(),
            action: `subscription.${action}`,
            crud: action === 'create' ? 'E' : 'U',
            target: `subscription/${target}`,
            patientId,
            operator: operatorName(cfg),
            host: hostname(),
            reason: null,
            detail,
            observer: 'hub-cli',
          }),
        );
      },
    };
    return await fn(session);
  } finally {
    if (connected) await producer.disconnect().catch(() => undefined);
    await db.destroy();
  }
}

async function found(s: Session, id: string): Promise<Subscription> {
  const sub = await getSubscription(s.db, s.schema, id);
  if (!sub) throw new HubError('HUB_NOT_FOUND', `no subscription ${id}; run \`hub subscriptions list\``);
  return sub;
}

function row(sub: Subscription): Record<string, unknown> {
  const c = sub.channel;
  return {
    id: sub.id,
    name: sub.name,
    state: sub.state,
    channel: c.type,
    destination: c.type === 'mllp' ? `${c.host}:${c.port}` : new URL(c.endpoint).host,
    start: sub.start.from === 'time' ? sub.start.at : sub.start.from,
  };
}

const list = (v: string | undefined): string[] =>
  v
    ? v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : [];

interface CreateOpts {
  file?: string;
  name?: string;
  channel?: string;
  endpoint?: string;
  host?: string;
  port?: string;
  secret?: string;
  bearer?: string;
  topic?: string;
  payload?: string;
  hl7Version?: string;
  eventTypes?: string;
  resourceTypes?: string;
  facilities?: string;
  orderCodes?: string;
  patients?: string;
  from?: string;
}

function channelOf(o: CreateOpts): Record<string, unknown> {
  if (o.channel === 'webhook') {
    return {
      type: 'webhook',
      endpoint: o.endpoint,
      secret: o.secret ?? generateSecret(),
    };
  }
  if (o.channel === 'rest-hook') {
    return {
      type: 'rest-hook',
      endpoint: o.endpoint,
      topic: o.topic,
      ...(o.payload ? { payload: o.payload } : {}),
      auth: o.bearer ? { type: 'bearer', token: o.bearer } : { type: 'hmac', secret: o.secret },
    };
  }
  if (o.channel === 'mllp') {
    return {
      type: 'mllp',
      host: o.host,
      port: o.port === undefined ? undefined : Number(o.port),
      ...(o.hl7Version ? { version: o.hl7Version } : {}),
    };
  }
  throw new HubError('HUB_INPUT_INVALID', '--channel must be webhook, rest-hook or mllp (or give --file)');
}

function startOf(from: string | undefined): Record<string, unknown> {
  if (from === undefined || from === 'now') return { from: 'now' };
  if (from === 'beginning') return { from: 'beginning' };
  return { from: 'time', at: from };
}

/** The subscription the flags (or a JSON file of a SubscriptionInput) describe. */
async function inputOf(o: CreateOpts): Promise<SubscriptionInput> {
  if (o.file) {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(o.file, 'utf8'));
    } catch {
      throw new HubError('HUB_INPUT_INVALID', `--file ${o.file}: not a readable JSON file`);
    }
    const parsed = parseSubscription(raw);
    const c = parsed.channel;
    if (c.type === 'webhook' && !c.secret) c.secret = generateSecret();
    return parsed;
  }
  return parseSubscription({
    name: o.name,
    criteria: {
      eventTypes: list(o.eventTypes),
      resourceTypes: list(o.resourceTypes),
      facilities: list(o.facilities),
      orderCodes: list(o.orderCodes),
      patients: list(o.patients),
    },
    channel: channelOf(o),
    start: startOf(o.from),
  });
}

function registerCreate(sub: Command, json: () => boolean): void {
  sub
    .command('create')
    .description('create a subscription; a webhook secret is generated unless given, and shown once')
    .option(
      '--file <path>',
      'a JSON subscription (name, criteria, channel, start, retry): docs/subscriptions.md',
    )
    .option('--name <name>')
    .option('--channel <type>', 'webhook | rest-hook | mllp')
    .option('--endpoint <url>', 'webhook or rest-hook: https URL (http only to this machine)')
    .option('--host <host>', 'mllp: receiver host')
    .option('--port <port>', 'mllp: receiver port')
    .option('--secret <secret>', 'webhook / rest-hook HMAC secret (whsec_<base64>)')
    .option('--bearer <token>', 'rest-hook: bearer token sent as Authorization')
    .option('--topic <url>', 'rest-hook: SubscriptionTopic canonical URL')
    .option('--payload <content>', 'rest-hook: empty | id-only | full-resource')
    .option('--hl7-version <v>', 'mllp: MSH-12, default 2.5.1')
    .option('--event-types <list>', 'comma-separated event types (default: all)')
    .option('--resource-types <list>', 'comma-separated FHIR resource types (default: all)')
    .option('--facilities <list>', 'comma-separated sending facilities (MSH-4)')
    .option('--order-codes <list>', 'comma-separated order or report codes')
    .option('--patients <list>', 'comma-separated enterprise patient ids')
    .option('--from <start>', 'now (default) | beginning | an ISO 8601 time')
    .action(async (o: CreateOpts) => {
      const input = await inputOf(o);
      const created = await withSession(async (s) => {
        const made = await createSubscription(s.db, s.schema, input, { id: randomUUID(), now: new Date() });
        await s.audit('create', made.id, { channel: made.channel.type });
        return made;
      });
      // The generated secret is shown this once: the receiver needs it to check signatures.
      const shown = created.channel.type === 'webhook' ? created : redacted(created);
      await printAll(json(), shown, () =>
        [
          formatTable([row(created)]),
          ...(created.channel.type === 'webhook' ? [`secret: ${created.channel.secret ?? ''}`] : []),
        ].join('\n'),
      );
    });
}

function registerReadCommands(sub: Command, json: () => boolean): void {
  sub
    .command('list')
    .description('every subscription, with its state and channel')
    .action(async () => {
      const subs = await withSession((s) => listSubscriptions(s.db, s.schema));
      await printAll(json(), subs.map(redacted), () => formatTable(subs.map(row)));
    });
  sub
    .command('status <id>')
    .description("a subscription's delivery state: events delivered, last success, failure, dead letters")
    .action(async (id: string) => {
      const out = await withSession(async (s) => ({
        subscription: redacted(await found(s, id)),
        status: await deliveryStatus(s.db, s.schema, id),
      }));
      await printAll(json(), out, () => formatTable([{ ...row(out.subscription), ...out.status }]));
    });
  sub
    .command('dead-letters <id>')
    .description("a subscription's dead letters: the event, the reason code and the receiver's answer")
    .action(async (id: string) => {
      const rows = await withSession(async (s) => {
        await found(s, id);
        return listDeadLetters(s.db, s.schema, id);
      });
      await printAll(json(), rows, () => formatTable(rows.map(({ detail: _detail, ...r }) => r)));
    });
}

function registerChanges(sub: Command, json: () => boolean): void {
  const change = (name: string, description: string, run: (s: Session, id: string) => Promise<unknown>) =>
    sub
      .command(`${name} <id>`)
      .description(description)
      .action(async (id: string) => {
        const out = await withSession(async (s) => {
          await found(s, id);
          const result = await run(s, id);
          await s.audit(name, id);
          return result;
        });
        await printAll(json(), out, () => `${name}: ${id}`);
      });
  change('pause', 'stop delivering (offsets kept; resume continues where it stopped)', (s, id) =>
    setSubscriptionState(s.db, s.schema, id, 'paused', new Date()),
  );
  change('resume', 'deliver again from where it stopped', (s, id) =>
    setSubscriptionState(s.db, s.schema, id, 'active', new Date()),
  );
  change('delete', 'delete it with its offsets, state and dead letters', (s, id) =>
    deleteSubscription(s.db, s.schema, id),
  );
  sub
    .command('replay <id>')
    .description('deliver again every event since a time (log append time) to this subscriber only')
    .requiredOption('--from <time>', 'ISO 8601 time, e.g. 2026-12-01T00:00:00Z')
    .action(async (id: string, o: { from: string }) => {
      const from = new Date(o.from);
      if (Number.isNaN(from.getTime()) || !/\d{4}-\d{2}-\d{2}/.test(o.from)) {
        throw new HubError(
          'HUB_INPUT_INVALID',
          '--from: expected an ISO 8601 time, e.g. 2026-12-01T00:00:00Z',
        );
      }
      await withSession(async (s) => {
        await found(s, id);
        await requestReplay(s.db, s.schema, id, from, new Date());
        await s.audit('replay', id, { from: from.toISOString() });
      });
      await printAll(
        json(),
        { id, replayFrom: from.toISOString() },
        () => `replay: ${id} from ${from.toISOString()}`,
      );
    });
  sub
    .command('redrive <id>')
    .description("deliver a subscription's dead letters again (all, or --ids)")
    .option('--ids <list>', 'comma-separated dead-letter ids from `hub subscriptions dead-letters`')
    .action(async (id: string, o: { ids?: string }) => {
      const ids = o.ids ? list(o.ids) : undefined;
      const n = await withSession(async (s) => {
        await found(s, id);
        const marked = await requestRedrive(s.db, s.schema, id, new Date(), ids);
        await s.audit('redrive', id, { count: String(marked) });
        return marked;
      });
      await printAll(json(), { id, redrive: n }, () => `redrive: ${n} dead letter(s) of ${id} queued`);
    });
}

export function registerSubscriptionsCommands(program: Command): void {
  const json = () => isJsonOutput(program);
  const sub = program
    .command('subscriptions')
    .description('outbound subscriptions: create, list, status, pause, resume, replay, redrive, delete');
  registerCreate(sub, json);
  registerReadCommands(sub, json);
  registerChanges(sub, json);
}
