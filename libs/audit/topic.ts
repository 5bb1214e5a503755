import type { AuditEvent } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { toHubError } from '../errors/index.js';
import { ensureTopics } from '../kafka/admin.js';
import { dlqTopicFor } from '../kafka/dlq.js';
import type { KafkaClient } from '../kafka/client.js';
import { FAST_REJOIN, watchGroupMembership } from '../kafka/membership.js';
import type { KafkaMessage } from 'kafkajs';
import type { EventProducer, RawRecord } from '../kafka/producer.js';
import type { Logger } from '../telemetry/logger.js';
import { auditRecordOf, type AuditRejectReason } from './event.js';
import { appendAudit, dataErrorCode } from './store.js';

/**
 * The audit topic carries FHIR AuditEvent resources as JSON (not Avro, and
 * not in the clinical catalog): the resource is a published standard, its
 * readers are security tools rather than projections, and one record type
 * needs no registry. Keyed by patient id (or "-"), one partition so that
 * the log has a single order; retention forever, like the event topics.
 */
export const AUDIT_TOPIC = 'hub.audit.v1';

/**
 * The audit consumer's dead letters, named like every consumer's
 * (`hub.dlq.audit`, then the deployment's topic naming): records the
 * projector can never append, with the reason in headers. Kept forever like
 * the audit topic: `hub audit verify` reads them to explain the table's gaps.
 */
export const AUDIT_DLQ_CONSUMER = 'audit';

export function auditDlqTopic(topicFor: (catalogName: string) => string = (n) => n): string {
  return dlqTopicFor(AUDIT_DLQ_CONSUMER, topicFor);
}

/** The consumer group of the audit projector that fills the audit table in `schema` (the API's default). */
export function auditProjectorGroup(schema: string): string {
  return `hub.audit.projector.${schema}`;
}

/** The audit topic and, when given, its dead-letter topic. */
export async function ensureAuditTopic(kafka: KafkaClient, topic: string, dlqTopic?: string): Promise<void> {
  await ensureTopics(
    kafka,
    [topic, ...(dlqTopic ? [dlqTopic] : [])].map((name) => ({
      name,
      partitions: 1,
      retentionMs: -1,
    })),
  );
}

export interface AuditSink {
  /** Resolves once the broker has acknowledged (acks=all): an API answers only after that. */
  record(event: AuditEvent): Promise<void>;
  /** Many events in one produce request, in order; resolves once all are acknowledged. */
  recordAll(events: readonly AuditEvent[]): Promise<void>;
}

/** The record an AuditEvent travels as: keyed by its patient (or "-"), JSON, FHIR media type. Pure. */
export function auditRecord(topic: string, event: AuditEvent): RawRecord {
  const patient = event.entity?.find((e) => e.what?.reference?.startsWith('Patient/'))?.what?.reference;
  return {
    topic,
    key: patient ? patient.slice('Patient/'.length) : '-',
    value: Buffer.from(JSON.stringify(event), 'utf8'),
    headers: { 'content-type': 'application/fhir+json', 'hub-audit-id': event.id ?? '' },
  };
}

export function createAuditSink(producer: EventProducer, topic: string): AuditSink {
  return {
    async record(event) {
      await producer.publishRaw([auditRecord(topic, event)]);
    },
    async recordAll(events) {
      if (events.length === 0) return;
      await producer.publishRaw(events.map((e) => auditRecord(topic, e)));
    },
  };
}

export interface AuditProjector {
  start(): Promise<void>;
  stop(): Promise<void>;
  lastProgressAt(): number;
}

interface OffsetEvent {
  event: AuditEvent;
  offset: string;
}

/** Why a record went to the audit DLQ: a shape reason, or the SQLSTATE Postgres refused it with. */
export type AuditDeadLetterReason = AuditRejectReason | `sqlstate-${string}`;

const REASON_TEXT: Record<AuditRejectReason, string> = {
  'not-an-audit-event': 'not a FHIR AuditEvent with an id, recorded time and agents',
  'unstorable-text': 'holds U+0000 or a lone surrogate, which Postgres text cannot store',
};

