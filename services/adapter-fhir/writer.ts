import { isHubError } from '../../libs/errors/index.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import { Planner, type PlannedOk } from '../../libs/fhir/import/ingest.js';
import type { FhirStore } from '../../libs/fhir/import/store.js';
import type { IdentityPolicy } from '../../libs/identity/index.js';
import { withAckDeadline, type EventProducer } from '../../libs/kafka/producer.js';
import type { TransactionalProducer } from '../../libs/kafka/transactional.js';
import { KeyedLock, type CrossInstanceLock } from './lock.js';

/**
 * What the resource and bundle routes share: one lock over the resources being
 * written, a Planner per request, and publish-then-save. Narrow dependencies,
 * so that route tests can run it over an in-memory store and recording producers.
 */
export interface Writer {
  readonly lock: KeyedLock;
  /** A Planner writing as `sourceSystem` (the calling client's, security.ts). */
  planner(requestId: string | null, sourceSystem: string): Planner;
  /** Publishes, then (only after the acks) records the new versions. */
  commit(writes: readonly PlannedOk[], atomic: boolean): Promise<void>;
}

export interface WriterDeps {
  store: FhirStore;
  producer: Pick<EventProducer, 'publish'>;
  txProducer: Pick<TransactionalProducer, 'publishAtomically'>;
  policy: IdentityPolicy;
  clock: () => number;
  /** Several instances on one store: their writes to one resource are serialised too (lock.ts advisoryLock). */
  across?: CrossInstanceLock | undefined;
  /**
   * KAFKA_ACK_TIMEOUT_MS: a transaction Bundle not committed this long after its commit began is
   * answered HUB_KAFKA_UNAVAILABLE, its wait for an earlier Kafka transaction included (as when
   * each Bundle was queued in the transactional producer itself).
   */
  ackTimeoutMs?: number | undefined;
}

/**
 * The most events one Kafka transaction carries for Bundles grouped by groupedTransactions: a
 * few Bundles of 100 entries. A group whose batch the broker refuses as too large is retried one
 * Bundle at a time, as any group refused for a reason that is not retriable.
 */
export const MAX_GROUP_EVENTS = 1000;

interface Waiting {
  events: readonly ClinicalEvent[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Transaction Bundles' Kafka transactions, grouped: a Bundle that commits while a transaction is
 * in flight waits for it, and all that waited then go in the next transaction together. One
 * transaction per Bundle cost a begin, an AddPartitionsToTxn, a produce and an EndTxn each, one at
 * a time per producer; and the broker answers the AddPartitionsToTxn that follows a commit too
 * closely with CONCURRENT_TRANSACTIONS, which kafkajs retries after 100 ms or more. Each Bundle
 * stays all or nothing: its events are all in one committed transaction, or its commit fails and
 * it writes nothing to the store. Events keep the order in which Bundles committed (Bundles that
 * write the same resource are serialised by the write lock before they get here).
 *
 * A group refused for a reason that is not retriable (an event its schema refuses, a batch too
 * large) is retried one Bundle at a time, so that only the Bundle at fault fails; a retriable
 * failure (Kafka unavailable, no ack in time) fails every Bundle of the group, as it would have
 * failed each alone.
 */
export function groupedTransactions(
  tx: Pick<TransactionalProducer, 'publishAtomically'>,
  o: { maxEvents?: number; ackTimeoutMs?: number | undefined } = {},
): (events: readonly ClinicalEvent[]) => Promise<void> {
  const maxEvents = o.maxEvents ?? MAX_GROUP_EVENTS;
  const queue: Waiting[] = [];
  let draining = false;

  async function send(group: readonly Waiting[]): Promise<void> {
    try {
      await tx.publishAtomically(group.flatMap((w) => w.events));
      for (const w of group) w.resolve();
    } catch (err) {
      if (group.length > 1 && !(isHubError(err) && err.retriable)) {
        for (const w of group) await send([w]);
      } else for (const w of group) w.reject(err);
    }
  }

  async function drain(): Promise<void> {
    draining = true;
    try {
      while (queue.length > 0) {
        // The first waiting Bundle always goes, however many events it has; then whole Bundles up to the bound.
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
      draining = false;
    }
  }

  return (events) => {
    const p = new Promise<void>((resolve, reject) => {
      queue.push({ events, resolve, reject });
    });
    if (!draining) void drain();
    return o.ackTimeoutMs === undefined ? p : withAckDeadline(p, o.ackTimeoutMs);
  };
}

export function createWriter(deps: WriterDeps): Writer {
  const publishAtomically = groupedTransactions(deps.txProducer, { ackTimeoutMs: deps.ackTimeoutMs });
  return {
    lock: new KeyedLock(deps.across),
    planner: (requestId, sourceSystem) =>
      new Planner({
        store: deps.store,
        policy: deps.policy,
        sourceSystem,
        recordedAt: deps.clock(),
        correlationId: requestId,
      }),
    async commit(writes, atomic) {
      const rows = writes.flatMap((w) => (w.kind === 'write' ? [w.row] : []));
      const events: ClinicalEvent[] = writes.flatMap((w) => (w.kind === 'write' ? w.events : []));
      if (events.length > 0) {
        if (atomic) await publishAtomically(events);
        else await deps.producer.publish(events);
      }
      await deps.store.save(rows);
    },
  };
}
