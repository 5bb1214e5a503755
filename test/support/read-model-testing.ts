import type { ClinicalEvent } from '../../libs/events/index.js';
import type { DecodedRecord } from '../../libs/kafka/consumer.js';
import { Draft, rootOf, type Resolve } from '../../libs/projections/store.js';

/**
 * Runs a read model's pure evolve over events with everything in memory, as
 * unit tests need it (the store's SQL side is covered by integration tests).
 */
export function evolveAll<T extends { [K in keyof T]: object }>(
  evolve: (d: Draft<T>, e: ClinicalEvent, resolve: Resolve) => void,
  events: readonly ClinicalEvent[],
  resolve: Resolve = (id) => id,
): Draft<T> {
  const d = new Draft<T>();
  for (const e of events) evolve(d, e, resolve);
  return d;
}

/** Every row of every table, keyed and sorted, for "same end state" comparisons. */
export function snapshot<T extends { [K in keyof T]: object }>(
  d: Draft<T>,
  tables: readonly (keyof T)[],
): string {
  return JSON.stringify(
    tables.map((t) => [t, [...d.all(t)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]),
  );
}

/**
 * A random interleaving of per-stream sequences that keeps each stream's
 * own order, as Kafka does for one key within one topic.
 */
export function interleave<X>(streams: readonly X[][], random: () => number): X[] {
  const queues = streams.map((s) => [...s]);
  const out: X[] = [];
  for (;;) {
    const live = queues.filter((q) => q.length > 0);
    if (live.length === 0) return out;
    const q = live[Math.floor(random() * live.length)]!;
    out.push(q.shift()!);
  }
}

/**
 * Like evolveAll, but with merges learned as they arrive, as the store does
 * (a merge's link is recorded before the merge itself is evolved). Only the
 * merge links are modelled, not the SQL that moves rows between patients.
 */
export function evolveLearningMerges<T extends { [K in keyof T]: object }>(
  evolve: (d: Draft<T>, e: ClinicalEvent, resolve: Resolve) => void,
  events: readonly ClinicalEvent[],
): Draft<T> {
  const d = new Draft<T>();
  const links = new Map<string, string>();
  for (const e of events) {
    if (e.type === 'PatientsMerged') links.set(e.data.mergedPatientId, e.data.patientId);
    evolve(d, e, (id) => rootOf(links, id));
  }
  return d;
}

let nextOffset = 0n;

/** Events as the records a projection's `apply` receives: one topic, one partition, rising offsets. */
export function asRecords(events: readonly ClinicalEvent[], topic = 't'): DecodedRecord[] {
  return events.map((event) => ({
    topic,
    partition: 0,
    offset: nextOffset++,
    key: event.data.patientId,
    timestamp: 0,
    event,
  }));
}
