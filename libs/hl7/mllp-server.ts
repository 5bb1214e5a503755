import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Logger } from '../telemetry/logger.js';
import { MllpFramer, mllpFrame, type FrameEvent } from './mllp.js';

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

/** What every connection of one listener shares: the handler, the limits, whether the listener is stopping. */
interface ConnContext {
  handler: MllpHandler;
  log: Logger;
  maxMessageBytes: number;
  frameTimeoutMs: number;
  maxQueued: number;
  maxQueuedBytes: number;
  stopping(): boolean;
}

export function createMllpServer(opts: MllpServerOptions, handler: MllpHandler): MllpServer {
  const log = opts.logger.child({ component: 'mllp' });
  const conns = new Set<MllpConnection>();
  let nextId = 1;
  let stopping = false;
  const ctx: ConnContext = {
    handler,
    log,
    maxMessageBytes: opts.maxMessageBytes,
    frameTimeoutMs: opts.frameTimeoutMs,
    maxQueued: opts.maxQueuedFrames ?? 32,
    maxQueuedBytes: opts.maxQueuedBytes ?? 2 * opts.maxMessageBytes,
    stopping: () => stopping,
  };

  const onConnection = (socket: Socket, tls: boolean): void => {
    if (stopping) {
      socket.destroy();
      return;
    }
    const peer: MllpPeer = { id: nextId++, remoteAddress: socket.remoteAddress ?? '', tls };
    const conn = new MllpConnection(socket, peer, ctx);
    conns.add(conn);
    socket.on('close', () => conns.delete(conn));
  };
  const server = createListener(opts, log, onConnection);

  return {
    listen: () => listenOn(server, opts.host, opts.port),
    async close(graceMs = 10_000) {
      stopping = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      await finishConnections([...conns], graceMs);
      await closed;
    },
    connectionCount: () => conns.size,
  };
}

/** The node:net or node:tls listener, with the connection limit and its error logging. */
function createListener(
  opts: MllpServerOptions,
  log: Logger,
  onConnection: (socket: Socket, tls: boolean) => void,
): Server {
  const server: Server = opts.tls
    ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, (s) => onConnection(s, true))
    : createNetServer((s) => onConnection(s, false));
  server.maxConnections = opts.maxConnections ?? 1000;
  server.on('error', (err) => log.error({ err: errName(err) }, 'listener error'));
  if (opts.tls) {
    // A failed handshake is the client's problem, not a reason to log its bytes.
    server.on('tlsClientError', (err) => log.debug({ err: errName(err) }, 'tls handshake failed'));
  }
  return server;
}

function listenOn(server: Server, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onErr = (err: Error) => reject(err);
    server.once('error', onErr);
    server.listen(port, host, () => {
      server.off('error', onErr);
      const a = server.address();
      resolve({ host, port: typeof a === 'object' && a ? a.port : port });
    });
  });
}

/**
 * The graceful part of close(): every connection stops reading, finishes what
 * it has received and is closed; whatever is still open after graceMs is
 * destroyed.
 */
async function finishConnections(all: readonly MllpConnection[], graceMs: number): Promise<void> {
  // Stop reading: what is already received is finished, nothing new is taken.
  for (const c of all) c.stopReading();
  const finished = Promise.all(all.map((c) => c.finish()));
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
}

/**
 * One sender's connection: its framer, the frame timeout, and the serial work
 * queue with its backpressure (reading pauses when too much is queued).
 */
class MllpConnection {
  private readonly framer: MllpFramer;
  private queue: Work[] = [];
  /** Bytes held by the frames in `queue`. */
  private queuedBytes = 0;
  private running = false;
  private paused = false;
  private closing = false;
  private frameTimer: NodeJS.Timeout | null = null;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => undefined;

