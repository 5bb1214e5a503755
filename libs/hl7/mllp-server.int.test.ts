import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCa, issueCertificate, readCertificate } from '../stack/certs.js';
import { createLogger } from '../telemetry/logger.js';
import { probeMllp } from '../../test/support/mllp-probe.js';
import { createMllpServer, type MllpCloseReason, type MllpServer } from './mllp-server.js';

/**
 * The listener's own limits on a TLS port, without Kafka: each refusal is
 * counted once under its own reason, and a client that never finishes a
 * handshake does not keep its socket (node:tls leaves it open on a handshake
 * timeout unless the listener closes it).
 */
describe('MLLP listener over TLS: limits', () => {
  let dir: string;
  let server: MllpServer;
  let port: number;
  let ca: Buffer;
  const counts = new Map<MllpCloseReason, number>();
  const count = (r: MllpCloseReason) => counts.get(r) ?? 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mllp-tls-'));
    const auth = await ensureCa(join(dir, 'ca'));
    const cert = await readCertificate(
      await issueCertificate(auth, join(dir, 'certs'), 'hub-mllp', { hosts: ['127.0.0.1'], usage: 'server' }),
    );
    ca = cert.ca;
    server = createMllpServer(
      {
        host: '127.0.0.1',
        port: 0,
        tls: { cert: cert.cert, key: cert.key },
        maxMessageBytes: 64 * 1024,
        frameTimeoutMs: 1_000,
        idleTimeoutMs: 600,
        maxConnectionsPerPeer: 1,
        onClosed: (r) => counts.set(r, count(r) + 1),
        logger: createLogger({ name: 'mllp-tls-test', level: 'silent' }),
      },
      { onMessage: () => Promise.resolve([]), onBroken: () => Promise.resolve([]) },
    );
    port = (await server.listen()).port;
  });

  afterAll(async () => {
    await server?.close(100);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('given one open TLS connection and a cap of 1, then a second is closed on accept, counted once as peer_limit, and the first is closed when idle', async () => {
    const first = tlsConnect({ port, host: '127.0.0.1', ca });
    const firstClosed = new Promise<number>((r) => {
      const t0 = performance.now();
      first.once('close', () => r(performance.now() - t0));
    });
    await new Promise((r) => first.once('secureConnect', r));
    const second = await probeMllp(port, { tls: { ca } });
    expect(second.closedByServer).toBe(true);
    expect(second.secured).toBe(false);
    expect(count('peer_limit')).toBe(1);
    expect(count('tls_handshake')).toBe(0);
    expect(await firstClosed).toBeGreaterThanOrEqual(500);
    expect(count('idle_timeout')).toBe(1);
  });

  it('given a client that connects and never starts the handshake, then it is closed at the handshake timeout', async () => {
    const raw = netConnect({ port, host: '127.0.0.1' });
    const t0 = performance.now();
    await new Promise((r) => raw.once('close', r));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(500);
    expect(count('tls_handshake')).toBe(1);
  });
});
