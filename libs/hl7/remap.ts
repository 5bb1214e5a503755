import type { ClinicalEvent } from '../events/index.js';
import type { IdentityPolicy } from '../identity/index.js';
import type { EventProducer } from '../kafka/producer.js';
import { sniffMsh } from './ack.js';
import { rawMapContext, type Hl7Mapper, type SenderTimeZones } from './map-context.js';
import type { StoredRecord } from './raw-store.js';

export interface RemapSelection {
  /** Inclusive lower bound on the received-at header (epoch ms). */
  since?: number;
  /** Exclusive upper bound on the received-at header (epoch ms). */
  until?: number;
  /** MSH-10 values; any sender. */
  controlIds?: readonly string[];
}

export interface RemapItem {
  rawId: string;
  controlId: string;
  messageType: string;
  outcome: 'mapped' | 'refused';
  events: number;
  /** HL7 error code and location of a refusal (no values). */
  detail: string;
}

/**
 * Picks the raw records to re-map: the selection's time range and/or control
 * ids, one per raw id (the last copy wins; a resend after a failed write
 * can leave two identical copies).
 */
export function selectRaw(records: readonly StoredRecord[], sel: RemapSelection): StoredRecord[] {
  const ids = sel.controlIds ? new Set(sel.controlIds) : null;
  const byId = new Map<string, StoredRecord>();
  for (const r of records) {
    const at = Date.parse(r.headers['hl7-received-at'] ?? '');
    if (sel.since !== undefined && !(at >= sel.since)) continue;
    if (sel.until !== undefined && !(at < sel.until)) continue;
    if (ids && !ids.has(r.headers['hl7-control-id'] ?? '')) continue;
    byId.set(r.headers['hl7-raw-id'] ?? `${r.partition}/${r.offset}`, r);
  }
  return [...byId.values()];
}

/**
 * Runs selected raw messages through the current mapper and publishes the
 * events. Same bytes → same deterministic event ids, so consumers treat a
 * re-mapped event they already hold as a duplicate, and a changed mapping
 * lands as new facts only where the mapping changed what it emits.
 */
export async function remap(
  selected: readonly StoredRecord[],
  deps: {
    mapper: Hl7Mapper;
    policy: IdentityPolicy;
    /** As the adapter reads them: the sender's zone from the site configuration. */
    timeZoneFor: SenderTimeZones;
    producer: EventProducer | null;
    rawTopic: string;
    onProgress?: (done: number) => void;
  },
): Promise<RemapItem[]> {
  const items: RemapItem[] = [];
  const pending: Promise<unknown>[] = [];
  for (const r of selected) {
    const rawId = r.headers['hl7-raw-id'] ?? '';
    const receivedAt = Date.parse(r.headers['hl7-received-at'] ?? '');
    const outcome = deps.mapper(
      r.value,
      rawMapContext({
        msh: sniffMsh(r.value),
        recordedAt: Number.isFinite(receivedAt) ? receivedAt : r.timestamp,
        policy: deps.policy,
        timeZoneFor: deps.timeZoneFor,
        rawTopic: deps.rawTopic,
        rawId,
      }),
    );
    const base = {
      rawId,
      controlId: r.headers['hl7-control-id'] ?? '',
      messageType: r.headers['hl7-message-type'] ?? '',
    };
    if (outcome.kind === 'mapped') {
      const events: ClinicalEvent[] = outcome.events;
      items.push({ ...base, outcome: 'mapped', events: events.length, detail: '' });
      // Concurrent publishes are coalesced by the producer into few requests.
      if (deps.producer && events.length > 0)
        pending.push(deps.producer.publish(events, { 'hl7-raw-id': rawId, 'hub-remapped': 'true' }));
    } else {
      const l = outcome.refusal.location;
      items.push({
        ...base,
        outcome: 'refused',
        events: 0,
        detail: `${outcome.refusal.ack} ${outcome.refusal.hl7ErrorCode}${l ? ` ${l.segment}-${l.field ?? ''}` : ''}`,
      });
    }
    deps.onProgress?.(items.length);
  }
  await Promise.all(pending);
  return items;
}