  constructor(
    readonly socket: Socket,
    readonly peer: MllpPeer,
    private readonly ctx: ConnContext,
  ) {
    this.framer = new MllpFramer({ maxMessageBytes: ctx.maxMessageBytes });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    ctx.log.debug({ conn: peer.id, tls: peer.tls }, 'connection opened');
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      ctx.log.debug({ conn: peer.id, err: errName(err) }, 'socket error');
    });
    socket.on('close', () => {
      this.clearFrameTimer();
      this.closing = true;
      ctx.log.debug({ conn: peer.id }, 'connection closed');
    });
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    let events: FrameEvent[];
    try {
      events = this.framer.push(chunk);
    } catch (err) {
      // The framer is total over its input; this guards against a bug, not bad bytes.
      this.ctx.log.error({ conn: this.peer.id, err: errName(err) }, 'framer failed; closing connection');
      this.socket.destroy();
      return;
    }
    for (const ev of events) {
      switch (ev.kind) {
        case 'frame':
          this.enqueue({ kind: 'message', bytes: ev.bytes });
          break;
        case 'oversize':
          this.enqueue({ kind: 'broken', frame: { kind: 'oversize', prefix: ev.prefix, length: ev.length } });
          break;
        case 'incomplete':
          this.enqueue({ kind: 'broken', frame: { kind: 'incomplete', bytes: ev.bytes } });
          break;
        case 'junk':
          this.ctx.handler.onJunk?.(ev.length, this.peer);
          break;
      }
    }
    // A frame ended in this read: the timeout restarts for whatever frame is open now.
    if (events.some((e) => e.kind !== 'junk')) this.clearFrameTimer();
    this.armFrameTimer();
  }

  private armFrameTimer(): void {
    if (!this.framer.midFrame) {
      this.clearFrameTimer();
      return;
    }
    if (this.frameTimer) return;
    this.frameTimer = setTimeout(() => {
      this.frameTimer = null;
      if (this.paused) {
        // Not reading is our doing (backpressure), not the sender's: wait again.
        this.armFrameTimer();
        return;
      }
      const held = this.framer.abandon();
      if (held) this.enqueue({ kind: 'broken', frame: { kind: 'timeout', bytes: held } });
    }, this.ctx.frameTimeoutMs);
    this.frameTimer.unref();
  }

  private clearFrameTimer(): void {
    if (this.frameTimer) clearTimeout(this.frameTimer);
    this.frameTimer = null;
  }

  private enqueue(w: Work): void {
    this.queue.push(w);
    this.queuedBytes += workBytes(w);
    const { maxQueued, maxQueuedBytes } = this.ctx;
    if ((this.queue.length >= maxQueued || this.queuedBytes >= maxQueuedBytes) && !this.paused) {
      // A sender that pipelines without waiting for ACKs is slowed down by TCP, not by memory.
      this.paused = true;
      this.socket.pause();
    }
    if (!this.running) {
      this.running = true;
      this.idle = new Promise<void>((r) => (this.markIdle = r));
      void this.drain();
    }
  }

  /** Handles the queue in order; each message's ACKs are written before the next one is handled. */
  private async drain(): Promise<void> {
    try {
      for (;;) {
        const w = this.queue.shift();
        if (!w) break;
        this.queuedBytes -= workBytes(w);
        this.resumeIfDrained();
        const acks = await this.handle(w);
        if (acks === null || this.socket.destroyed) {
          this.queue = [];
          break;
        }
        for (const a of acks) this.socket.write(mllpFrame(a));
      }
    } finally {
      this.running = false;
      this.markIdle();
    }
  }

  private resumeIfDrained(): void {
    const { maxQueued, maxQueuedBytes } = this.ctx;
    if (
      this.paused &&
      this.queue.length < maxQueued / 2 &&
      this.queuedBytes < maxQueuedBytes / 2 &&
      !this.ctx.stopping()
    ) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** The handler's ACKs for one piece of work; null when the handler failed and the connection was closed. */
  private async handle(w: Work): Promise<Buffer[] | null> {
    try {
      return w.kind === 'message'
        ? await this.ctx.handler.onMessage(w.bytes, this.peer)
        : await this.ctx.handler.onBroken(w.frame, this.peer);
    } catch (err) {
      // Handlers answer every failure with an ACK; reaching here is a bug.
      // Without an ACK the sender resends, so closing loses nothing.
      this.ctx.log.error({ conn: this.peer.id, err: errName(err) }, 'handler failed; closing connection');
      this.socket.destroy();
      return null;
    }
  }

  /** Stops reading (close() has begun): nothing new is taken from this sender. */
  stopReading(): void {
    this.socket.pause();
    this.clearFrameTimer();
  }

  /** Waits for the queue to empty, then ends the connection once its last ACKs are flushed. */
  async finish(): Promise<void> {
    await this.idle;
    if (this.socket.destroyed) return;
    // Done as soon as the ACKs are handed to the kernel, not when the
    // sender closes: a sender that keeps its connection open (they
    // all do) held every stop for the whole grace. Reading resumes,
    // discarding, so that no unread bytes turn the close into a reset
    // that could drop the last ACK; end() flushes before the FIN.
    this.closing = true;
    this.socket.resume();
    await new Promise<void>((r) => {
      this.socket.once('close', () => r());
      this.socket.end(() => r());
    });
    this.socket.destroy();
  }
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
