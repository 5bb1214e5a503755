import { createServer as createNetServer, type ListenOptions, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { Logger } from '../telemetry/logger.js';
import { PeerGate, type MllpCloseReason } from './mllp-gate.js';
import { MllpFramer, mllpFrame, type FrameEvent } from './mllp.js';
import { certificateNames, type SenderGrant } from './peers.js';

export type { MllpCloseReason } from './mllp-gate.js';

/**
 * MLLP_IDLE_TIMEOUT_MS default: 5 minutes. Interface engines keep one
 * persistent connection per channel and reconnect on their own when it is
 * closed (Mirth, Rhapsody, Cloverleaf all do), so closing a quiet connection
 * costs one reconnect; a feed quiet for 5 minutes at night is normal, a
 * socket held open for hours by something that never sends is not.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/**
 * MLLP_MAX_CONNECTIONS_PER_PEER default: 32 per remote address. An engine
 * opens one connection per outbound channel; 32 leaves room for an engine
 * with many channels behind one address while one host can no longer take
 * every one of MLLP_MAX_CONNECTIONS.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_PEER = 32;

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
  /**
   * With client certificates: the senders this connection may send as.
   * Absent on a listener without client certificates (no identity to check).
   */
  grant?: SenderGrant;
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
  /** Blank bytes (CR/LF/space/tab) outside a frame; any other byte there closes the connection. */
  onJunk?(length: number, peer: MllpPeer): void;
}

export interface MllpServerOptions {
  host: string;
  port: number;
  tls?:
    | {
        cert: Buffer | string;
        key: Buffer | string;
        /** CA(s) of client certificates: set, a client certificate it issued is required. */
        clientCa?: Buffer | string | undefined;
      }
    | undefined;
  /**
   * The grant of a verified client certificate (libs/hl7/peers.ts); null
   * closes the connection. Used only with `tls.clientCa`.
   */
  identify?: ((cert: PeerCertificate) => SenderGrant | null) | undefined;
  /** Remote addresses allowed to connect (MLLP_ALLOW_CIDRS); null or absent: all. */
  allowAddress?: ((address: string) => boolean) | null | undefined;
  /** A connection with no bytes either way for this long, and nothing in hand, is closed. */
  idleTimeoutMs?: number | undefined;
  /** Connections open at once from one remote address; further ones are closed on accept. */
  maxConnectionsPerPeer?: number | undefined;
  /** Every connection the listener closes on its own initiative (a metric). */
  onClosed?: ((reason: MllpCloseReason) => void) | undefined;
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
  /**
   * SO_REUSEPORT: several processes listen on one address and the kernel spreads
   * connections across them (MLLP_REUSE_PORT). Node >= 22.12 / 23.1 on Linux; older
   * runtimes ignore the option, which the caller must refuse (services/adapter-hl7).
   */
  reusePort?: boolean | undefined;
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
  idleTimeoutMs: number;
  closed(reason: MllpCloseReason): void;
  stopping(): boolean;
}

export function createMllpServer(opts: MllpServerOptions, handler: MllpHandler): MllpServer {
  const log = opts.logger.child({ component: 'mllp' });
  const conns = new Set<MllpConnection>();
  let nextId = 1;
  let stopping = false;
  const closed = (reason: MllpCloseReason) => opts.onClosed?.(reason);
  const ctx: ConnContext = {
    handler,
    log,
    maxMessageBytes: opts.maxMessageBytes,
    frameTimeoutMs: opts.frameTimeoutMs,
    maxQueued: opts.maxQueuedFrames ?? 32,
    maxQueuedBytes: opts.maxQueuedBytes ?? 2 * opts.maxMessageBytes,
    idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    closed,
    stopping: () => stopping,
  };
  const gate = new PeerGate({
    allowAddress: opts.allowAddress ?? null,
    maxPerPeer: opts.maxConnectionsPerPeer ?? DEFAULT_MAX_CONNECTIONS_PER_PEER,
    onClosed: closed,
  });

  const onConnection = (socket: Socket, tls: boolean): void => {
    if (stopping) {
      socket.destroy();
      return;
    }
    const id = nextId++;
    const grant = tls && opts.tls?.clientCa ? identifyPeer(socket as TLSSocket, id, opts, log) : undefined;
    if (grant === null) {
      closed('certificate_not_configured');
      socket.destroy();
      return;
    }
    const peer: MllpPeer = {
      id,
      remoteAddress: socket.remoteAddress ?? '',
      tls,
      ...(grant ? { grant } : {}),
    };
    const conn = new MllpConnection(socket, peer, ctx);
    conns.add(conn);
    socket.on('close', () => conns.delete(conn));
  };
  const server = createListener(opts, log, gate, onConnection);

  return {
    listen: () => listenOn(server, opts.host, opts.port, opts.reusePort ?? false),
    async close(graceMs = 10_000) {
      stopping = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      await finishConnections([...conns], graceMs);
      await closed;
    },
    connectionCount: () => conns.size,
  };
}

