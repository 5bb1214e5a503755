import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/support/processes.js';
import type { ComponentSpec } from './components.js';
import { stackConfig, type StackConfig } from './config.js';
import { livePid, presence, reuseOrStart, type Spawned } from './supervisor.js';

describe('pid files and presence', () => {
  let cfg: StackConfig;
  let port: number;
  const spec = (marker: string, answers = false): ComponentSpec => ({
    name: 'kafka',
    port,
    host: '127.0.0.1',
    cmdlineMarker: marker,
    readyMs: 1000,
    answers: () => Promise.resolve(answers),
  });

  beforeEach(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hub-supervisor-'));
    cfg = stackConfig('dev', { HUB_CACHE_DIR: '/cache', HUB_DATA_DIR: dir });
    port = await freePort();
  });
  afterEach(async () => {
    await rm(cfg.dataDir, { recursive: true, force: true });
  });

  it('trusts a pid file only when the live process is the component (a recycled pid is a stranger)', async () => {
    await writeFile(join(cfg.dataDir, 'kafka.pid'), `${process.pid}\n`);
    expect(await livePid(cfg, spec('kafka.Kafka'))).toBeNull();
    expect(await livePid(cfg, spec('node'))).toBe(process.pid);
    await writeFile(join(cfg.dataDir, 'kafka.pid'), 'garbage\n');
    expect(await livePid(cfg, spec('node'))).toBeNull();
  });

  it('finds a component absent when nothing runs, and ready when it answers', async () => {
    // A pid file naming a process that is not the component (here: this test) does not count.
    await writeFile(join(cfg.dataDir, 'kafka.pid'), `${process.pid}\n`);
    expect(await presence(cfg, spec('kafka.Kafka'))).toEqual({ kind: 'absent' });
    expect(existsSync(join(cfg.dataDir, 'kafka.pid'))).toBe(false);
    expect(await presence(cfg, spec('kafka.Kafka', true))).toEqual({ kind: 'ready', pid: null });
  });

  it('reuses a ready component and starts an absent one', async () => {
    const said: string[] = [];
    const started = { pid: 7 } as Spawned;
    const start = () => Promise.resolve(started);
    const log = (m: string) => said.push(m);
    expect(await reuseOrStart(cfg, spec('x'), { kind: 'ready', pid: 5 }, start, log)).toBeNull();
    expect(said).toEqual([`kafka: already running (pid 5) on 127.0.0.1:${port}, reusing`]);
    expect(await reuseOrStart(cfg, spec('x'), { kind: 'absent' }, start, log)).toBe(started);
  });
});
