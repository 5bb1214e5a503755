import { describe, expect, it } from 'vitest';
import { HubError } from '../../libs/errors/index.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import { patientRegistered } from '../../test/support/fixtures.js';
import { groupedTransactions } from './writer.js';

const ev = (n: string): ClinicalEvent => patientRegistered(n, 'Alpha', `mrn-${n}`);
const ids = (events: readonly ClinicalEvent[]) => events.map((e) => e.data.patientId);

/** A transactional producer whose calls are recorded and settled by the test. */
function manualTx() {
  const calls: { events: readonly ClinicalEvent[]; settle: (err?: Error) => void }[] = [];
  let waiter: (() => void) | null = null;
  return {
    calls,
    /** Resolves once the producer has received n calls in all. */
    async called(n: number): Promise<void> {
      while (calls.length < n) await new Promise<void>((r) => (waiter = r));
    },
    tx: {
      publishAtomically(events: readonly ClinicalEvent[]) {
        return new Promise<{ topic: string; eventId: string }[]>((resolve, reject) => {
          calls.push({ events, settle: (err) => (err ? reject(err) : resolve([])) });
          waiter?.();
        });
      },
    },
  };
}

describe('groupedTransactions (transaction Bundles sharing Kafka transactions)', () => {
  it('given a transaction in flight, when three Bundles commit meanwhile, then they go in the next transaction together, in commit order', async () => {
    const m = manualTx();
    const publish = groupedTransactions(m.tx);
    const first = publish([ev('a1'), ev('a2')]);
    await m.called(1);
    const waiting = [publish([ev('b1')]), publish([ev('c1'), ev('c2')]), publish([ev('d1')])];
    m.calls[0]!.settle();
    await first;
    await m.called(2);
    expect(ids(m.calls[1]!.events)).toEqual(['b1', 'c1', 'c2', 'd1']);
    m.calls[1]!.settle();
    await Promise.all(waiting);
    expect(m.calls).toHaveLength(2);
  });

  it('given more waiting events than one transaction may carry, when sent, then the group is cut at the bound', async () => {
    const m = manualTx();
    const publish = groupedTransactions(m.tx, { maxEvents: 3 });
    const first = publish([ev('a1')]);
    await m.called(1);
    const waiting = [publish([ev('b1'), ev('b2')]), publish([ev('c1')]), publish([ev('d1'), ev('d2')])];
    m.calls[0]!.settle();
    await m.called(2);
    expect(ids(m.calls[1]!.events)).toEqual(['b1', 'b2', 'c1']);
    m.calls[1]!.settle();
    await m.called(3);
    expect(ids(m.calls[2]!.events)).toEqual(['d1', 'd2']);
    m.calls[2]!.settle();
    await Promise.all([first, ...waiting]);
  });

  it('given a group refused for a reason that is not retriable, when retried one Bundle at a time, then only the Bundle at fault fails', async () => {
    const m = manualTx();
    const publish = groupedTransactions(m.tx);
    const first = publish([ev('a1')]);
    await m.called(1);
    const good = publish([ev('g1')]);
    const bad = publish([ev('x1')]);
    const good2 = publish([ev('g2')]);
    m.calls[0]!.settle();
    await first;
    await m.called(2);
    const refused = new HubError('HUB_EVENT_INVALID', 'PatientRegistered does not match its schema');
    m.calls[1]!.settle(refused);
    for (let i = 2; i < 5; i++) {
      await m.called(i + 1);
      const alone = ids(m.calls[i]!.events);
      m.calls[i]!.settle(alone[0] === 'x1' ? refused : undefined);
    }
    expect(m.calls.slice(2).map((c) => ids(c.events))).toEqual([['g1'], ['x1'], ['g2']]);
    await expect(good).resolves.toBeUndefined();
    await expect(good2).resolves.toBeUndefined();
    await expect(bad).rejects.toBe(refused);
  });

  it('given a retriable failure (Kafka unavailable), when a group fails, then every Bundle of it fails with it, without retries', async () => {
    const m = manualTx();
    const publish = groupedTransactions(m.tx);
    const first = publish([ev('a1')]);
    await m.called(1);
    const waiting = [publish([ev('b1')]), publish([ev('c1')])];
    m.calls[0]!.settle();
    await first;
    await m.called(2);
    const down = new HubError('HUB_KAFKA_UNAVAILABLE', 'kafka transaction failed', { retriable: true });
    m.calls[1]!.settle(down);
    for (const w of waiting) await expect(w).rejects.toBe(down);
    expect(m.calls).toHaveLength(2);
    // The next Bundle starts a transaction of its own.
    const next = publish([ev('n1')]);
    await m.called(3);
    m.calls[2]!.settle();
    await next;
  });

  it('given a transaction that never completes, when a Bundle waits behind it past the ack timeout, then it is answered HUB_KAFKA_UNAVAILABLE', async () => {
    const m = manualTx();
    const publish = groupedTransactions(m.tx, { ackTimeoutMs: 30 });
    const stuck = publish([ev('a1')]);
    await m.called(1);
    const waiting = publish([ev('b1')]);
    await Promise.all([
      expect(waiting).rejects.toMatchObject({ code: 'HUB_KAFKA_UNAVAILABLE', retriable: true }),
      expect(stuck).rejects.toMatchObject({ code: 'HUB_KAFKA_UNAVAILABLE' }),
    ]);
    expect(m.calls).toHaveLength(1);
  });
});