/** A uuid-shaped AuditEvent id of a record's value, else null: ids are not PHI, anything else may be. */
export function auditIdOf(value: unknown): string | null {
  const id = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined;
  return typeof id === 'string' && /^[0-9a-f-]{36}$/.test(id) ? id : null;
}

/**
 * The dead letter of an audit record: its key and value as they were, the
 * consumer runner's `hub-dlq-*` headers (so `hub dlq list` shows it and
 * `hub audit verify` finds it by source offset) and its audit id when it has
 * a well-formed one. Pure.
 */
export function auditDeadLetter(
  m: Pick<KafkaMessage, 'key' | 'value' | 'headers' | 'offset'>,
  at: { topic: string; partition: number; dlqTopic: string; groupId: string },
  reason: AuditDeadLetterReason,
  auditId: string | null,
  now: Date,
): RawRecord {
  const headers: Record<string, string | Buffer> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined && k !== 'hub-audit-id') headers[k] = first;
  }
  const text = reason.startsWith('sqlstate-')
    ? `Postgres refused it as data (${reason.slice('sqlstate-'.length)})`
    : REASON_TEXT[reason as AuditRejectReason];
  return {
    topic: at.dlqTopic,
    key: m.key ?? null,
    value: m.value ?? null,
    headers: {
      ...headers,
      ...(auditId ? { 'hub-audit-id': auditId } : {}),
      'hub-dlq-reason-code': reason,
      'hub-dlq-reason': `audit record cannot be appended: ${text}`,
      'hub-dlq-consumer': at.groupId,
      'hub-dlq-source-topic': at.topic,
      'hub-dlq-source-partition': String(at.partition),
      'hub-dlq-source-offset': m.offset,
      'hub-dlq-failed-at': now.toISOString(),
    },
  };
}

/**
 * Appends a batch in one transaction. A record Postgres can never store
 * (a data error, SQLSTATE class 22) fails the whole batch: then each event is
 * appended alone, on the chain's current head, and the ones refused as data
 * are rejected; any other failure is thrown for the batch to be retried.
 */
async function appendSkippingDataErrors(
  events: readonly OffsetEvent[],
  append: (es: readonly AuditEvent[]) => Promise<number>,
  reject: (offset: string, reason: AuditDeadLetterReason) => void,
  heartbeat: () => Promise<void>,
  log: Logger,
): Promise<number> {
  try {
    return await append(events.map((e) => e.event));
  } catch (err) {
    if (dataErrorCode(err) === null) throw err;
    log.warn({ code: toHubError(err).code }, 'audit batch refused as data, appending one by one');
  }
  let n = 0;
  for (const e of events) {
    try {
      n += await append([e.event]);
    } catch (one) {
      const code = dataErrorCode(one);
      if (code === null) throw one;
      reject(e.offset, `sqlstate-${code}`);
    }
    await heartbeat();
  }
  return n;
}

export interface AuditProjectorOptions {
  kafka: KafkaClient;
  db: Knex;
  schema: string;
  topic: string;
  groupId: string;
  /** Where records that can never be appended go (AUDIT_DLQ_CONSUMER). */
  dlqTopic: string;
  /** Writes the dead letters (raw records, acks=all). */
  producer: Pick<EventProducer, 'publishRaw'>;
  /** The chain key (key.ts): rows are keyed when given. */
  chainKey?: Buffer | null;
  logger: Logger;
  onAppended?(n: number): void;
  onRejected?(reason: AuditDeadLetterReason): void;
}

function parseValue(m: KafkaMessage): unknown {
  try {
    return JSON.parse(m.value?.toString('utf8') ?? 'null') as unknown;
  } catch {
    return null;
  }
}

/**
 * One fetched batch: the storable events appended, every other record
 * dead-lettered (acknowledged) before the offsets move past it, so a record
 * is always in the table, on the DLQ, or still ahead of the group.
 */
