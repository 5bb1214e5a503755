import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, canonicalJson, rowHash, verifyRows, type ChainedRow } from './chain.js';

function chain(n: number): (ChainedRow & { hash: string })[] {
  const rows: (ChainedRow & { hash: string })[] = [];
  let prev = GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const row: ChainedRow = {
      seq: i,
      auditId: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`,
      recordedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      patientId: `P${i % 3}`,
      agent: 'u',
      clientId: 'c',
      action: 'read',
      route: 'GET /fhir/Patient/:id',
      outcome: '0',
      sourceAddress: '127.0.0.1',
      event: { resourceType: 'AuditEvent', n: i, nested: { b: 1, a: [2, { z: 1, y: 2 }] } },
      prevHash: prev,
    };
    const hash = rowHash(row);
    rows.push({ ...row, hash });
    prev = hash;
  }
  return rows;
}

describe('canonicalJson', () => {
  it('given objects with keys in any order, when canonicalised, then the text is the same', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 2], c: null } })).toBe(
      canonicalJson({ a: { c: null, d: [1, 2] }, b: 1 }),
    );
    expect(canonicalJson({ b: 1, a: 'x' })).toBe('{"a":"x","b":1}');
  });
});

describe('audit hash chain', () => {
  it('given an intact chain, when verified, then it is ok', () => {
    expect(verifyRows(chain(5))).toMatchObject({ ok: true, rows: 5 });
  });
  it('given one edited row, when verified, then that row is named', () => {
    const rows = chain(5);
    rows[2] = { ...rows[2]!, outcome: '4' };
    expect(verifyRows(rows)).toEqual({ ok: false, rows: 3, brokenAt: 3, reason: 'hash-mismatch' });
  });
  it('given an edited row whose hash was recomputed, when verified, then the next row breaks', () => {
    const rows = chain(5);
    const { hash: _h, ...rest } = rows[1]!;
    const edited = { ...rest, patientId: 'someone-else' };
    rows[1] = { ...edited, hash: rowHash(edited) };
    expect(verifyRows(rows)).toMatchObject({ ok: false, brokenAt: 3, reason: 'prev-hash-mismatch' });
  });
  it('given a deleted row, when verified, then the gap is named', () => {
    const rows = chain(5);
    rows.splice(1, 1);
    expect(verifyRows(rows)).toMatchObject({ ok: false, brokenAt: 3, reason: 'seq-gap' });
  });
});