/**
 * The grant of a connection's verified client certificate, or null when the
 * certificate is not configured (node:tls has already refused any certificate
 * the CA did not issue, and a connection without one).
 */
function identifyPeer(
  socket: TLSSocket,
  id: number,
  opts: MllpServerOptions,
  log: Logger,
): SenderGrant | null {
  const cert = socket.getPeerCertificate();
  const grant = opts.identify?.(cert) ?? null;
  // A certificate names a system, not a patient: its names may be logged.
  if (!grant)
    log.warn({ conn: id, certificate: certificateNames(cert) }, 'client certificate not in mllp.peers');
  else log.debug({ conn: id, certificate: grant.certificate }, 'client certificate accepted');
  return grant;
}

/**
 * The listener: node:net, with node:tls on top when configured. The gate sees
 * every raw socket first, so an address not allowed, or one over its cap, is
 * closed before a byte is read or a handshake is made; admitted sockets are
 * handed to the TLS server ("connection" may be emitted by users to inject
 * connections, node:tls docs), which never listens itself.
 */
function createListener(
  opts: MllpServerOptions,
  log: Logger,
  gate: PeerGate,
  onConnection: (socket: Socket, tls: boolean) => void,
): Server {
  const { tls } = opts;
  let accept: (raw: Socket) => void = (raw) => onConnection(raw, false);
  if (tls) {
    const clientCerts = tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {};
    const tlsServer = createTlsServer(
      {
        cert: tls.cert,
        key: tls.key,
        ...clientCerts,
        // A real handshake takes milliseconds; a client that never finishes one holds a descriptor.
        handshakeTimeout: Math.min(opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, 30_000),
      },
      (s) => onConnection(s, true),
    );
    tlsServer.on('tlsClientError', (err, socket) => {
      // node:tls does not close the socket on every handshake failure (a handshake timeout leaves it open).
      socket.destroy();
      opts.onClosed?.('tls_handshake');
      // A failed handshake is the client's problem, not a reason to log its bytes.
      log.debug({ err: errName(err) }, 'tls handshake failed');
    });
    accept = (raw) => tlsServer.emit('connection', raw);
  }
  const server = createNetServer((raw) => {
    if (gate.admit(raw)) accept(raw);
  });
  server.maxConnections = opts.maxConnections ?? 1000;
  server.on('error', (err) => log.error({ err: errName(err) }, 'listener error'));
  return server;
}

function listenOn(
  server: Server,
  host: string,
  port: number,
  reusePort: boolean,
): Promise<{ host: string; port: number }> {
  // reusePort is not in @types/node 20's ListenOptions; Node 22.12+ reads it.
  const options: ListenOptions & { reusePort?: boolean } = reusePort
    ? { port, host, reusePort }
    : { port, host };
  return new Promise((resolve, reject) => {
    const onErr = (err: Error) => reject(err);
    server.once('error', onErr);
    server.listen(options, () => {
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
    socket.setTimeout(ctx.idleTimeoutMs, () => this.onIdle());
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
      if (ev.kind === 'junk' && !ev.blank) {
        this.refuseStream();
        return;
      }
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

  /**
   * Not MLLP (an HTTP request with a frame in its body, a TLS ClientHello on
   * the plain port): nothing after this byte is read, and nothing is answered;
   * frames that came before it are still handled, then the connection closes.
   */
  private refuseStream(): void {
    this.closing = true;
    this.clearFrameTimer();
    this.socket.pause();
    this.ctx.closed('not_mllp');
    this.ctx.log.debug({ conn: this.peer.id }, 'bytes that are not MLLP; closing connection');
    void this.idle.then(() => this.socket.destroy());
  }

  /**
   * Node's socket timeout: no bytes either way for idleTimeoutMs. A message
   * still being handled (waiting on Kafka) is our silence, not the sender's.
   */
  private onIdle(): void {
    if (this.running || this.closing) return;
    this.ctx.closed('idle_timeout');
    this.ctx.log.debug({ conn: this.peer.id }, 'idle connection closed');
    this.socket.destroy();
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
