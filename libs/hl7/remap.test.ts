import { describe, expect, it } from 'vitest';
import type { StoredRecord } from './raw-store.js';
import { selectRaw } from './remap.js';

function rec(
  offset: number,
  controlId: string,
  receivedAt: string,
  rawId = `raw-${controlId}`,
): StoredRecord {
  return {
    topic: 'hl7.raw.v1',
    partition: 0,
    offset: String(offset),
    key: null,
    value: Buffer.from(`copy ${offset}`),
    headers: { 'hl7-control-id': controlId, 'hl7-received-at': receivedAt, 'hl7-raw-id': rawId },
    timestamp: 0,
  };
}

describe('selectRaw', () => {
  const records = [
    rec(0, 'A', '2026-03-01T10:00:00.000Z'),
    rec(1, 'B', '2026-03-01T11:00:00.000Z'),
    rec(2, 'C', '2026-03-02T09:00:00.000Z'),
    // A resend written again after an error ACK: same raw id, later copy.
    rec(3, 'B', '2026-03-01T11:05:00.000Z'),
  ];

  it('given a time range, when selecting, then since is inclusive and until exclusive', () => {
    const got = selectRaw(records, {
      since: Date.parse('2026-03-01T10:00:00.000Z'),
      until: Date.parse('2026-03-02T09:00:00.000Z'),
    });
    expect(got.map((r) => r.offset)).toEqual(['0', '3']);
  });

  it('given control ids, when selecting, then one record per raw id, the last copy', () => {
    expect(selectRaw(records, { controlIds: ['B', 'C'] }).map((r) => r.offset)).toEqual(['3', '2']);
  });

  it('given both, when selecting, then both must hold', () => {
    expect(
      selectRaw(records, { controlIds: ['A', 'C'], since: Date.parse('2026-03-02T00:00:00Z') }),
    ).toHaveLength(1);
  });

  it('given a record without received-at, when a range is asked, then it is not selected', () => {
    const odd = { ...rec(9, 'Z', 'garbage') };
    expect(selectRaw([odd], { since: 0 })).toEqual([]);
    expect(selectRaw([odd], { controlIds: ['Z'] })).toHaveLength(1);
  });
});
