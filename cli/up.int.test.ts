import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcess } from '../test/support/processes.js';

/** `hub up` as a user runs it, with a service port already taken. */
describe('hub up', () => {
  let holder: Server;

  beforeAll(async () => {
    holder = createServer();
    await new Promise<void>((resolve, reject) => {
      holder.once('error', reject);
      holder.listen(8092, '127.0.0.1', () => resolve());
    });
  });
  afterAll(async () => {
    await new Promise<void>((r) => holder.close(() => r()));
  });

  it('regression: with a service port taken (another hub up), it refuses before starting anything instead of reporting the other process ready', async () => {
    const proc = startProcess(['cli/hub.ts', 'up', '--only', 'adapter-hl7'], {});
    const code = await new Promise<number | null>((resolve) => proc.child.once('exit', (c) => resolve(c)));
    expect(code).not.toBe(0);
    expect(proc.output()).toMatch(
      /port\(s\) already in use: 8092 \(adapter-hl7 HTTP\); is another `hub up` running\?/,
    );
    expect(proc.output()).not.toMatch(/kafka: starting|hub is up/);
  }, 60_000);
});
