import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { MllpFramer, mllpFrame } from '../../libs/hl7/mllp.js';
import { adtA01 } from './hl7-fixtures.js';
import { ackField } from './raw-mllp-client.js';
import { REFUSED, leaked, type SecurityReport, type Verdict } from './security-runner.js';
import type { MllpTarget } from './security-target.js';

/**
 * MLLP abuse: connections that must be closed (idle, trickling, not MLLP at
 * all) and frames that must never be acknowledged AA (an AA means the
 * adapter published the message). Each probe awaits the socket's 'close'
 * against a deadline derived from the listener's configured bounds.
 */
interface Observed {
  /** MSA-1 of every ACK received. */
  acks: string[];
  closed: boolean;
  elapsedMs: number;
  socket: Socket;
}

/** Connects; `drive` writes; resolves at 'close' or at the deadline (then the socket is destroyed). */
function observe(
  m: MllpTarget,
  deadlineMs: number,
  drive: (s: Socket) => void,
  until?: (o: Observed) => boolean,
): Promise<Observed> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = connect({ host: m.host, port: m.port });
    const framer = new MllpFramer({ maxMessageBytes: 1_000_000 });
    const o: Observed = { acks: [], closed: false, elapsedMs: 0, socket: s };
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      o.closed = closed;
      o.elapsedMs = Date.now() - t0;
      if (!closed) s.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish(false), deadlineMs);
    s.on('data', (c: Buffer) => {
      for (const ev of framer.push(c))
        if (ev.kind === 'frame') o.acks.push(ackField(ev.bytes.toString('latin1'), 'MSA', 1));
      if (until?.(o)) finish(false);
    });
    s.on('error', () => undefined);
    s.on('close', () => finish(true));
    s.once('connect', () => drive(s));
  });
}

const mrn = () => `SECMLLP-${randomBytes(4).toString('hex')}`;
const ctl = () => `SEC${randomBytes(5).toString('hex')}`;

/** An HTTP POST (as a web page could send) whose body is an MLLP frame. */
function httpWithFrame(host: string): Buffer {
  const frame = mllpFrame(adtA01(ctl(), mrn()));
  const head = `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Type: text/plain\r\nContent-Length: ${frame.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), frame]);
}

/** The bytes of a real TLS ClientHello, captured from node:tls against a local socket. */
export function clientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const srv = createServer((sock) => {
      sock.once('data', (b: Buffer) => {
        resolve(b);
        sock.destroy();
        srv.close();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      const c = tlsConnect({ host: '127.0.0.1', port, servername: 'hub.example', rejectUnauthorized: false });
      c.on('error', () => undefined);
    });
    srv.on('error', reject);
  });
}

interface MllpProbe {
  label: string;
  run(): Promise<Verdict>;
}

/** AA for an abusive connection, or held open past its bound. */
function verdictOf(o: Observed, boundMs: number, what: string): Verdict {
  if (o.acks.includes('AA') || o.acks.includes('CA'))
    return leaked(`${what}: acknowledged ${o.acks.join(',')} (published)`);
  if (!o.closed)
    return leaked(`${what}: connection still open after ${o.elapsedMs} ms (bound ${boundMs} ms)`);
  return REFUSED;
}

function probes(m: MllpTarget, hello: Buffer): MllpProbe[] {
  const idleBound = m.idleTimeoutMs + m.slackMs;
  const closeBound = m.slackMs;
  const idle = (n: number): MllpProbe => ({
    label: `idle socket #${n} (no bytes)`,
    run: async () => verdictOf(await observe(m, idleBound, () => undefined), idleBound, 'idle socket'),
  });
  const slowBound = m.frameTimeoutMs + 1000 + m.slackMs;
  return [
    idle(1),
    idle(2),
    idle(3),
    {
      label: 'slowloris: one byte a second of a frame',
      run: async () => {
        const bytes = mllpFrame(adtA01(ctl(), mrn()));
        let i = 0;
        let tick: NodeJS.Timeout | undefined;
        const o = await observe(m, slowBound, (s) => {
          const send = () => {
            if (i < bytes.length && !s.destroyed) s.write(bytes.subarray(i, ++i));
          };
          send();
          tick = setInterval(send, 1000);
        });
        clearInterval(tick);
        return verdictOf(o, slowBound, 'slowloris');
      },
    },
    {
      label: `oversize frame (${m.maxMessageBytes + 4096} bytes)`,
      run: async () => {
        const msg = `${adtA01(ctl(), mrn())}\rNTE|1||${'x'.repeat(m.maxMessageBytes + 4096)}`;
        const o = await observe(
          m,
          closeBound + 10_000,
          (s) => s.write(mllpFrame(msg)),
          (x) => x.acks.length > 0,
        );
        return o.acks.includes('AA') ? leaked(`oversize frame acknowledged AA`) : REFUSED;
      },
    },
    {
      label: 'HTTP POST with an MLLP frame in its body',
      run: async () =>
        verdictOf(
          await observe(m, closeBound, (s) => s.write(httpWithFrame(`${m.host}:${m.port}`))),
          closeBound,
          'HTTP POST on MLLP',
        ),
    },
    {
      label: 'HTTP GET request line',
      run: async () =>
        verdictOf(
          await observe(m, closeBound, (s) => s.write(`GET / HTTP/1.1\r\nHost: ${m.host}\r\n\r\n`)),
          closeBound,
          'HTTP GET on MLLP',
        ),
    },
    {
      label: 'TLS ClientHello on the plain port',
      run: async () =>
        verdictOf(await observe(m, closeBound, (s) => s.write(hello)), closeBound, 'TLS ClientHello on MLLP'),
    },
    {
      label: 'idle after a valid message (AA expected, then close)',
      run: async () => {
        const o = await observe(m, idleBound + 15_000, (s) => s.write(mllpFrame(adtA01(ctl(), mrn()))));
        // The AA here is the control: the listener does accept a real message.
        if (!o.acks.includes('AA'))
          return leaked(
            `control message not acknowledged AA (got ${o.acks.join(',') || 'nothing'}): the listener cannot be judged`,
          );
        return o.closed
          ? REFUSED
          : leaked(
              `connection still open ${o.elapsedMs} ms after a message (bound ${idleBound} ms after it)`,
            );
      },
    },
  ];
}

