import { describe, expect, it } from 'vitest';
import { AuditLagTracker } from './lag.js';

describe('AuditLagTracker', () => {
  const limits = { maxLag: 100, stallMs: 30_000 };
  const stale = 15_000;

  it('given no reading yet, then it is not ready', () => {
    expect(new AuditLagTracker(limits).verdict(0, stale)).toEqual({
      ok: false,
      detail: 'measuring audit lag',
    });
  });

  it('given lag within the limit and a moving position, then it is ready with the figure', () => {
    const t = new AuditLagTracker(limits);
    t.observe({ lag: 5, committed: 10, end: 15 }, 0);
    t.observe({ lag: 5, committed: 20, end: 25 }, 40_000);
    expect(t.verdict(40_000, stale)).toEqual({ ok: true, detail: 'audit lag 5' });
  });

  it('given lag over the limit, then it is not ready and says by how much', () => {
    const t = new AuditLagTracker(limits);
    t.observe({ lag: 101, committed: 0, end: 101 }, 0);
    expect(t.verdict(0, stale)).toEqual({ ok: false, detail: 'audit lag 101 > 100' });
  });

  it('given some lag and a position that has not moved for the stall time, then it is not ready (stalled)', () => {
    const t = new AuditLagTracker(limits);
    t.observe({ lag: 3, committed: 7, end: 10 }, 0);
    t.observe({ lag: 4, committed: 7, end: 11 }, 10_000);
    expect(t.verdict(10_000, stale).ok).toBe(true);
    t.observe({ lag: 4, committed: 7, end: 11 }, 30_000);
    expect(t.verdict(30_000, stale)).toEqual({
      ok: false,
      detail: 'audit lag 4, projector position unchanged for 30000 ms',
    });
  });

  it('given no lag, then an unmoving position is idle, not stalled', () => {
    const t = new AuditLagTracker(limits);
    t.observe({ lag: 0, committed: 7, end: 7 }, 0);
    t.observe({ lag: 0, committed: 7, end: 7 }, 60_000);
    expect(t.verdict(60_000, stale).ok).toBe(true);
  });

  it('given readings that stopped (Kafka unreachable), then after the stale time the lag is unknown', () => {
    const t = new AuditLagTracker(limits);
    t.observe({ lag: 0, committed: 7, end: 7 }, 0);
    t.failed('HUB_KAFKA_UNAVAILABLE');
    expect(t.verdict(20_000, stale)).toEqual({
      ok: false,
      detail: 'audit lag unknown for 20000 ms (HUB_KAFKA_UNAVAILABLE)',
    });
  });
});
