import { HubError, isHubError } from '../../../libs/errors/index.js';
import { ackCodesFor, buildAck, sniffMsh, type AckCode, type AckError } from '../../../libs/hl7/ack.js';
import { scanTopic, type ScannedRecord } from '../../../libs/kafka/scan.js';
import { clinicalTopics } from '../../../libs/projections/topics.js';
import type { ConsoleContext } from '../context.js';
import type { RecordAddress } from '../dlq/form.js';
import { appliedIn, type ReadModelState } from './applied.js';
import { existing, hitOf, messageTopics, receivedAtOf, scanByTime, type MessageHit } from './search.js';

/**
 * One message opened: its bytes, its ACK, the events it produced and the
 * read models that hold them. Everything is gathered first; the page audits
 * the view (with the events' patients) before any of it is sent.
 */

export interface ProducedEvent {
  type: string;
  eventId: string;
  patientId: string | null;
  topic: string;
  partition: number;
  offset: string;
  remapped: boolean;
}

export interface AckView {
  /** How the ACK shown was obtained: the adapter keeps no ACK bytes. */
  source: 'rebuilt' | 'dead-letter-headers';
  codes: AckCode[];
  /** The ACK as the adapter would have built it (MSH-7 and MSH-10 are this rebuild's, not the original's). */
  text: string;
  errorCode: string | null;
  errorLocation: string | null;
  errorMessage: string | null;
}

export interface MessageDetail {
  hit: MessageHit;
  raw: string;
  ack: AckView;
  events: ProducedEvent[];
  /** The window the events were looked for in (received time onwards). */
  eventWindowMs: number;
  readModels: ReadModelState[];
}

/** Events are looked for from the received time to this much later: a bounded scan. */
export const EVENT_WINDOW_MS = 10 * 60_000;

function kafkaUnavailable(what: string) {
  return (err: unknown): never => {
    throw isHubError(err) ? err : new HubError('HUB_KAFKA_UNAVAILABLE', `could not ${what}`, { cause: err });
  };
}

export type MessageAddress = RecordAddress;

async function readRecord(ctx: ConsoleContext, a: MessageAddress): Promise<ScannedRecord> {
  const t = messageTopics(ctx);
  if (a.topic !== t.raw && a.topic !== t.dlq) throw new HubError('HUB_NOT_FOUND', 'not an HL7 message topic');
  const recs = await scanTopic(ctx.kafka, a.topic, {
    range: (p) => (p === a.partition ? { from: a.offset, to: a.offset + 1n } : null),
  }).catch(kafkaUnavailable(`read ${a.topic}`));
  const rec = recs[0];
  if (!rec || rec.value === null) throw new HubError('HUB_NOT_FOUND', 'no message at that address');
  return rec;
}

/** The message's text as received (its declared charset when latin1), one segment per line. */
function rawText(rec: ScannedRecord): string {
  const bytes = rec.value ?? Buffer.alloc(0);
  const msh = sniffMsh(bytes);
  return bytes.toString(msh?.charset === 'latin1' ? 'latin1' : 'utf8').replace(/\r\n?/g, '\n');
}

/**
 * The ACK: the adapter sends it and keeps no copy, so it is rebuilt with
 * libs/hl7/ack.ts from the message's MSH and what became of it (accepted, or
 * the refusal's ACK and error codes from the dead letter's headers).
 */
export function ackOf(rec: ScannedRecord, outcome: MessageHit['outcome']): AckView {
  const msh = sniffMsh(rec.value ?? Buffer.alloc(0));
  const h = rec.headers;
  const ackCode = h['hl7-ack-code'];
  const refusedAs = ackCode === 'AE' ? 'content-error' : 'rejected';
  const codes = ackCodesFor(msh, outcome === 'accepted' ? 'accepted' : refusedAs);
  const errorCode = h['hl7-error-code'] ?? null;
  const error: AckError | undefined =
    outcome === 'refused' ? { hl7ErrorCode: errorCode ?? '207', severity: 'E' } : undefined;
  const text = codes
    .map((code) =>
      buildAck(msh, {
        code,
        ackControlId: 'REBUILT',
        now: receivedAtOf(rec),
        ...(error && code !== 'AA' && code !== 'CA' ? { error } : {}),
      }),
    )
    .join('\n\n')
    .replace(/\r/g, '\n');
  return {
    source: outcome === 'accepted' ? 'rebuilt' : 'dead-letter-headers',
    codes,
    text,
    errorCode,
    errorLocation: h['hl7-error-location'] || null,
    errorMessage: h['hub-error-message'] ?? null,
  };
}

/** The events whose `hl7-raw-id` header names this message, on every clinical topic, from its received time. */
async function producedEvents(
  ctx: ConsoleContext,
  rawId: string,
  receivedAt: number,
): Promise<ProducedEvent[]> {
  if (rawId === '') return [];
  const topics = await existing(ctx.kafka, clinicalTopics(ctx.settings.topic));
  const perTopic = await Promise.all(
    topics.map((t) => scanByTime(ctx.kafka, t, receivedAt, receivedAt + EVENT_WINDOW_MS)),
  );
  const out: ProducedEvent[] = [];
  for (const rec of perTopic.flat()) {
    if (rec.headers['hl7-raw-id'] !== rawId || rec.value === null) continue;
    const e = await ctx.codec.decode(rec.value);
    out.push({
      type: e.type,
      eventId: e.data.meta.eventId,
      patientId: 'patientId' in e.data && typeof e.data.patientId === 'string' ? e.data.patientId : null,
      topic: rec.topic,
      partition: rec.partition,
      offset: rec.offset,
      remapped: rec.headers['hub-remapped'] === 'true',
    });
  }
  return out;
}

export async function messageDetail(ctx: ConsoleContext, a: MessageAddress): Promise<MessageDetail> {
  const rec = await readRecord(ctx, a);
  const outcome = a.topic === messageTopics(ctx).raw ? 'accepted' : 'refused';
  const hit = hitOf(rec, outcome);
  const events = await producedEvents(ctx, hit.rawId, receivedAtOf(rec));
  return {
    hit,
    raw: rawText(rec),
    ack: ackOf(rec, outcome),
    events,
    eventWindowMs: EVENT_WINDOW_MS,
    readModels: await appliedIn(ctx.db, clinicalTopics(ctx.settings.topic), events),
  };
}

/** The patients the view shows, for the audit (none known: one event without a patient). */
export function patientsOf(d: MessageDetail): string[] {
  return [...new Set(d.events.map((e) => e.patientId).filter((p): p is string => p !== null))];
}
