import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcess } from '../test/support/processes.js';

/** Holds `port` on loopback for the tests of the enclosing describe, as another `hub up` would. */
function holdPortDuringSuite(port: number): void {
  let holder: Server;
  beforeAll(async () => {
    holder = createServer();
    await new Promise<void>((resolve, reject) => {
      holder.once('error', reject);
      holder.listen(port, '127.0.0.1', () => resolve());
    });
  });
  afterAll(async () => {
    await new Promise<void>((r) => holder.close(() => r()));
  });
}

/** `hub up` as a user runs it until it exits; its exit code and everything it wrote. */
async function runUp(args: string[]): Promise<{ code: number | null; output: string }> {
  const proc = startProcess(['cli/hub.ts', 'up', ...args], {});
  const code = await new Promise<number | null>((resolve) => proc.child.once('exit', (c) => resolve(c)));
  return { code, output: proc.output() };
}

/** `hub up` as a user runs it, with a service port already taken. */
describe('hub up', () => {
  holdPortDuringSuite(8092);

  it('regression: with a service port taken (another hub up), it refuses before starting anything instead of reporting the other process ready', async () => {
    const { code, output } = await runUp(['--only', 'adapter-hl7']);
    expect(code).not.toBe(0);
    expect(output).toMatch(
      /port\(s\) already in use: 8092 \(adapter-hl7 HTTP\); is another `hub up` running\?/,
    );
    expect(output).not.toMatch(/kafka: starting|hub is up/);
  }, 60_000);
});

/** `hub up --secure` checks its own ports (dev + 20 000), so it can run beside a dev `hub up`. */
describe('hub up --secure', () => {
  holdPortDuringSuite(28092);

  it("refuses on a taken port of the secure profile's own, naming it, before starting anything", async () => {
    const { code, output } = await runUp(['--secure', '--only', 'adapter-hl7']);
    expect(code).not.toBe(0);
    expect(output).toMatch(/port\(s\) already in use: 28092 \(adapter-hl7 HTTP\)/);
    expect(output).not.toMatch(/kafka: starting|hub is up/);
  }, 60_000);
});
