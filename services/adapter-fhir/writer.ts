import type { ClinicalEvent } from '../../libs/events/index.js';
import { Planner, type PlannedOk } from '../../libs/fhir/import/ingest.js';
import type { FhirStore } from '../../libs/fhir/import/store.js';
import type { IdentityPolicy } from '../../libs/identity/index.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
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
}

export function createWriter(deps: WriterDeps): Writer {
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
        if (atomic) await deps.txProducer.publishAtomically(events);
        else await deps.producer.publish(events);
      }
      await deps.store.save(rows);
    },
  };
}
