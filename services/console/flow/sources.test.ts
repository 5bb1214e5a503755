import { describe, expect, it } from 'vitest';
import type { PartitionWindow } from './offsets.js';
import { DEFAULT_SOURCE_RULES, planRanges, sourceHit, sourceState, SourceTracker } from './sources.js';

const MIN = 60_000;

describe('sourceHit', () => {
  it('names an HL7 sender by MSH-3|MSH-4; a dead letter is a refusal with its ACK code', () => {
    // given a raw record and a dead letter of the same sender / when read / then
    const h = { 'hl7-sender': 'LAB|HOSP', 'hl7-raw-id': 'r1' };
    expect(sourceHit('raw', { headers: h, timestamp: 5 })).toEqual({
      source: 'LAB|HOSP',
      kind: 'hl7',
      at: 5,
      refusal: null,
    });
    expect(sourceHit('dlq', { headers: { ...h, 'hl7-ack-code': 'AR' }, timestamp: 6 })?.refusal).toBe('AR');
  });

  it('counts a frame without a readable MSH under unknown|unknown, and a refusal without code as refused', () => {
    expect(sourceHit('dlq', { headers: {}, timestamp: 1 })).toMatchObject({
      source: 'unknown|unknown',
      refusal: 'refused',
    });
  });

  it('names a FHIR client by its source system, and skips events an HL7 message caused or without a source', () => {
    expect(sourceHit('events', { headers: { 'hub-source': 'lab-app' }, timestamp: 1 })).toMatchObject({
      source: 'fhir:lab-app',
      kind: 'fhir',
    });
    expect(
      sourceHit('events', { headers: { 'hub-source': 'LAB', 'hl7-raw-id': 'r' }, timestamp: 1 }),
    ).toBeNull();
    expect(sourceHit('events', { headers: {}, timestamp: 1 })).toBeNull();
  });
});

describe('sourceState', () => {
  const rules = DEFAULT_SOURCE_RULES;
  it('is silent past the HubSourceSilent floor (15 min), whatever the counts', () => {
    expect(sourceState({ received: 0, rejected: 0, ageMs: 15 * MIN + 1 }, rules)).toBe('silent');
    expect(sourceState({ received: 0, rejected: 0, ageMs: 15 * MIN }, rules)).toBe('ok');
  });
  it('is rejecting above 5 % refused once 3 messages came, ok below', () => {
    expect(sourceState({ received: 20, rejected: 2, ageMs: 0 }, rules)).toBe('rejecting');
    expect(sourceState({ received: 20, rejected: 1, ageMs: 0 }, rules)).toBe('ok');
    expect(sourceState({ received: 2, rejected: 2, ageMs: 0 }, rules)).toBe('ok');
  });
});

describe('planRanges', () => {
  const w = (low: bigint, high: bigint, at: bigint): PartitionWindow => ({ low, high, at: [at] });

  it('reads a partition first from the offset of the lookback time, then from where it stopped', () => {
    // given a partition with records 0..99, 40 of them since the lookback time
    const parts = new Map([[0, w(0n, 100n, 60n)]]);
    // when read the first time / then only those 40
    expect(planRanges(parts, undefined, 1000)).toEqual({
      ranges: new Map([[0, { from: 60n, to: 100n }]]),
      skipped: 0n,
    });
    // when read after offset 90 / then the rest; nothing new: nothing to read
    expect(planRanges(parts, new Map([[0, 90n]]), 1000).ranges.get(0)).toEqual({ from: 90n, to: 100n });
    expect(planRanges(parts, new Map([[0, 100n]]), 1000).ranges.size).toBe(0);
  });

  it('caps each partition at its share of the cap, newest first, and counts what it skipped', () => {
    // given two partitions of 100 new records and a cap of 50
    const parts = new Map([
      [0, w(0n, 100n, 0n)],
      [1, w(0n, 100n, 0n)],
    ]);
    // when planned / then 25 each, the newest, and 150 skipped
    const plan = planRanges(parts, undefined, 50);
    expect(plan.ranges.get(0)).toEqual({ from: 75n, to: 100n });
    expect(plan.skipped).toBe(150n);
  });

  it('never starts below the partition’s low offset (retention deleted the rest)', () => {
    expect(planRanges(new Map([[0, w(50n, 60n, 50n)]]), new Map([[0, 10n]]), 1000).ranges.get(0)).toEqual({
      from: 50n,
      to: 60n,
    });
  });
});

describe('SourceTracker.rows', () => {
  it('counts the window per source, keeps a silent source with its last message time, HL7 first', () => {
    // given a tracker with a busy lab (one AE), a FHIR client, and a sender last heard an hour ago
    const now = 10 * 3600_000;
    const t = new SourceTracker();
    for (let i = 0; i < 30; i += 1)
      t.add({ source: 'LAB|HOSP', kind: 'hl7', at: now - i * 10_000, refusal: null });
    t.add({ source: 'LAB|HOSP', kind: 'hl7', at: now - 1000, refusal: 'AE' });
    t.add({ source: 'fhir:app', kind: 'fhir', at: now - MIN, refusal: null });
    t.add({ source: 'ADT|HOSP', kind: 'hl7', at: now - 60 * MIN, refusal: null });

    // when the rows are read
    const rows = t.rows(now);

    // then
    expect(rows.map((r) => r.source)).toEqual(['ADT|HOSP', 'LAB|HOSP', 'fhir:app']);
    expect(rows[0]).toMatchObject({ received: 0, state: 'silent', ageSeconds: 3600 });
    expect(rows[1]).toMatchObject({ received: 31, rejected: 1, rejectedByCode: { AE: 1 }, state: 'ok' });
    expect(rows[1]?.perMinute).toBeCloseTo(31 / 15);
    expect(rows[2]).toMatchObject({ kind: 'fhir', received: 1, state: 'ok' });
  });
});
