import { performance } from 'node:perf_hooks';
import type { IHeaders } from 'kafkajs';
import { ERROR_CODES, HubError, type Hl7Edge } from '../../libs/errors/index.js';
import { sniffMsh, type SniffedMsh } from '../../libs/hl7/ack.js';
import type { BrokenFrame, MllpHandler, MllpPeer } from '../../libs/hl7/mllp-server.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import { acksFor, type AckDeps } from './acks.js';
import type { IngestPipeline } from './ingest.js';
import { labeller, labelsOf, type MessageLabels } from './labels.js';
import { rawIdFor, type Inbound } from './raw-record.js';
import type { ResendMemory } from './resend-memory.js';
import { refusedAs, type RejectReason, type Result } from './result.js';

/** The peer of a message handed in without a socket (tests). */
export const LOCAL_PEER: MllpPeer = { id: 0, remoteAddress: '', tls: false };

/** What the ACKs need (clock, ids, metrics), and the pipeline behind them. */
export interface FrameHandlerDeps extends AckDeps {
  pipeline: IngestPipeline;
  resends: ResendMemory;
  log: Logger;
  /** Named in the ERR of an oversize frame. */
  maxMessageBytes: number;
}

/** A frame as it arrived, counted and timed before anything is decided. */
interface Arrival {
  t0: number;
  receivedAt: number;
  msh: SniffedMsh | null;
  labels: MessageLabels;
}

/**
 * A broken frame is refused before any code of ours sees a message (no
 * HubError): unprocessable, answered as an application error (README,
 * "Acknowledgement policy").
 */
const BROKEN_FRAME: Hl7Edge = { ack: 'AR', code: '207' };
/** AR 103 at MSH-3 (libs/errors says why 103). */
const SENDER_NOT_ALLOWED: Hl7Edge = ERROR_CODES.HUB_SENDER_NOT_ALLOWED.hl7;

function brokenReason(frame: BrokenFrame): RejectReason {
  return frame.kind === 'oversize'
    ? 'frame_oversize'
    : frame.kind === 'timeout'
      ? 'frame_timeout'
      : 'frame_incomplete';
}

/**
 * What the MLLP listener calls for each frame: a whole message goes through
 * the resend check and the ingest pipeline, a broken frame straight to the
 * dead letters; the answer is the ACKs for what became of it.
 */
export class Hl7FrameHandler implements MllpHandler {
  private readonly sourceLabel = labeller(100);

  constructor(private readonly deps: FrameHandlerDeps) {}

  async onMessage(bytes: Buffer, peer: MllpPeer = LOCAL_PEER): Promise<Buffer[]> {
    const a = this.arrive(bytes);
    const rawId = rawIdFor(a.msh, this.deps.idGenerator);
    // The raw id doubles as the resend key: it is derived from sender + MSH-10
    // alone. Not those fields joined: they are V8 slices of the message text,
    // so each remembered key kept its whole message alive (the 100k-entry
    // memory held ~40 MB of message bodies and pushed RSS past 256 MB).
    const key = a.msh?.controlId ? rawId : null;
    const m: Inbound = { bytes, msh: a.msh, receivedAt: a.receivedAt, rawId };
    let res: Result;
    try {
      // Before the resend check: a resend key is sender + MSH-10, and a peer
      // claiming another sender must not even learn that a message was accepted.
      res =
        peer.grant && !peer.grant.allows(a.msh)
          ? await this.senderNotAllowed(m, peer.grant.certificate)
          : await this.resultOf(m, key);
    } catch (err) {
      // Nothing above should throw; if it does the sender must not see AA.
      res = this.deps.pipeline.unavailable(err);
    }
    this.deps.log.debug(
      {
        conn: peer.id,
        type: a.labels.type,
        disposition: res.disposition,
        ms: Math.round(performance.now() - a.t0),
      },
      'message handled',
    );
    return acksFor(this.deps, a.msh, res, a.labels, a.t0);
  }

