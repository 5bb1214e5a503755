import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Logger } from '../telemetry/logger.js';
import { MllpFramer, mllpFrame } from './mllp.js';

/**
 * MLLP listener on node:net / node:tls. Each connection has its own framer
 * and a strictly serial work queue: message n+1 is handled only after the
 * ACK(s) of message n were written, so per-sender order is kept while
 * connections run side by side (their Kafka writes are coalesced by the
 * producer). See services/adapter-hl7/README.md for why this is not
 * @medplum/hl7's Hl7Server.
 */
export interface MllpPeer {
  /** Process-local connection number, for logs (no addresses in metric labels). */
  id: number;
  remoteAddress: string;
  tls: boolean;
}

export type BrokenFrame =
  /** Larger than the maximum: only a prefix was kept. */
  | { kind: 'oversize'; prefix: Buffer; length: number }
  /** No end block within the frame timeout. */
  | { kind: 'timeout'; bytes: Buffer }
  /** Cut short by a new start block. */
  | { kind: 'incomplete'; bytes: Buffer };

export interface MllpHandler {
  /** Returns the ACK messages to send (unframed), in order; may be empty. Must not throw. */
  onMessage(bytes: Buffer, peer: MllpPeer): Promise<Buffer[]>;
  onBroken(frame: BrokenFrame, peer: MllpPeer): Promise<Buffer[]>;
  onJunk?(length: number, peer: MllpPeer): void;
}

export interface MllpServerOptions {
  host: string;
  port: number;
  tls?: { cert: Buffer | string; key: Buffer | string } | undefined;
  maxMessageBytes: number;
  /** A frame must end this long after its start block, or it is abandoned. */
  frameTimeoutMs: number;
  /** Complete frames queued per connection before reading from it pauses. */
  maxQueuedFrames?: number;
  /**
   * Bytes of complete frames queued per connection before reading from it
   * pauses (2 x maxMessageBytes by default): with 16 MiB frames, 32 queued
   * frames would be 512 MiB held for one sender.
   */
  maxQueuedBytes?: number;
  /** Further connections are refused by the listener (file descriptors are finite). */
  maxConnections?: number;
  logger: Logger;
}

export interface MllpServer {
  listen(): Promise<{ host: string; port: number }>;
  /** Stops accepting, lets each connection finish what it has received, then closes (forcibly after graceMs). */
  close(graceMs?: number): Promise<void>;
  connectionCount(): number;
}

type Work = { kind: 'message'; bytes: Buffer } | { kind: 'broken'; frame: BrokenFrame };

interface Conn {
  socket: Socket;
  peer: MllpPeer;
  framer: MllpFramer;
  queue: Work[];
  /** Bytes held by the frames in `queue`. */
  queuedBytes: number;
  running: boolean;
  paused: boolean;
  closing: boolean;
  frameTimer: NodeJS.Timeout | null;
  idle: Promise<void>;
  markIdle: () => void;
}

