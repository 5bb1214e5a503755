import { HubError, isHubError } from '../../../libs/errors/index.js';
import { INGEST_TOPICS } from '../../../libs/events/contracts.js';
import { listTopics } from '../../../libs/kafka/admin.js';
import type { KafkaClient } from '../../../libs/kafka/client.js';
import { scanTopic, type PartitionRange, type ScannedRecord } from '../../../libs/kafka/scan.js';
import type { ConsoleContext } from '../context.js';
import { topicWindows, type PartitionWindow } from '../flow/offsets.js';

/**
 * Finding HL7 messages: the adapter keeps every accepted message on
 * hl7.raw.v1 and every refused one on hl7.dlq.v1, with the same non-PHI
 * headers (libs/hl7 raw-store / remap select by them: raw id, received at,
 * sender, control id, message type). A search reads only the part of each
 * topic the time range covers, found with the broker's offsets by timestamp.
 */

export interface MessageQuery {
  controlId: string | null;
  /** `APP|FACILITY`, or just `APP`. */
  sender: string | null;
  /** Received at or after (epoch ms). */
  from: number;
  /** Received before (epoch ms). */
  to: number;
}

export interface MessageHit {
  topic: string;
  partition: number;
  offset: string;
  rawId: string;
  controlId: string;
  sender: string;
  messageType: string;
  receivedAt: string;
  outcome: 'accepted' | 'refused';
  /** The refusal's ACK code (AE / AR) from the dead letter's headers; null for accepted ones. */
  ackCode: string | null;
}

/** Without a range a search covers this much before now: bounded, whatever the topics hold. */
export const DEFAULT_WINDOW_MS = 24 * 3600_000;
/** At most this many hits are listed (newest first). */
export const MAX_HITS = 200;
/** The broker's record time is the adapter's write time, a little after it received the message. */
const CLOCK_SLACK_MS = 60_000;

export function messageTopics(ctx: ConsoleContext): { raw: string; dlq: string } {
  return { raw: ctx.settings.topic(INGEST_TOPICS.hl7Raw), dlq: ctx.settings.topic(INGEST_TOPICS.hl7Dlq) };
}

function kafkaUnavailable(what: string) {
  return (err: unknown): never => {
    throw isHubError(err) ? err : new HubError('HUB_KAFKA_UNAVAILABLE', `could not ${what}`, { cause: err });
  };
}

/**
 * Per partition, the offsets of the first records written at or after
 * `from` and `to` (the end when none is): the part of the topic a time range
 * covers, with slack for the time between receiving and writing.
 */
export async function rangeByTime(
  kafka: KafkaClient,
  topic: string,
  from: number,
  to: number,
): Promise<Map<number, PartitionRange>> {
  const w = await topicWindows(kafka, [topic], [Math.max(0, from - CLOCK_SLACK_MS), to + CLOCK_SLACK_MS]);
  const parts = w.topics.get(topic) ?? new Map<number, PartitionWindow>();
  return new Map(
    [...parts].map(([p, o]) => {
      const lo = o.at[0] ?? o.high;
      return [p, { from: lo, to: o.at[1] ?? lo }];
    }),
  );
}

/** Those of `topics` that exist: a deployment without the HL7 adapter yet has no raw topic, and nothing to find there. */
export async function existing(kafka: KafkaClient, topics: readonly string[]): Promise<string[]> {
  const all = new Set(await listTopics(kafka).catch(kafkaUnavailable('list topics')));
  return topics.filter((t) => all.has(t));
}

/** The records of `topic` written within [from, to) (with slack), in parallel-safe throw-away groups. */
export async function scanByTime(
  kafka: KafkaClient,
  topic: string,
  from: number,
  to: number,
): Promise<ScannedRecord[]> {
  const ranges = await rangeByTime(kafka, topic, from, to).catch(kafkaUnavailable(`read ${topic}`));
  return scanTopic(kafka, topic, { range: (p) => ranges.get(p) ?? null }).catch(
    kafkaUnavailable(`read ${topic}`),
  );
}

export function receivedAtOf(r: ScannedRecord): number {
  const t = Date.parse(r.headers['hl7-received-at'] ?? '');
  return Number.isFinite(t) ? t : r.timestamp;
}

function senderMatches(sender: string, wanted: string): boolean {
  return wanted.includes('|') ? sender === wanted : sender.split('|')[0] === wanted;
}

/** Whether a raw record or dead letter matches the query, by its headers alone. Pure. */
export function matchesQuery(r: ScannedRecord, q: MessageQuery): boolean {
  const at = receivedAtOf(r);
  if (!(at >= q.from && at < q.to)) return false;
  if (q.controlId !== null && r.headers['hl7-control-id'] !== q.controlId) return false;
  if (q.sender !== null && !senderMatches(r.headers['hl7-sender'] ?? '', q.sender)) return false;
  return true;
}

export function hitOf(r: ScannedRecord, outcome: MessageHit['outcome']): MessageHit {
  const h = r.headers;
  return {
    topic: r.topic,
    partition: r.partition,
    offset: r.offset,
    rawId: h['hl7-raw-id'] ?? '',
    controlId: h['hl7-control-id'] ?? '',
    sender: h['hl7-sender'] ?? '',
    messageType: h['hl7-message-type'] ?? '',
    receivedAt: new Date(receivedAtOf(r)).toISOString(),
    outcome,
    ackCode: outcome === 'refused' ? (h['hl7-ack-code'] ?? null) : null,
  };
}

export interface SearchResult {
  hits: MessageHit[];
  /** More matched than are listed. */
  truncated: boolean;
}

export async function searchMessages(ctx: ConsoleContext, q: MessageQuery): Promise<SearchResult> {
  const t = messageTopics(ctx);
  const topics = await existing(ctx.kafka, [t.raw, t.dlq]);
  const scanned = await Promise.all(topics.map((topic) => scanByTime(ctx.kafka, topic, q.from, q.to)));
  const hits = scanned
    .flat()
    .filter((r) => matchesQuery(r, q))
    .map((r) => hitOf(r, r.topic === t.raw ? 'accepted' : 'refused'))
    .sort((a, b) => b.receivedAt.localeCompare(a.receivedAt));
  return { hits: hits.slice(0, MAX_HITS), truncated: hits.length > MAX_HITS };
}
