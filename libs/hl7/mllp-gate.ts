import type { Socket } from 'node:net';

/**
 * Why the MLLP listener closed a connection itself (a metric label: a closed
 * set, never an address or a certificate name).
 */
export type MllpCloseReason =
  /** MLLP_ALLOW_CIDRS does not list the remote address: closed before a byte is read. */
  | 'address_not_allowed'
  /** MLLP_MAX_CONNECTIONS_PER_PEER connections from this address are already open. */
  | 'peer_limit'
  /** A byte outside a frame that is not CR/LF/space/tab: an HTTP request, a TLS ClientHello, noise. */
  | 'not_mllp'
  /** Nothing sent either way for MLLP_IDLE_TIMEOUT_MS, and nothing being handled. */
  | 'idle_timeout'
  /** The TLS handshake failed: no or an untrusted client certificate, a plain-text client, a timeout. */
  | 'tls_handshake'
  /** A client certificate the CA vouches for, but not listed in the site configuration's `mllp.peers`. */
  | 'certificate_not_configured';

export interface GateOptions {
  /** null: every address may connect. */
  allowAddress: ((address: string) => boolean) | null;
  maxPerPeer: number;
  onClosed: (reason: MllpCloseReason) => void;
}

/**
 * Admission before any byte is read (and before a TLS handshake costs
 * anything): the address allow-list and the per-peer connection cap. The
 * peer is the remote address: the cap has to hold before a handshake, when
 * there is no certificate to count by yet, and it is what stops one host
 * from taking every descriptor (MLLP_MAX_CONNECTIONS is the listener's total).
 */
export class PeerGate {
  private readonly open = new Map<string, number>();

  constructor(private readonly opts: GateOptions) {}

  /** True when the socket may proceed; otherwise it has been destroyed and counted. */
  admit(socket: Socket): boolean {
    const address = socket.remoteAddress ?? '';
    if (this.opts.allowAddress && !this.opts.allowAddress(address)) {
      return this.refuse(socket, 'address_not_allowed');
    }
    const n = this.open.get(address) ?? 0;
    if (n >= this.opts.maxPerPeer) return this.refuse(socket, 'peer_limit');
    this.open.set(address, n + 1);
    socket.once('close', () => {
      const left = (this.open.get(address) ?? 1) - 1;
      if (left <= 0) this.open.delete(address);
      else this.open.set(address, left);
    });
    return true;
  }

  /** Open connections from this address (tests, /ready detail). */
  openFrom(address: string): number {
    return this.open.get(address) ?? 0;
  }

  private refuse(socket: Socket, reason: MllpCloseReason): false {
    this.opts.onClosed(reason);
    // destroy(), not end(): nothing is owed to a peer that may not connect, and nothing is read.
    socket.destroy();
    return false;
  }
}