async function projectBatch(
  opts: AuditProjectorOptions,
  log: Logger,
  batch: { topic: string; partition: number; messages: KafkaMessage[] },
  heartbeat: () => Promise<void>,
): Promise<void> {
  const byOffset = new Map(batch.messages.map((m) => [m.offset, m]));
  const ids = new Map<string, string | null>();
  const dead: RawRecord[] = [];
  const at = {
    topic: batch.topic,
    partition: batch.partition,
    dlqTopic: opts.dlqTopic,
    groupId: opts.groupId,
  };
  const reject = (offset: string, reason: AuditDeadLetterReason): void => {
    const m = byOffset.get(offset);
    if (!m) return;
    opts.onRejected?.(reason);
    // The reason code and where it is, never the content: it may be PHI.
    log.warn({ partition: batch.partition, offset, reason }, 'audit record dead-lettered');
    dead.push(auditDeadLetter(m, at, reason, ids.get(offset) ?? null, new Date()));
  };
  const events: OffsetEvent[] = [];
  for (const m of batch.messages) {
    const parsed = parseValue(m);
    ids.set(m.offset, auditIdOf(parsed));
    const r = auditRecordOf(parsed);
    if ('event' in r) events.push({ event: r.event, offset: m.offset });
    else reject(m.offset, r.rejected);
  }
  const key = opts.chainKey ?? null;
  const append = (es: readonly AuditEvent[]): Promise<number> =>
    opts.db.transaction((trx) => appendAudit(trx, opts.schema, es, key));
  try {
    const n = await appendSkippingDataErrors(events, append, reject, heartbeat, log);
    if (dead.length > 0) await opts.producer.publishRaw(dead);
    opts.onAppended?.(n);
  } catch (err) {
    log.error({ code: toHubError(err).code }, 'could not append audit batch');
    throw err;
  }
}

/**
 * Consumes the audit topic into the chained table. Redelivery is harmless
 * (append skips known ids); a record that is not an AuditEvent, or that
 * Postgres can never store (a NUL character, any other SQLSTATE class 22
 * data error), goes to the audit DLQ with its reason and is never written
 * into the chain, so one poison record cannot stop the table. Other failures
 * throw: the batch is fetched again.
 */
export function createAuditProjector(opts: AuditProjectorOptions): AuditProjector {
  const log = opts.logger.child({ component: 'audit-projector', groupId: opts.groupId });
  let consumer: ReturnType<KafkaClient['consumer']> | null = null;
  let membership: { stop(): void } | null = null;
  let progressAt = Date.now();
  const projector: AuditProjector = {
    async start() {
      const c = opts.kafka.consumer({
        groupId: opts.groupId,
        allowAutoTopicCreation: false,
        maxWaitTimeInMs: 100,
        // A restarted API rejoins in ~6 s, not after its killed predecessor's 30 s session.
        ...FAST_REJOIN,
      });
      consumer = c;
      membership = watchGroupMembership(c, (seconds) => {
        log.warn({ secondsWithoutHeartbeat: seconds }, 'the group lost this member; reconnecting');
        void projector
          .stop()
          .then(() => projector.start())
          .catch((err: unknown) => log.error({ code: toHubError(err).code }, 'could not reconnect'));
      });
      await c.connect();
      await c.subscribe({ topic: opts.topic, fromBeginning: true });
      c.on(c.events.FETCH, () => {
        progressAt = Date.now();
      });
      await c.run({
        // Committed group offsets are this consumer's resume point, and what
        // the audit lag is measured against; a record delivered again after a
        // crash is skipped by its audit id.
        autoCommit: true,
        autoCommitInterval: 1000,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat }) => {
          await projectBatch(opts, log, batch, heartbeat);
          resolveOffset(batch.lastOffset());
          progressAt = Date.now();
          await commitOffsetsIfNecessary();
          await heartbeat();
        },
      });
    },
    async stop() {
      membership?.stop();
      membership = null;
      const c = consumer;
      consumer = null;
      if (c) await c.disconnect();
    },
    lastProgressAt: () => progressAt,
  };
  return projector;
}
