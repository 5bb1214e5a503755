import { describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import type { ClinicalEvent } from '../events/index.js';
import { patientRegistered } from '../../test/support/fixtures.js';
import type { RawRecord } from './producer.js';
import { groupedTransactions } from './transaction-groups.js';

const ev = (n: string): ClinicalEvent => patientRegistered(n, 'Alpha', `mrn-${n}`);
const ids = (events: readonly ClinicalEvent[]) => events.map((e) => e.data.patientId);

/** A transaction runner whose calls are recorded and settled by the test; it answers one entry per event. */
function manualTx() {
  const calls: {
    events: readonly ClinicalEvent[];
    extra: readonly RawRecord[];
    settle: (err?: Error) => void;
  }[] = [];
  let waiter: (() => void) | null = null;
  return {
    calls,
    /** Resolves once the producer has received n calls in all. */
    async called(n: number): Promise<void> {
      while (calls.length < n) await new Promise<void>((r) => (waiter = r));
    },
    run(events: readonly ClinicalEvent[], extra: readonly RawRecord[]) {
      return new Promise<{ topic: string; eventId: string }[]>((resolve, reject) => {
        const published = events.map((e) => ({ topic: 't', eventId: e.data.meta.eventId }));
        calls.push({ events, extra, settle: (err) => (err ? reject(err) : resolve(published)) });
        waiter?.();
      });
    },
  };
}

describe('groupedTransactions (calls sharing Kafka transactions)', () => {
  it('given a transaction in flight, when three Bundles commit meanwhile, then they go in the next transaction together, in commit order', async () => {
    const m = manualTx();
    const publish = groupedTransactions(m.run).publish;
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
    const publish = groupedTransactions(m.run, { maxEvents: 3 }).publish;
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
    const publish = groupedTransactions(m.run).publish;
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
    await expect(good).resolves.toHaveLength(1);
    await expect(good2).resolves.toHaveLength(1);
    await expect(bad).rejects.toBe(refused);
  });

  it('given a retriable failure (Kafka unavailable), when a group fails, then every Bundle of it fails with it, without retries', async () => {
    const m = manualTx();
    const publish = groupedTransactions(m.run).publish;
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
    const publish = groupedTransactions(m.run, { ackTimeoutMs: 30 }).publish;
    const stuck = publish([ev('a1')]);
    await m.called(1);
    const waiting = publish([ev('b1')]);
    await Promise.all([
      expect(waiting).rejects.toMatchObject({ code: 'HUB_KAFKA_UNAVAILABLE', retriable: true }),
      expect(stuck).rejects.toMatchObject({ code: 'HUB_KAFKA_UNAVAILABLE' }),
    ]);
    expect(m.calls).toHaveLength(1);
  });

  it('given calls grouped in one transaction, when it commits, then each call is answered with its own events, and extra records go along', async () => {
    const m = manualTx();
    const publish = groupedTransactions(m.run).publish;
    const first = publish([ev('a1')]);
    await m.called(1);
    const extra: RawRecord = { topic: 'x', key: 'k', value: Buffer.from('v') };
    const b = [ev('b1'), ev('b2')];
    const c = [ev('c1')];
    const waiting = [publish(b, [extra]), publish(c)];
    m.calls[0]!.settle();
    await first;
    await m.called(2);
    expect(m.calls[1]!.extra).toEqual([extra]);
    m.calls[1]!.settle();
    const [pb, pc] = await Promise.all(waiting);
    expect(pb!.map((p) => p.eventId)).toEqual(b.map((e) => e.data.meta.eventId));
    expect(pc!.map((p) => p.eventId)).toEqual(c.map((e) => e.data.meta.eventId));
  });
});
