import { describe, expect, it } from 'vitest';
import { verifyText } from './audit.js';

describe('hub audit verify text', () => {
  it('given an intact keyed chain, when printed, then it gives the rows, head and where keying began', () => {
    const text = verifyText(
      { ok: true, rows: 4, lastHash: 'ab'.repeat(32), unkeyedRows: 1, keyedFrom: 2 },
      null,
      '/run/secrets/audit-chain.key',
    );
    expect(text).toBe(
      [
        `audit chain ok: 4 row(s), head ${'ab'.repeat(32)}, keyed from seq 2; 1 unkeyed row(s) before it`,
        'audit verify: ok',
      ].join('\n'),
    );
  });

  it('given keyed rows and no key, when printed, then it names the seq and how to give the key', () => {
    expect(verifyText({ ok: false, rows: 1, brokenAt: 1, reason: 'key-required' }, null)).toBe(
      [
        'audit chain BROKEN at seq 1 (key-required); 0 row(s) before it verify: the rows from there on are keyed; pass --key-file or set AUDIT_CHAIN_KEY_FILE',
        'audit verify: FAILED',
      ].join('\n'),
    );
  });

  it('given a hash-mismatch on the first keyed row, when printed, then it names the key file used as the other possible cause', () => {
    const text = verifyText(
      { ok: false, rows: 3, brokenAt: 3, reason: 'hash-mismatch', firstKeyed: true },
      null,
      '.hub/audit-chain.key',
    );
    expect(text).toContain('audit chain BROKEN at seq 3 (hash-mismatch); 2 row(s) before it verify');
    expect(text).toContain('first keyed row');
    expect(text).toContain('key used: .hub/audit-chain.key');
  });

  it('given a hash-mismatch after the first keyed row, when printed, then it is named as a break and nothing more', () => {
    expect(
      verifyText({ ok: false, rows: 7, brokenAt: 7, reason: 'hash-mismatch' }, null, '.hub/audit-chain.key'),
    ).toBe(
      ['audit chain BROKEN at seq 7 (hash-mismatch); 6 row(s) before it verify', 'audit verify: FAILED'].join(
        '\n',
      ),
    );
  });
});
