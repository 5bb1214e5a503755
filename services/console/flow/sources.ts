/**
 * Who sends what, from the log itself: HL7 senders from the `hl7-sender`
 * header (MSH-3|MSH-4) of the raw topic (accepted) and of the HL7 dead-letter
 * topic (refused, with the ACK code), FHIR clients from the `hub-source`
 * header (meta.source.system) of events that no HL7 message caused. Headers
 * only: no value is decoded, so no PHI is read. Each refresh reads only the
 * records written since the last one (a bounded scan), starting at the
 * offsets of `now - lookback` found by timestamp.
 */
import type { KafkaClient } from '../../../libs/kafka/client.js';
import { scanTopic, type PartitionRange, type ScannedRecord } from '../../../libs/kafka/scan.js';
import type { PartitionWindow, TopicWindows } from './offsets.js';

/** How a topic's records name their source. */
export type TopicRole = 'raw' | 'dlq' | 'events';

export interface TrackedTopic {
  topic: string;
  role: TopicRole;
}

/** One record as seen from its source: when, and the ACK code of a refusal (null: accepted). */
export interface SourceHit {
  source: string;
  kind: 'hl7' | 'fhir';
  at: number;
  refusal: string | null;
}

/** What one record says about its source; null when it is no source's record (HL7-caused or internal events). Pure. */
export function sourceHit(
  role: TopicRole,
  rec: Pick<ScannedRecord, 'headers' | 'timestamp'>,
): SourceHit | null {
  const h = rec.headers;
  if (role === 'events') {
    // HL7 messages are counted once, on the raw topic; their events carry the raw id.
    const system = h['hub-source'];
    if (h['hl7-raw-id'] !== undefined || system === undefined) return null;
    return { source: `fhir:${system}`, kind: 'fhir', at: rec.timestamp, refusal: null };
  }
  // A frame without a readable MSH has no sender: it is still a message someone sent.
  const source = h['hl7-sender'] ?? 'unknown|unknown';
  const refusal = role === 'dlq' ? (h['hl7-ack-code'] ?? 'refused') : null;
  return { source, kind: 'hl7', at: rec.timestamp, refusal };
}

/** Thresholds of the source states, the same as the alerts' (deploy/prometheus/alerts.yml). */
export interface SourceRules {
  /** Messages counted per source: those of the last windowMs. */
  windowMs: number;
  /** HubSourceSilent's floor: no message for longer than this is silent (15 min). */
  silentAfterMs: number;
  /** HubHl7ErrorAckRate: a refused share above this (5 %) is "rejecting"… */
  rejectingRate: number;
  /** …once at least this many messages were received in the window. */
  rejectingMinimum: number;
}

export const DEFAULT_SOURCE_RULES: SourceRules = {
  windowMs: 15 * 60_000,
  silentAfterMs: 15 * 60_000,
  rejectingRate: 0.05,
  rejectingMinimum: 3,
};

export type SourceState = 'ok' | 'silent' | 'rejecting';

export interface SourceRow {
  source: string;
  kind: 'hl7' | 'fhir';
  /** Messages (HL7) or events (FHIR) in the window. */
  received: number;
  perMinute: number;
  lastMessageAt: number;
  ageSeconds: number;
  rejected: number;
  /** ACK code → refusals in the window (AE, AR, …). */
  rejectedByCode: Record<string, number>;
  /** rejected / received; 0 without messages. */
  rejectedRate: number;
  state: SourceState;
}

interface Tally {
  kind: 'hl7' | 'fhir';
  last: number;
  /** Hits of the window, oldest first (pruned on each refresh). */
  hits: { at: number; refusal: string | null }[];
}

/** Sources kept at most: sender names come from input, so their number is bounded. */
const MAX_SOURCES = 1000;

/** The state of a source from its counts. Pure. */
export function sourceState(
  r: { received: number; rejected: number; ageMs: number },
  rules: SourceRules,
): SourceState {
  if (r.ageMs > rules.silentAfterMs) return 'silent';
  if (r.received >= rules.rejectingMinimum && r.rejected / r.received > rules.rejectingRate)
    return 'rejecting';
  return 'ok';
}

/**
 * Where to read each partition this time: from where the last refresh
 * stopped (first time: the offset of `now - lookback`), up to the high
 * offset, at most `cap` records per partition (the newest). Pure.
 */