export function createMllpServer(opts: MllpServerOptions, handler: MllpHandler): MllpServer {
  const log = opts.logger.child({ component: 'mllp' });
  const maxQueued = opts.maxQueuedFrames ?? 32;
  const maxQueuedBytes = opts.maxQueuedBytes ?? 2 * opts.maxMessageBytes;
  const conns = new Set<Conn>();
  let nextId = 1;
  let stopping = false;

  function onConnection(socket: Socket, tls: boolean): void {
    if (stopping) {
      socket.destroy();
      return;
    }
    const conn: Conn = {
      socket,
      peer: { id: nextId++, remoteAddress: socket.remoteAddress ?? '', tls },
      framer: new MllpFramer({ maxMessageBytes: opts.maxMessageBytes }),
      queue: [],
      queuedBytes: 0,
      running: false,
      paused: false,
      closing: false,
      frameTimer: null,
      idle: Promise.resolve(),
      markIdle: () => undefined,
    };
    conns.add(conn);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    log.debug({ conn: conn.peer.id, tls }, 'connection opened');

    socket.on('data', (chunk: Buffer) => {
      if (conn.closing) return;
      let events;
      try {
        events = conn.framer.push(chunk);
      } catch (err) {
        // The framer is total over its input; this guards against a bug, not bad bytes.
        log.error({ conn: conn.peer.id, err: errName(err) }, 'framer failed; closing connection');
        socket.destroy();
        return;
      }
      for (const ev of events) {
        switch (ev.kind) {
          case 'frame':
            enqueue(conn, { kind: 'message', bytes: ev.bytes });
            break;
          case 'oversize':
            enqueue(conn, {
              kind: 'broken',
              frame: { kind: 'oversize', prefix: ev.prefix, length: ev.length },
            });
            break;
          case 'incomplete':
            enqueue(conn, { kind: 'broken', frame: { kind: 'incomplete', bytes: ev.bytes } });
            break;
          case 'junk':
            handler.onJunk?.(ev.length, conn.peer);
            break;
        }
      }
      // A frame ended in this read: the timeout restarts for whatever frame is open now.
      if (events.some((e) => e.kind !== 'junk')) clearFrameTimer(conn);
      armFrameTimer(conn);
    });
    socket.on('error', (err) => {
      log.debug({ conn: conn.peer.id, err: errName(err) }, 'socket error');
    });
    socket.on('close', () => {
      clearFrameTimer(conn);
      conn.closing = true;
      conns.delete(conn);
      log.debug({ conn: conn.peer.id }, 'connection closed');
    });
  }

  function armFrameTimer(conn: Conn): void {
    if (!conn.framer.midFrame) {
      clearFrameTimer(conn);
      return;
    }
    if (conn.frameTimer) return;
    conn.frameTimer = setTimeout(() => {
      conn.frameTimer = null;
      if (conn.paused) {
        // Not reading is our doing (backpressure), not the sender's: wait again.
        armFrameTimer(conn);
        return;
      }
      const held = conn.framer.abandon();
      if (held) enqueue(conn, { kind: 'broken', frame: { kind: 'timeout', bytes: held } });
    }, opts.frameTimeoutMs);
    conn.frameTimer.unref();
  }

  function clearFrameTimer(conn: Conn): void {
    if (conn.frameTimer) clearTimeout(conn.frameTimer);
    conn.frameTimer = null;
  }

  function enqueue(conn: Conn, w: Work): void {
    conn.queue.push(w);
    conn.queuedBytes += workBytes(w);
    if ((conn.queue.length >= maxQueued || conn.queuedBytes >= maxQueuedBytes) && !conn.paused) {
      // A sender that pipelines without waiting for ACKs is slowed down by TCP, not by memory.
      conn.paused = true;
      conn.socket.pause();
    }
    if (!conn.running) {
      conn.running = true;
      conn.idle = new Promise<void>((r) => (conn.markIdle = r));
      void drain(conn);
    }
  }

  async function drain(conn: Conn): Promise<void> {
    try {
      for (;;) {
        const w = conn.queue.shift();
        if (!w) break;
        conn.queuedBytes -= workBytes(w);
        if (
          conn.paused &&
          conn.queue.length < maxQueued / 2 &&
          conn.queuedBytes < maxQueuedBytes / 2 &&
          !stopping
        ) {
          conn.paused = false;
          conn.socket.resume();
        }
        let acks: Buffer[];
        try {
          acks =
            w.kind === 'message'
              ? await handler.onMessage(w.bytes, conn.peer)
              : await handler.onBroken(w.frame, conn.peer);
        } catch (err) {
          // Handlers answer every failure with an ACK; reaching here is a bug.
          // Without an ACK the sender resends, so closing loses nothing.
          log.error({ conn: conn.peer.id, err: errName(err) }, 'handler failed; closing connection');
          conn.queue = [];
          conn.socket.destroy();
          break;
        }
        if (conn.socket.destroyed) {
          conn.queue = [];
          break;
        }
        for (const a of acks) conn.socket.write(mllpFrame(a));
      }
    } finally {
      conn.running = false;
      conn.markIdle();
    }
  }

  const server: Server = opts.tls
    ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, (s) => onConnection(s, true))
    : createNetServer((s) => onConnection(s, false));
  server.maxConnections = opts.maxConnections ?? 1000;
  server.on('error', (err) => log.error({ err: errName(err) }, 'listener error'));
  if (opts.tls) {
    // A failed handshake is the client's problem, not a reason to log its bytes.
    server.on('tlsClientError', (err) => log.debug({ err: errName(err) }, 'tls handshake failed'));
  }

  return {
    listen() {
      return new Promise((resolve, reject) => {
        const onErr = (err: Error) => reject(err);
        server.once('error', onErr);
        server.listen(opts.port, opts.host, () => {
          server.off('error', onErr);
          const a = server.address();
          resolve({
            host: opts.host,
            port: typeof a === 'object' && a ? a.port : opts.port,
          });
        });
      });
    },
    async close(graceMs = 10_000) {
      stopping = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      const all = [...conns];
      for (const c of all) {
        // Stop reading: what is already received is finished, nothing new is taken.
        c.socket.pause();
        clearFrameTimer(c);
      }
      const finished = Promise.all(
        all.map(async (c) => {
          await c.idle;
          if (c.socket.destroyed) return;
          // Done as soon as the ACKs are handed to the kernel, not when the
          // sender closes: a sender that keeps its connection open (they
          // all do) held every stop for the whole grace. Reading resumes,
          // discarding, so that no unread bytes turn the close into a reset
          // that could drop the last ACK; end() flushes before the FIN.
          c.closing = true;
          c.socket.resume();
          await new Promise<void>((r) => {
            c.socket.once('close', () => r());
            c.socket.end(() => r());
          });
          c.socket.destroy();
        }),
      );
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        finished,
        new Promise<void>((r) => {
          timer = setTimeout(r, graceMs);
          timer.unref();
        }),
      ]);
      if (timer) clearTimeout(timer);
      for (const c of all) if (!c.socket.destroyed) c.socket.destroy();
      await closed;
    },
    connectionCount: () => conns.size,
  };
}

function workBytes(w: Work): number {
  if (w.kind === 'message') return w.bytes.length;
  return w.frame.kind === 'oversize' ? w.frame.prefix.length : w.frame.bytes.length;
}

function errName(err: unknown): string {
  // Error codes/names only: a message could quote input bytes.
  const e = err as { code?: unknown; name?: unknown };
  return typeof e.code === 'string' ? e.code : typeof e.name === 'string' ? e.name : 'Error';
}
