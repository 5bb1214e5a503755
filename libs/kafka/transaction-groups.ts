import { isHubError } from '../errors/index.js';
import type { ClinicalEvent } from '../events/index.js';
import { withAckDeadline, type PublishedEvent, type RawRecord } from './producer.js';

/**
 * The most events one Kafka transaction carries when calls are grouped: a few
 * FHIR transaction Bundles of 100 entries. A group whose batch the broker
 * refuses as too large is retried one call at a time, as any group refused for
 * a reason that is not retriable.
 */
export const MAX_GROUP_EVENTS = 1000;

type Run = (events: readonly ClinicalEvent[], extra: readonly RawRecord[]) => Promise<PublishedEvent[]>;

interface Waiting {
  events: readonly ClinicalEvent[];
  extra: readonly RawRecord[];
  resolve: (published: PublishedEvent[]) => void;
  reject: (err: unknown) => void;
}

/**
 * A transactional producer's calls, one transaction at a time, grouped: calls
 * made while a transaction is in flight wait for it, and all that waited then
 * go in the next transaction together. One transaction per call cost a begin,
 * an AddPartitionsToTxn, a produce and an EndTxn each, one at a time; and the
 * broker answers the AddPartitionsToTxn that follows a commit too closely
 * with CONCURRENT_TRANSACTIONS, which kafkajs retries after 100 ms or more.
 * Each call stays all or nothing: its records are all in one committed
 * transaction, or it fails. Records keep the order in which calls were made.
 *
 * A group refused for a reason that is not retriable (an event its schema
 * refuses, a batch too large) is retried one call at a time, so that only the
 * call at fault fails; a retriable failure (Kafka unavailable, no ack in
 * time) fails every call of the group, as it would have failed each alone.
 * `ackTimeoutMs` counts a call's wait behind earlier transactions too.
 */
export function groupedTransactions(
  run: Run,
  o: { maxEvents?: number; ackTimeoutMs?: number | undefined } = {},
): {
  publish(events: readonly ClinicalEvent[], extra?: readonly RawRecord[]): Promise<PublishedEvent[]>;
  /** Settles once every call made so far has been answered. */
  idle(): Promise<void>;
} {
  const maxEvents = o.maxEvents ?? MAX_GROUP_EVENTS;
  const queue: Waiting[] = [];
  let draining: Promise<void> | null = null;

  async function send(group: readonly Waiting[]): Promise<void> {
    try {
      const published = await run(
        group.flatMap((w) => w.events),
        group.flatMap((w) => w.extra),
      );
      // run answers one entry per event, in order: each call gets its own.
      let at = 0;
      for (const w of group) w.resolve(published.slice(at, (at += w.events.length)));
    } catch (err) {
      if (group.length > 1 && !(isHubError(err) && err.retriable)) {
        for (const w of group) await send([w]);
      } else for (const w of group) w.reject(err);
    }
  }

  async function drain(): Promise<void> {
    try {
      while (queue.length > 0) {
        // The first waiting call always goes, however many events it has; then whole calls up to the bound.
        let n = 0;
        let take = 0;
        for (const w of queue) {
          if (take > 0 && n + w.events.length > maxEvents) break;
          n += w.events.length;
          take++;
        }
        await send(queue.splice(0, take));
      }
    } finally {
      draining = null;
    }
  }

  return {
    publish(events, extra = []) {
      const p = new Promise<PublishedEvent[]>((resolve, reject) => {
        queue.push({ events, extra, resolve, reject });
      });
      draining ??= drain();
      return o.ackTimeoutMs === undefined ? p : withAckDeadline(p, o.ackTimeoutMs);
    },
    async idle() {
      while (draining) await draining;
    },
  };
}
