// One start at a time per data dir: a lock file holding the starter's pid,
// taken over when that pid is gone (a start killed half-way leaves it behind).
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { HubError } from '../errors/index.js';
import type { Log } from './config.js';
import { errno, isAlive, sleep } from './process.js';

const LOCK_WAIT_MS = 180_000;

/**
 * Serialises concurrent startStack calls on one data dir (e.g. infra:up racing a test run).
 * Resolves with the release function.
 */
export async function acquireLock(
  dataDir: string,
  log: Log,
  waitMs = LOCK_WAIT_MS,
): Promise<() => Promise<void>> {
  const path = join(dataDir, 'stack.lock');
  await mkdir(dataDir, { recursive: true });
  const deadline = Date.now() + waitMs;
  let announced = false;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => unlink(path).catch(() => undefined);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt((await readFile(path, 'utf8').catch(() => '')).trim(), 10);
    if (!Number.isInteger(holder) || holder === process.pid || !isAlive(holder)) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline)
      throw new HubError(
        'HUB_INFRA_FAILED',
        `stack: ${path} held by pid ${holder} for over ${waitMs / 1000}s`,
      );
    if (!announced) log(`stack: waiting for another start (pid ${holder}) to finish`);
    announced = true;
    await sleep(250);
  }
}
