import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { MllpFramer, mllpFrame } from '../../libs/hl7/mllp.js';

/**
 * A bare MLLP client over node:net for tests and the benchmark: it writes
 * exactly the bytes it is given (so framing edge cases can be sent) and
 * queues every ACK frame it receives.
 */
export class RawMllpClient {
  private readonly framer = new MllpFramer({ maxMessageBytes: 1_000_000 });
  private readonly acks: string[] = [];
  private waiters: { resolve: (s: string) => void; reject: (e: Error) => void }[] = [];
  private closedErr: Error | null = null;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.framer.push(chunk)) {
        if (ev.kind !== 'frame') continue;
        const text = ev.bytes.toString('utf8');
        const w = this.waiters.shift();
        if (w) w.resolve(text);
        else this.acks.push(text);
      }
    });
    const fail = (err: Error) => {
      this.closedErr = err;
      for (const w of this.waiters.splice(0)) w.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawMllpClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host });
      s.setNoDelay(true);
      s.once('connect', () => resolve(new RawMllpClient(s)));
      s.once('error', reject);
    });
  }

  static connectTls(port: number, opts: ConnectionOptions, host = '127.0.0.1'): Promise<RawMllpClient> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ ...opts, port, host });
      s.setNoDelay(true);
      s.once('secureConnect', () => resolve(new RawMllpClient(s)));
      s.once('error', reject);
    });
  }

  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve())),
    );
  }

  send(text: string): Promise<void> {
    return this.write(mllpFrame(text));
  }

  nextAck(timeoutMs = 30_000): Promise<string> {
    const ready = this.acks.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.closedErr) return Promise.reject(this.closedErr);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== entry);
        reject(new Error(`no ACK within ${timeoutMs} ms`));
      }, timeoutMs);
      const entry = {
        resolve: (s: string) => {
          clearTimeout(timer);
          resolve(s);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(entry);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Field n of the named segment of an ACK (MSH counts MSH-1 as the separator). */
export function ackField(ack: string, segment: string, n: number): string {
  // The ACK uses the delimiters of the message it answers: MSH-1 says which.
  const fs = ack.charAt(3) || '|';
  const seg = ack.split('\r').find((s) => s.startsWith(`${segment}${fs}`)) ?? '';
  const parts = seg.split(fs);
  return segment === 'MSH' ? (n === 1 ? fs : (parts[n - 1] ?? '')) : (parts[n] ?? '');
}
