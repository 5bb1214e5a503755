import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { acquireLock } from './lock.js';

describe('acquireLock', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hub-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const lockPath = () => join(dir, 'stack.lock');

  it('writes our pid and removes the file on release', async () => {
    const release = await acquireLock(dir, () => undefined);
    expect((await readFile(lockPath(), 'utf8')).trim()).toBe(String(process.pid));
    await release();
    expect(existsSync(lockPath())).toBe(false);
  });

  it('takes over a lock whose holder is gone', async () => {
    const dead = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim();
    await writeFile(lockPath(), `${dead}\n`);
    const release = await acquireLock(dir, () => undefined);
    expect((await readFile(lockPath(), 'utf8')).trim()).toBe(String(process.pid));
    await release();
  });

  it('waits for a live holder, then gives up with HUB_INFRA_FAILED', async () => {
    await writeFile(lockPath(), `${process.ppid}\n`);
    const said: string[] = [];
    const err: unknown = await acquireLock(dir, (m) => said.push(m), 300).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('HUB_INFRA_FAILED');
    expect((err as HubError).message).toBe(`stack: ${lockPath()} held by pid ${process.ppid} for over 0.3s`);
    expect(said).toEqual([`stack: waiting for another start (pid ${process.ppid}) to finish`]);
  });
});
