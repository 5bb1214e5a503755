import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, canonicalJson, rowHash, verifyRows, type ChainedRow } from './chain.js';

/** `keyedFrom`: rows from this seq on are version 2, keyed with `key`. */
function chain(
  n: number,
  keyedFrom = Infinity,
  key: Buffer | null = null,
): (ChainedRow & { hash: string })[] {
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
      ...(i >= keyedFrom ? { chainVersion: 2 as const } : {}),
    };
    const hash = rowHash(row, key);
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

describe('keyed audit hash chain (version 2, HMAC-SHA256)', () => {
  const key = Buffer.from('k'.repeat(48));

  /** Recomputes rows from `from` (0-based) on as someone without the key would: sha256, consistent. */
  function rewriteUnkeyed(rows: (ChainedRow & { hash: string })[], from: number, version: 1 | 2) {
    let prev = rows[from]!.prevHash;
    for (let i = from; i < rows.length; i++) {
      const { hash: _h, chainVersion: _v, ...rest } = rows[i]!;
      const edited: ChainedRow = {
        ...rest,
        prevHash: prev,
        ...(i === from ? { patientId: 'someone-else' } : {}),
      };
      // A version-2 row hashed without the key: what sha256 over the same text gives.
      const hash = rowHash(edited);
      rows[i] = { ...edited, ...(version === 2 ? { chainVersion: 2 as const } : {}), hash };
      prev = hash;
    }
  }

  it('given unkeyed rows then keyed ones, when verified with the key, then it is ok and says where keying began', () => {
    expect(verifyRows(chain(6, 4, key), key)).toEqual({
      ok: true,
      rows: 6,
      lastHash: expect.any(String) as string,
      unkeyedRows: 3,
      keyedFrom: 4,
    });
  });

  it('given keyed rows, when verified without the key or with another, then they do not verify', () => {
    expect(verifyRows(chain(3, 1, key))).toMatchObject({ ok: false, brokenAt: 1, reason: 'key-required' });
    expect(verifyRows(chain(3, 1, key), Buffer.from('x'.repeat(48)))).toMatchObject({
      ok: false,
      brokenAt: 1,
      reason: 'hash-mismatch',
    });
  });

  it('given keyed rows after unkeyed ones and another key, when verified, then the break is the first keyed row and says so', () => {
    // What a verifier holding the wrong key file sees: it must not read as an edit and nothing else.
    expect(verifyRows(chain(5, 3, key), Buffer.from('x'.repeat(48)))).toEqual({
      ok: false,
      rows: 3,
      brokenAt: 3,
      reason: 'hash-mismatch',
      firstKeyed: true,
    });
  });

  it('given an edited keyed row after the first, when verified with the key, then it is a plain hash-mismatch', () => {
    const rows = chain(5, 1, key);
    rows[3] = { ...rows[3]!, outcome: '4' };
    expect(verifyRows(rows, key)).toEqual({ ok: false, rows: 4, brokenAt: 4, reason: 'hash-mismatch' });
  });

  it('given a keyed row rewritten consistently with the unkeyed hash, when verified, then that row is named', () => {
    const rows = chain(5, 1, key);
    rewriteUnkeyed(rows, 2, 2);
    expect(verifyRows(rows, key)).toMatchObject({ ok: false, brokenAt: 3, reason: 'hash-mismatch' });
  });

  it('given the rows after a keyed one rewritten as unkeyed (version 1), when verified, then the downgrade is named', () => {
    const rows = chain(5, 1, key);
    rewriteUnkeyed(rows, 2, 1);
    expect(verifyRows(rows, key)).toMatchObject({ ok: false, brokenAt: 3, reason: 'downgrade' });
  });

  it('given a keyed row, when its version field is dropped and the hash kept, then it does not verify', () => {
    const rows = chain(3, 1, key);
    const { chainVersion: _v, ...rest } = rows[0]!;
    rows[0] = rest;
    expect(verifyRows(rows, key)).toMatchObject({ ok: false, brokenAt: 1, reason: 'hash-mismatch' });
  });

  it('given a keyed row and no key, when hashed, then it is refused rather than hashed unkeyed', () => {
    const { hash: _h, ...row } = chain(1, 1, key)[0]!;
    expect(() => rowHash(row)).toThrow(/chain key/);
  });
});