  async onBroken(frame: BrokenFrame, peer: MllpPeer): Promise<Buffer[]> {
    const held = frame.kind === 'oversize' ? frame.prefix : frame.bytes;
    const a = this.arrive(held);
    const reason = brokenReason(frame);
    this.deps.log.warn({ conn: peer.id, reason, bytes: held.length }, 'MLLP frame refused');
    const extra: IHeaders = { 'hl7-ack-code': BROKEN_FRAME.ack, 'hl7-error-code': BROKEN_FRAME.code };
    if (frame.kind === 'oversize') {
      extra['hl7-truncated'] = 'true';
      extra['hl7-original-length'] = String(frame.length);
    }
    const rawId = rawIdFor(a.msh, this.deps.idGenerator);
    const kept = await this.deps.pipeline.deadLetter(
      { bytes: held, msh: a.msh, receivedAt: a.receivedAt, rawId },
      reason,
      extra,
    );
    // Without MSH-10 there is nothing an ACK could refer to; the sender's own timeout applies.
    if (!a.msh?.controlId) return [];
    const text =
      frame.kind === 'oversize'
        ? `Message exceeds ${this.deps.maxMessageBytes} bytes`
        : 'Incomplete MLLP frame';
    const res: Result = kept
      ? {
          disposition: refusedAs(BROKEN_FRAME.ack),
          error: { hl7ErrorCode: BROKEN_FRAME.code, text, severity: 'E' },
        }
      : this.deps.pipeline.unavailable(new Error('dead-letter write failed'));
    return acksFor(this.deps, a.msh, res, a.labels, a.t0);
  }

  /** CR/LF/space/tab between frames (some senders send them): ignored; anything else closes the connection. */
  onJunk(length: number, peer: MllpPeer): void {
    this.deps.log.debug({ conn: peer.id, bytes: length }, 'blank bytes outside an MLLP frame ignored');
  }

  /**
   * A message whose MSH-3/MSH-4 is not among the senders its connection's
   * certificate may send as: AR, nothing published, kept as a dead letter
   * like every other refusal (the interface team sees who tried what).
   */
  private async senderNotAllowed(m: Inbound, certificate: string): Promise<Result> {
    this.deps.log.warn(
      { certificate, type: m.msh?.messageCode ?? '' },
      'sender not allowed for this certificate',
    );
    return this.deps.pipeline.refuse(
      m,
      {
        ack: SENDER_NOT_ALLOWED.ack,
        hl7ErrorCode: SENDER_NOT_ALLOWED.code,
        error: new HubError(
          'HUB_SENDER_NOT_ALLOWED',
          `MSH-3/MSH-4 not allowed for certificate ${certificate}`,
        ),
        location: { segment: 'MSH', segmentSequence: 1, field: 3 },
      },
      'Sender not permitted on this connection',
    );
  }

  private arrive(bytes: Buffer): Arrival {
    const t0 = performance.now();
    const receivedAt = this.deps.clock();
    const msh = sniffMsh(bytes);
    const labels = labelsOf(msh, this.sourceLabel);
    this.deps.metrics.hl7Received.inc({ source: labels.source, type: labels.type });
    return { t0, receivedAt, msh, labels };
  }

  /** A message already accepted, or still on its way, is answered without a second write. */
  private async resultOf(m: Inbound, key: string | null): Promise<Result> {
    const { pipeline, resends } = this.deps;
    // Already durably accepted: the resend is answered, not written again.
    if (key && resends.accepted(key)) return { disposition: 'accepted' };
    const earlier = key ? resends.pending(key) : undefined;
    const prior = earlier ? await pipeline.within(earlier) : undefined;
    // Landed, or still on its way: either way it is not written twice.
    if (prior?.disposition === 'accepted' || prior?.pending) return prior;
    const write = pipeline.ingest(m);
    if (key) resends.track(key, write);
    return pipeline.within(write);
  }
}
