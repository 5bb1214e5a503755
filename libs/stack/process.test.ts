import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { commandNotFound, failure, readLogTail, run } from './process.js';

describe('run', () => {
  it('reports a missing command as HUB_INFRA_FAILED that a fallback can recognise', async () => {
    const err: unknown = await run('hub-no-such-command', ['x']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('HUB_INFRA_FAILED');
    expect((err as HubError).message).toBe('hub-no-such-command not found on PATH');
    expect(commandNotFound(err)).toBe(true);
  });

  it('reports a failing command with the tail of its output', async () => {
    const err: unknown = await run('sh', ['-c', 'echo out; echo err >&2; exit 3']).catch((e: unknown) => e);
    expect((err as HubError).code).toBe('HUB_INFRA_FAILED');
    expect((err as HubError).message).toMatch(/^sh -c .* failed \(Command failed: .*\):\nout\n\nerr$/);
    expect(commandNotFound(err)).toBe(false);
  });

  it('resolves with the output of a command that succeeds', async () => {
    expect((await run('sh', ['-c', 'echo ok'])).stdout).toBe('ok\n');
  });
});

describe('log tails', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hub-logtail-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the last lines of a log, and says when there is none', async () => {
    const path = join(dir, 'k.log');
    await writeFile(path, `${Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n')}\n`);
    expect(await readLogTail(path, 2)).toBe('line 28\nline 29');
    expect(await readLogTail(join(dir, 'none.log'))).toBe('(no log file)');
    await writeFile(join(dir, 'empty.log'), '');
    expect(await readLogTail(join(dir, 'empty.log'))).toBe('(log is empty)');
  });

  it('makes a startup failure a HUB_INFRA_FAILED carrying the log tail', async () => {
    const path = join(dir, 'r.log');
    await writeFile(path, 'boom\n');
    const err = await failure('registry', 'not ready', path);
    expect(err.code).toBe('HUB_INFRA_FAILED');
    expect(err.message).toBe(`registry: not ready; last 20 lines of ${path}:\nboom`);
  });
});
