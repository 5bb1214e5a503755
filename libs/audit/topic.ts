import type { AuditEvent } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { toHubError } from '../errors/index.js';
import { ensureTopics } from '../kafka/admin.js';
import type { KafkaClient } from '../kafka/client.js';
import { FAST_REJOIN, watchGroupMembership } from '../kafka/membership.js';
import type { EventProducer, RawRecord } from '../kafka/producer.js';
import type { Logger } from '../telemetry/logger.js';
import { auditRecordOf } from './event.js';
import { appendAudit, dataErrorCode } from './store.js';

/**
 * The audit topic carries FHIR AuditEvent resources as JSON (not Avro, and
 * not in the clinical catalog): the resource is a published standard, its
 * readers are security tools rather than projections, and one record type
 * needs no registry. Keyed by patient id (or "-"), one partition so that
 * the log has a single order; retention forever, like the event topics.
 */
export const AUDIT_TOPIC = 'hub.audit.v1';

export async function ensureAuditTopic(kafka: KafkaClient, topic: string): Promise<void> {
  await ensureTopics(kafka, [{ name: topic, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
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

/**
 * Appends a batch in one transaction. A record Postgres can never store
 * (a data error, SQLSTATE class 22) fails the whole batch: then each event is
 * appended alone, on the chain's current head, and the ones refused as data
 * are rejected; any other failure is thrown for the batch to be retried.
 */
async function appendSkippingDataErrors(
  events: readonly OffsetEvent[],
  append: (es: readonly AuditEvent[]) => Promise<number>,
  reject: (offset: string, reason: string) => void,
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

/**
 * Consumes the audit topic into the chained table. Redelivery is harmless
 * (append skips known ids); a record that is not an AuditEvent, or that
 * Postgres can never store (a NUL character, any other SQLSTATE class 22
 * data error), is counted and skipped, never written into the chain, so one
 * poison record cannot stop the table. Other failures throw: the batch is
 * fetched again.
 */
export function createAuditProjector(opts: {
  kafka: KafkaClient;
  db: Knex;
  schema: string;
  topic: string;
  groupId: string;
  logger: Logger;
  onAppended?(n: number): void;
  onRejected?(): void;
}): AuditProjector {
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
        // Committed group offsets are this consumer's resume point; a record
        // delivered again after a crash is skipped by its audit id.
        autoCommit: true,
        autoCommitInterval: 1000,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat }) => {
          const reject = (offset: string, reason: string): void => {
            opts.onRejected?.();
            // The reason code and where it is, never the content: it may be PHI.
            log.warn({ partition: batch.partition, offset, reason }, 'audit record rejected, skipped');
          };
          const events: OffsetEvent[] = [];
          for (const m of batch.messages) {
            let parsed: unknown = null;
            try {
              parsed = JSON.parse(m.value?.toString('utf8') ?? 'null');
            } catch {
              parsed = null;
            }
            const r = auditRecordOf(parsed);
            if ('event' in r) events.push({ event: r.event, offset: m.offset });
            else reject(m.offset, r.rejected);
          }
          const append = (es: readonly AuditEvent[]): Promise<number> =>
            opts.db.transaction((trx) => appendAudit(trx, opts.schema, es));
          try {
            const n = await appendSkippingDataErrors(events, append, reject, heartbeat, log);
            opts.onAppended?.(n);
          } catch (err) {
            log.error({ code: toHubError(err).code }, 'could not append audit batch');
            throw err;
          }
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
