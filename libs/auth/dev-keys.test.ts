import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureDevKeys, readDevKeys } from './jwt.js';

describe('dev key set created on first use', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const d = join(mkdtempSync(join(tmpdir(), 'hub-devkeys-')), 'dev-keys');
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(join(d, '..'), { recursive: true, force: true });
  });

  it('given services starting together on a fresh tree, when each ensures the keys, then all get the one pair on disk', async () => {
    const dir = fresh();
    const got = await Promise.all(Array.from({ length: 8 }, () => ensureDevKeys(dir)));
    const onDisk = readDevKeys(dir);
    expect(new Set(got.map((k) => k.kid))).toEqual(new Set([onDisk.kid]));
    expect(got.every((k) => JSON.stringify(k.jwks) === JSON.stringify(onDisk.jwks))).toBe(true);
    // No temporary files left behind.
    expect(readdirSync(dir).sort()).toEqual(['jwks.json', 'private.jwk.json']);
  });

  it('given a key set, then it is read, not replaced', async () => {
    const dir = fresh();
    const first = await ensureDevKeys(dir);
    expect((await ensureDevKeys(dir)).kid).toBe(first.kid);
  });
});