/** A connected socket (or one already closed by the listener: its 'close' may come later). */
function openSocket(m: MllpTarget): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect({ host: m.host, port: m.port });
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('close', () => resolve(s));
  });
}

/** Sends one message; resolves with MSA-1 of the first ACK, 'closed', or 'timeout'. */
function firstAnswer(s: Socket, deadlineMs: number): Promise<string> {
  if (s.destroyed) return Promise.resolve('closed');
  return new Promise((resolve) => {
    const framer = new MllpFramer({ maxMessageBytes: 1_000_000 });
    const timer = setTimeout(() => resolve('timeout'), deadlineMs);
    const done = (v: string) => {
      clearTimeout(timer);
      resolve(v);
    };
    s.on('data', (c: Buffer) => {
      const f = framer.push(c).find((ev) => ev.kind === 'frame');
      if (f?.kind === 'frame') done(ackField(f.bytes.toString('latin1'), 'MSA', 1));
    });
    s.once('close', () => done('closed'));
    s.write(mllpFrame(adtA01(ctl(), mrn())));
  });
}

/**
 * Opens cap + 2 connections from this address and keeps them all open, then
 * sends a message on each: at most cap may be acknowledged AA.
 */
async function perPeerProbe(m: MllpTarget, cap: number): Promise<Verdict> {
  const n = cap + 2;
  const sockets = await Promise.all(Array.from({ length: n }, () => openSocket(m)));
  const answers = await Promise.all(sockets.map((s) => firstAnswer(s, m.slackMs + 15_000)));
  for (const s of sockets) s.destroy();
  const accepted = answers.filter((a) => a === 'AA').length;
  return accepted > cap
    ? leaked(`${accepted} of ${n} simultaneous connections from one address acknowledged AA (cap ${cap})`)
    : REFUSED;
}

export async function runMllpProbes(report: SecurityReport, m: MllpTarget): Promise<void> {
  const hello = await clientHello();
  const all = probes(m, hello);
  const verdicts = await Promise.all(all.map((p) => p.run()));
  all.forEach((p, i) =>
    report.record('mllp', `mllp ${m.host}:${m.port} [${p.label}]`, verdicts[i] ?? REFUSED),
  );
  if (m.maxConnectionsPerPeer) {
    report.record(
      'mllp',
      `mllp ${m.host}:${m.port} [${m.maxConnectionsPerPeer + 2} connections from one address]`,
      await perPeerProbe(m, m.maxConnectionsPerPeer),
    );
  }
}
