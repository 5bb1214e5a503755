import { HubError } from '../errors/index.js';
import type { RawRecord } from './producer.js';
import type { ScannedRecord } from './scan.js';

/**
 * Dead letters, generic over every DLQ topic. Three writers exist and each
 * describes a failure in its own headers:
 *  - the consumer runner (libs/kafka/consumer.ts): `hub-dlq-*` headers, the
 *    raw record copied as it was on its source topic (redrivable);
 *  - the HL7 adapter: `hub-reason-code` + `hl7-*` headers, the raw HL7 bytes
 *    (repaired with `hub hl7 remap`, not by redrive: there is no event yet);
 *  - the FHIR bulk import: `hub-dlq-reason-code`, `hub-dlq-source`, the line
 *    number; the value is a JSON issue report.
 * Everything here reads headers only; values are PHI and are decoded only by
 * `hub dlq show --include-phi`, which is audited.
 */

export type DeadLetterKind = 'consumer' | 'hl7-adapter' | 'fhir-import' | 'unknown';

export interface DeadLetterInfo {
  topic: string;
  partition: number;
  offset: string;
  /** Broker time the dead letter was written (ms). */
  timestamp: number;
  kind: DeadLetterKind;
  reasonCode: string;
  /** Reason text as written by the hub's own code (never driver text); null when only a code exists. */
  reason: string | null;
  /** Consumer group (runner), `adapter-hl7` or `fhir-import`. */
  consumer: string;
  source: { topic: string; partition: number; offset: string } | null;
  failedAt: string | null;
  eventType: string | null;
  eventId: string | null;
  /** Non-PHI pointer to where it came from: HL7 sender + control id, or import + line. */
  origin: string | null;
  /** Only records copied by the consumer runner can go back to their source topic. */
  redrivable: boolean;
}

/**
 * The one place a consumer's dead-letter topic is named: `hub.dlq.<consumer>`,
 * then the deployment's topic naming (e.g. a test or site suffix) applied.
 */
export function dlqTopicFor(consumer: string, topicFor: (catalogName: string) => string = (n) => n): string {
  return topicFor(`hub.dlq.${consumer}`);
}

/** DLQ topics by naming convention: `hub.dlq.<consumer>[.<suffix>]`, `hl7.dlq.v1[.<suffix>]`, `*.dlq.*`. */
export function isDlqTopic(name: string): boolean {
  return /(^|\.)dlq(\.|$)/.test(name);
}

/** The DLQ topics among `topics` that belong to this deployment (its topic suffix, when it has one). Pure. */
export function dlqTopicsOf(topics: readonly string[], suffix: string | undefined): string[] {
  return topics.filter((t) => isDlqTopic(t) && (suffix === undefined || t.endsWith(`.${suffix}`)));
}

function iso(ms: number): string | null {
  return Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : null;
}

/** Reads a dead letter's metadata from its headers alone. Pure. */
export function parseDeadLetter(rec: ScannedRecord): DeadLetterInfo {
  const h = rec.headers;
  const base = {
    topic: rec.topic,
    partition: rec.partition,
    offset: rec.offset,
    timestamp: rec.timestamp,
    eventType: h['hub-event-type'] ?? null,
    eventId: h['hub-event-id'] ?? null,
  };
  const srcTopic = h['hub-dlq-source-topic'];
  if (srcTopic !== undefined && h['hub-dlq-reason-code'] !== undefined) {
    const partition = Number(h['hub-dlq-source-partition']);
    const offset = h['hub-dlq-source-offset'];
    const source =
      Number.isInteger(partition) && offset !== undefined && /^\d+$/.test(offset)
        ? { topic: srcTopic, partition, offset }
        : null;
    return {
      ...base,
      kind: 'consumer',
      reasonCode: h['hub-dlq-reason-code'],
      reason: h['hub-dlq-reason'] ?? null,
      consumer: h['hub-dlq-consumer'] ?? 'unknown',
      source,
      failedAt: h['hub-dlq-failed-at'] ?? iso(rec.timestamp),
      origin: null,
      redrivable: source !== null && rec.value !== null,
    };
  }
  if (h['hub-dlq-source'] === 'fhir-import') {
    const line = h['hub-dlq-line'];
    const imp = h['hub-dlq-import'];
    return {
      ...base,
      kind: 'fhir-import',
      reasonCode: h['hub-dlq-reason-code'] ?? 'unknown',
      reason: null,
      consumer: 'fhir-import',
      source: null,
      failedAt: h['hub-dlq-failed-at'] ?? iso(rec.timestamp),
      origin: [imp, line === undefined ? undefined : `line ${line}`].filter(Boolean).join(' ') || null,
      redrivable: false,
    };
  }
  if (h['hub-reason-code'] !== undefined || h['hl7-raw-id'] !== undefined) {
    const sender = h['hl7-sender'];
    const control = h['hl7-control-id'];
    return {
      ...base,
      kind: 'hl7-adapter',
      reasonCode: h['hub-reason-code'] ?? 'unknown',
      reason: null,
      consumer: 'adapter-hl7',
      source: null,
      failedAt: h['hl7-received-at'] ?? iso(rec.timestamp),
      origin:
        [sender, control === undefined ? undefined : `#${control}`, h['hl7-message-type']]
          .filter(Boolean)
          .join(' ') || null,
      redrivable: false,
    };
  }
  return {
    ...base,
    kind: 'unknown',
    reasonCode: h['hub-dlq-reason-code'] ?? 'unknown',
    reason: h['hub-dlq-reason'] ?? null,
    consumer: h['hub-dlq-consumer'] ?? 'unknown',
    source: null,
    failedAt: iso(rec.timestamp),
    origin: null,
    redrivable: false,
  };
}

/** Headers worth showing without `--include-phi`: the hub's own (codes, ids, names of systems). */
export function safeHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    out[k] = /^(hub|hl7)-/.test(k) ? v : '[not shown]';
  }
  return out;
}

/**
 * The record that goes back for another try: same key (so the same
 * partition, keeping per-patient order with whatever comes next), same value
 * and original headers, minus the dead-letter ones, plus where it came from.
 * Re-applying is safe: consumers de-duplicate by event id.
 */
export function redriveRecord(rec: ScannedRecord, target: string, now: number): RawRecord {
  const info = parseDeadLetter(rec);
  if (!info.redrivable || !info.source) {
    throw new HubError(
      'HUB_INPUT_INVALID',
      `${rec.topic}/${rec.partition}/${rec.offset} was not written by a consumer and cannot be redriven` +
        (info.kind === 'hl7-adapter'
          ? ' (fix the mapping and use `hub hl7 remap`)'
          : info.kind === 'fhir-import'
            ? ' (fix the file and import it again)'
            : ''),
    );
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(rec.headers)) if (!k.startsWith('hub-dlq-')) headers[k] = v;
  headers['hub-redriven-from'] = `${rec.topic}/${rec.partition}/${rec.offset}`;
  headers['hub-redriven-at'] = new Date(now).toISOString();
  return { topic: target, key: rec.key, value: rec.value, headers };
}

export interface DlqFilter {
  consumer?: string;
  reasonCode?: string;
  /** `<partition>:<offset>` pairs. */
  at?: readonly string[];
}

export function matches(info: DeadLetterInfo, f: DlqFilter): boolean {
  if (f.consumer !== undefined && info.consumer !== f.consumer) return false;
  if (f.reasonCode !== undefined && info.reasonCode !== f.reasonCode) return false;
  if (f.at && f.at.length > 0 && !f.at.includes(`${info.partition}:${info.offset}`)) return false;
  return true;
}
