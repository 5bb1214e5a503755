import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDevChainKey, readChainKey } from './key.js';

describe('audit chain key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'chain-key-'));

  it('given no dev key yet, when ensured twice, then one key is created with mode 0600 and kept', () => {
    const file = join(dir, 'sub', 'audit-chain.key');
    const a = ensureDevChainKey(file);
    const b = ensureDevChainKey(file);
    expect(a.equals(b)).toBe(true);
    expect(a.length).toBeGreaterThanOrEqual(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('given a short or missing key file, when read, then it is a config error naming the file, not its content', () => {
    const short = join(dir, 'short.key');
    writeFileSync(short, 'secret-but-short\n');
    expect(() => readChainKey(short)).toThrow(/fewer than 32/);
    expect(() => readChainKey(short)).not.toThrow(/secret-but-short/);
    expect(() => readChainKey(join(dir, 'absent.key'))).toThrow(/cannot be read/);
  });

  it('given a key file with a trailing newline, when read, then the newline is not part of the key', () => {
    const file = join(dir, 'ok.key');
    writeFileSync(file, `${'a'.repeat(40)}\n`);
    expect(readChainKey(file).toString('utf8')).toBe('a'.repeat(40));
  });
});
