import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { byTopic, createGroupOffsetCommitter, type TopicPartitionOffset } from './group-offsets.js';

describe('group offset committer', () => {
  let sent: TopicPartitionOffset[][];
  let errors: unknown[];
  let fail: Error | null;

  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    errors = [];
    fail = null;
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function committer(intervalMs = 1_000) {
    return createGroupOffsetCommitter({
      intervalMs,
      commit: (offsets) => {
        if (fail) return Promise.reject(fail);
        sent.push(offsets);
        return Promise.resolve();
      },
      onError: (err) => errors.push(err),
    });
  }

  it('sends no commit from a batch: at most one per interval from a timer, with the newest offsets, and a trailing one', async () => {
    // Given a committer with a 1 s interval
    const c = committer();
    // When batches apply offsets in quick succession
    c.applied('t', 0, 10n);
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(0);
    // Then the first goes out at once (nothing was sent for an interval) ...
    expect(sent).toEqual([[{ topic: 't', partition: 0, offset: '10' }]]);
    c.applied('t', 0, 20n);
    c.applied('t', 1, 5n);
    c.applied('t', 0, 30n);
    await vi.advanceTimersByTimeAsync(999);
    expect(sent).toHaveLength(1);
    // ... and the rest one interval later, in one commit holding the newest offset per partition
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(2);
    expect(sent[1]).toEqual([
      { topic: 't', partition: 0, offset: '30' },
      { topic: 't', partition: 1, offset: '5' },
    ]);
    // An idle consumer sends nothing more.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent).toHaveLength(2);
    expect(c.pending()).toBe(0);
  });

  it('does not send an offset the group already holds', async () => {
    const c = committer();
    c.applied('t', 0, 10n);
    await vi.advanceTimersByTimeAsync(0);
    c.applied('t', 0, 10n);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sent).toHaveLength(1);
  });

  it('reports a failed commit and sends its offsets again with the next one, never going backwards', async () => {
    // Given a commit that fails
    const c = committer();
    fail = Object.assign(new Error('rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
    c.applied('t', 0, 10n);
    c.applied('t', 1, 3n);
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toHaveLength(1);
    expect(sent).toEqual([]);
    // When the broker accepts commits again and partition 0 moved on meanwhile
    fail = null;
    c.applied('t', 0, 12n);
    await vi.advanceTimersByTimeAsync(1_000);
    // Then the next commit holds the newer offset of partition 0 and the failed one of partition 1
    expect(sent).toEqual([
      [
        { topic: 't', partition: 0, offset: '12' },
        { topic: 't', partition: 1, offset: '3' },
      ],
    ]);
  });

  it('drops the offsets of partitions given away by a new assignment, and those of batches that finish later', async () => {
    const c = committer();
    c.retain({ t: [0, 1] });
    c.applied('t', 0, 10n);
    c.applied('t', 1, 10n);
    // Given away before the commit went out
    c.retain({ t: [0] });
    c.applied('t', 1, 11n);
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([[{ topic: 't', partition: 0, offset: '10' }]]);
  });

  it('after close sends nothing by itself, but flush (the final commit of a stop) still sends, through the given function', async () => {
    const c = committer();
    c.applied('t', 0, 10n);
    c.close();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sent).toEqual([]);
    const via: TopicPartitionOffset[][] = [];
    await c.flush((o) => {
      via.push(o);
      return Promise.resolve();
    });
    expect(via).toEqual([[{ topic: 't', partition: 0, offset: '10' }]]);
    expect(sent).toEqual([]);
  });

  it('never runs two commits at once', async () => {
    let inFlight = 0;
    let overlapped = false;
    const c = createGroupOffsetCommitter({
      intervalMs: 0,
      commit: async () => {
        overlapped ||= inFlight > 0;
        inFlight++;
        await new Promise((r) => setTimeout(r, 50));
        inFlight--;
      },
      onError: () => undefined,
    });
    for (let i = 1; i <= 5; i++) {
      c.applied('t', 0, BigInt(i));
      void c.flush();
    }
    await vi.advanceTimersByTimeAsync(1_000);
    expect(overlapped).toBe(false);
  });

  it('groups offsets by topic for kafkajs', () => {
    expect(
      byTopic([
        { topic: 'a', partition: 0, offset: '1' },
        { topic: 'b', partition: 2, offset: '3' },
        { topic: 'a', partition: 1, offset: '2' },
      ]),
    ).toEqual({
      topics: [
        {
          topic: 'a',
          partitions: [
            { partition: 0, offset: '1' },
            { partition: 1, offset: '2' },
          ],
        },
        { topic: 'b', partitions: [{ partition: 2, offset: '3' }] },
      ],
    });
  });
});