export function planRanges(
  parts: ReadonlyMap<number, PartitionWindow>,
  next: ReadonlyMap<number, bigint> | undefined,
  cap: number,
): { ranges: Map<number, PartitionRange>; skipped: bigint } {
  const ranges = new Map<number, PartitionRange>();
  let skipped = 0n;
  const perPartition = BigInt(Math.max(1, Math.floor(cap / Math.max(1, parts.size))));
  for (const [p, w] of parts) {
    let from = next?.get(p) ?? w.at[0] ?? w.low;
    if (from < w.low) from = w.low;
    if (w.high - from > perPartition) {
      skipped += w.high - perPartition - from;
      from = w.high - perPartition;
    }
    if (from < w.high) ranges.set(p, { from, to: w.high });
  }
  return { ranges, skipped };
}

/** The per-source tallies a console keeps between refreshes (one per process). */
export class SourceTracker {
  private readonly next = new Map<string, Map<number, bigint>>();
  private readonly tallies = new Map<string, Tally>();
  /** Records left unread (capped) since the tracker started. */
  skipped = 0n;
  scanned = 0;

  constructor(
    private readonly rules: SourceRules = DEFAULT_SOURCE_RULES,
    private readonly capPerTopic = 5000,
  ) {}

  /** Adds a record's hit. */
  add(hit: SourceHit): void {
    let t = this.tallies.get(hit.source);
    if (!t) {
      if (this.tallies.size >= MAX_SOURCES) this.dropOldest();
      t = { kind: hit.kind, last: hit.at, hits: [] };
      this.tallies.set(hit.source, t);
    }
    if (hit.at > t.last) t.last = hit.at;
    t.hits.push({ at: hit.at, refusal: hit.refusal });
  }

  private dropOldest(): void {
    let oldest: [string, number] | null = null;
    for (const [k, t] of this.tallies) if (!oldest || t.last < oldest[1]) oldest = [k, t.last];
    if (oldest) this.tallies.delete(oldest[0]);
  }

  /** Reads what was written since the last refresh on each topic (side by side), then forgets hits older than the window. */
  async refresh(
    kafka: KafkaClient,
    topics: readonly TrackedTopic[],
    windows: TopicWindows,
    now: number,
  ): Promise<void> {
    await Promise.all(
      topics.map(async ({ topic, role }) => {
        const parts = windows.get(topic);
        if (!parts) return;
        const { ranges, skipped } = planRanges(parts, this.next.get(topic), this.capPerTopic);
        if (ranges.size > 0) {
          await scanTopic(kafka, topic, {
            range: (p) => ranges.get(p) ?? null,
            timeoutMs: 20_000,
            each: (records) => {
              this.scanned += records.length;
              for (const r of records) {
                const hit = sourceHit(role, r);
                if (hit) this.add(hit);
              }
              return Promise.resolve();
            },
          });
        }
        // Only once read: a failed scan is read again next time.
        this.skipped += skipped;
        this.next.set(topic, new Map([...parts].map(([p, w]) => [p, w.high])));
      }),
    );
    this.prune(now);
  }

  private prune(now: number): void {
    const since = now - this.rules.windowMs;
    for (const t of this.tallies.values()) {
      const keep = t.hits.findIndex((h) => h.at >= since);
      t.hits = keep < 0 ? [] : t.hits.slice(keep);
    }
  }

  /** One row per source, HL7 senders first, each by name. */
  rows(now: number): SourceRow[] {
    const since = now - this.rules.windowMs;
    const minutes = this.rules.windowMs / 60_000;
    return [...this.tallies]
      .map(([source, t]): SourceRow => {
        const inWindow = t.hits.filter((h) => h.at >= since);
        const rejectedByCode: Record<string, number> = {};
        for (const h of inWindow) {
          if (h.refusal !== null) rejectedByCode[h.refusal] = (rejectedByCode[h.refusal] ?? 0) + 1;
        }
        const received = inWindow.length;
        const rejected = Object.values(rejectedByCode).reduce((a, b) => a + b, 0);
        const ageMs = Math.max(0, now - t.last);
        return {
          source,
          kind: t.kind,
          received,
          perMinute: received / minutes,
          lastMessageAt: t.last,
          ageSeconds: Math.round(ageMs / 1000),
          rejected,
          rejectedByCode,
          rejectedRate: received > 0 ? rejected / received : 0,
          state: sourceState({ received, rejected, ageMs }, this.rules),
        };
      })
      .sort((a, b) => (a.kind === b.kind ? a.source.localeCompare(b.source) : a.kind === 'hl7' ? -1 : 1));
  }
}
