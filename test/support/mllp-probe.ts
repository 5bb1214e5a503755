import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

/** What a probe of the MLLP port saw. */
export interface ProbeResult {
  /** The server closed the connection (or refused the handshake) within the wait. */
  closedByServer: boolean;
  /** Everything the server sent: an ACK would be here. */
  received: Buffer;
  /** The TLS handshake completed on the client side (in TLS 1.3 the server may still refuse after). */
  secured: boolean;
  /** Client-side error code, e.g. ECONNRESET or an alert from the server; null if none. */
  error: string | null;
  /** Milliseconds from connect until the close. */
  ms: number;
}

export interface ProbeOptions {
  host?: string;
  /** Connect with TLS (to either port: on a plain port this sends a ClientHello). */
  tls?: ConnectionOptions;
  /** Written once connected (or once the handshake completed). */
  write?: Buffer;
  /** How long to wait for the server to close before giving up (closedByServer false). */
  waitMs?: number;
}

/**
 * Opens a connection to an MLLP port, writes bytes, and waits for the server
 * to close it, recording anything it answered: for the "closed without an
 * ACK" cases (HTTP on MLLP, TLS refusals, idle and per-peer limits), where
 * RawMllpClient's "next ACK" is the wrong question.
 */
export function probeMllp(port: number, o: ProbeOptions = {}): Promise<ProbeResult> {
  const host = o.host ?? '127.0.0.1';
  const t0 = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let secured = false;
    let error: string | null = null;
    const socket: Socket | TLSSocket = o.tls
      ? tlsConnect({ ...o.tls, port, host }, () => {
          secured = true;
          if (o.write) socket.write(o.write);
        })
      : connect({ port, host }, () => {
          if (o.write) socket.write(o.write);
        });
    const timer = setTimeout(() => {
      socket.removeAllListeners('close');
      socket.destroy();
      resolve({
        closedByServer: false,
        received: Buffer.concat(chunks),
        secured,
        error,
        ms: performance.now() - t0,
      });
    }, o.waitMs ?? 10_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.name;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({
        closedByServer: true,
        received: Buffer.concat(chunks),
        secured,
        error,
        ms: performance.now() - t0,
      });
    });
  });
}
