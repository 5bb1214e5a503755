// Readiness probes: whether something on a port speaks the protocol we expect.
import { get as httpGet } from 'node:http';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * A Kafka ApiVersions v0 round trip. The broker binds its listener long before it
 * serves requests, so an open port alone is not readiness; it also tells a Kafka
 * broker apart from an unrelated process squatting on the port.
 */
export function kafkaAnswers(
  host: string,
  port: number,
  timeoutMs = 2000,
  /** A TLS listener (the secure profile): ApiVersions is answered before SASL authentication. */
  tls?: { caFile: string },
): Promise<boolean> {
  return new Promise((res) => {
    const clientId = Buffer.from('hub-stack');
    const correlationId = 0x48554221;
    const req = Buffer.alloc(4 + 10 + clientId.length);
    req.writeInt32BE(10 + clientId.length, 0);
    req.writeInt16BE(18, 4); // ApiVersions
    req.writeInt16BE(0, 6);
    req.writeInt32BE(correlationId, 8);
    req.writeInt16BE(clientId.length, 12);
    clientId.copy(req, 14);

    let sock: Socket;
    try {
      sock = tls ? tlsConnect({ host, port, ca: readFileSync(tls.caFile) }) : connect({ host, port });
    } catch {
      res(false);
      return;
    }
    let got = Buffer.alloc(0);
    const done = (ok: boolean) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    // Closed without a full answer (a TLS listener given plaintext sends an alert and hangs up).
    sock.once('close', () => done(false));
    sock.once(tls ? 'secureConnect' : 'connect', () => sock.write(req));
    sock.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 10) return;
      const errorCode = got.readInt16BE(8);
      // 35 = UNSUPPORTED_VERSION: still a live broker that would negotiate up.
      done(got.readInt32BE(4) === correlationId && (errorCode === 0 || errorCode === 35));
    });
  });
}

/** node:http rather than fetch: no pooled keep-alive socket outlives the probe and holds the caller's loop. */
export function httpOk(
  url: string,
  timeoutMs = 2000,
  headers: Record<string, string> = {},
): Promise<boolean> {
  return new Promise((res) => {
    const req = httpGet(url, { agent: false, timeout: timeoutMs, headers }, (r) => {
      r.resume();
      r.once('end', () => res((r.statusCode ?? 0) >= 200 && (r.statusCode ?? 0) < 300));
      r.once('error', () => res(false));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => res(false));
  });
}
