/**
 * HL7 v2 over MLLP out (issue 20): one TCP (or TLS) connection per
 * subscription, one message at a time, each waiting for the receiver's
 * ACK before the next (original-mode acknowledgement; per-patient order
 * needs no more). The message is libs/hl7/outbound.ts's, MSH-10 derived
 * from the delivery's idempotency key, so a retry carries the same control
 * id and a receiver can drop what it already has.
 *
 * ACK → outcome: MSA-1 AA / CA → delivered; AE / AR / CE / CR → rejected
 * (`hl7-AE`, ...) with MSA-3 and the ERR segments as received (dead-letter
 * detail: they may quote the message, so never logged); no ACK within
 * ackTimeoutMs, a refused or closed connection, or an answer that is no ACK
 * → unreachable (retried), and the connection is dropped so the next
 * attempt starts on a fresh one (a late ACK can never be taken for the
 * next message's).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Demographics } from '../../events/index.js';
import { decodeHl7Bytes } from '../../hl7/decode.js';
import { MllpFramer, mllpFrame } from '../../hl7/mllp.js';
import { controlIdFor, hasMessage, toHl7v2, type OutboundOptions } from '../../hl7/outbound.js';
import type { IdentityPolicy } from '../../identity/index.js';
import type { Logger } from '../../telemetry/logger.js';
import type { ChannelSender, Delivery, MllpChannel, Outcome } from '../model.js';

export { hasMessage };

export interface MllpSenderOptions {
  now(): number;
  logger: Logger;
  /**
   * Stored demographics of a patient, for messages about a patient by id
   * only (visits, results): PID-5 and the rest then travel with them.
   * Optional; without it such messages carry PID-3 alone.
   */
  patientOf?: ((patientId: string) => Promise<Demographics | null>) | undefined;
  /** The site's registered authorities: identifiers go out with the HD the site registered. */
  policy?: IdentityPolicy | undefined;
  /** RP pointer for attachments (e.g. a FHIR Binary URL); see OutboundOptions. */
  attachmentPointer?: OutboundOptions['attachmentPointer'];
}

/** An ACK frame, read with its own delimiters; raw text kept for the dead letter. */
export interface ParsedAck {
  code: string;
  controlId: string;
  /** MSA-3 text message, as received. */
  text: string;
  /** ERR segments, as received. */
  errors: string[];
}

/** Reads MSA (and ERR) from an ACK; null when the frame has no MSH/MSA. */
export function parseAck(frame: Buffer): ParsedAck | null {
  const text = decodeHl7Bytes(frame).text;
  if (!text.startsWith('MSH') || text.length < 8) return null;
  const fs = text.charAt(3);
  const comp = text.charAt(4);
  const segments = text.split('\r');
  const msa = segments.find((s) => s.startsWith(`MSA${fs}`));
  if (!msa) return null;
  const f = msa.split(fs);
  return {
    code: (f[1] ?? '').split(comp)[0]?.trim().toUpperCase() ?? '',
    controlId: (f[2] ?? '').trim(),
    text: f[3] ?? '',
    errors: segments.filter((s) => s.startsWith(`ERR${fs}`)),
  };
}

/** The outcome an ACK means for the message it answers. */
export function outcomeOfAck(ack: ParsedAck): Outcome {
  switch (ack.code) {
    case 'AA':
    case 'CA':
      return { kind: 'delivered', status: 'AA' };
    case 'AE':
    case 'AR':
    case 'CE':
    case 'CR': {
      const detail = [...(ack.text ? [`MSA-3: ${ack.text}`] : []), ...ack.errors].join('\n');
      return { kind: 'rejected', reason: `hl7-${ack.code}`, detail };
    }
    default:
      return { kind: 'unreachable', reason: 'invalid-ack' };
  }
}

interface Waiting {
  controlId: string;
  settle(o: Outcome): void;
}

function connectReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED') return 'connection-refused';
  if (code === 'ETIMEDOUT') return 'connect-timeout';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host-not-found';
  return 'connect-failed';
}

/** What an open connection reports to its sender. */
interface SocketEvents {
  error(s: net.Socket, code: unknown): void;
  close(s: net.Socket): void;
  frames(s: net.Socket, framer: MllpFramer, chunk: Buffer): void;
}

/**
 * A TCP (or TLS, host name checked) connection to the receiver, or why
 * there is none; connecting may take at most ackTimeoutMs.
 */
function openSocket(channel: MllpChannel, on: SocketEvents): Promise<net.Socket | Outcome> {
  return new Promise((resolve) => {
    const target = { host: channel.host, port: channel.port };
    const s = channel.tls
      ? tls.connect({ ...target, servername: net.isIP(channel.host) ? undefined : channel.host })
      : net.connect(target);
    // ACKs are small: a receiver sending more than 1 MiB in one frame is not sending an ACK.
    const framer = new MllpFramer({ maxMessageBytes: 1024 * 1024 });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ kind: 'unreachable', reason: 'connect-timeout' });
    }, channel.ackTimeoutMs);
    s.once(channel.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      s.on('error', (err) => on.error(s, (err as { code?: unknown }).code));
      s.on('close', () => on.close(s));
      s.on('data', (chunk: Buffer) => on.frames(s, framer, chunk));
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ kind: 'unreachable', reason: connectReason(err) });
    });
  });
}

/** The mapper's options for one message: the channel's MSH values and the sender's site options. */
function outboundOptions(
  channel: MllpChannel,
  opts: MllpSenderOptions,
  per: { now: number; controlId: string; patient: Demographics | null },
): OutboundOptions {
  return {
    version: channel.version,
    sendingApplication: channel.sendingApplication,
    sendingFacility: channel.sendingFacility,
    receivingApplication: channel.receivingApplication,
    receivingFacility: channel.receivingFacility,
    policy: opts.policy,
    attachmentPointer: opts.attachmentPointer,
    ...per,
  };
}

export function createMllpSender(channel: MllpChannel, opts: MllpSenderOptions): ChannelSender {
  const log = opts.logger.child({ channel: 'mllp' });
  let socket: net.Socket | null = null;
  let waiting: Waiting | null = null;
  /** Deliveries run one at a time: the next waits for the previous one's ACK. */
  let chain: Promise<unknown> = Promise.resolve();
  let closed = false;

  const drop = (reason: string) => {
    const s = socket;
    socket = null;
    s?.destroy();
    const w = waiting;
    waiting = null;
    w?.settle({ kind: 'unreachable', reason });
  };

  function onFrames(s: net.Socket, framer: MllpFramer, chunk: Buffer): void {
    for (const ev of framer.push(chunk)) {
      if (ev.kind !== 'frame' || socket !== s) continue;
      const ack = parseAck(ev.bytes);
      const w = waiting;
      if (!w) continue;
      if (!ack) {
        drop('invalid-ack');
        continue;
      }
      // An ACK for another control id (a late answer to a message given up on) is not this one's.
      if (ack.controlId !== w.controlId) continue;
      waiting = null;
      w.settle(outcomeOfAck(ack));
    }
  }

  const connect = () =>
    openSocket(channel, {
      error(s, code) {
        log.warn({ code }, 'mllp connection error');
        if (socket === s) drop('connection-error');
      },
      close(s) {
        if (socket === s) drop('connection-closed');
      },
      frames: onFrames,
    });

  async function send(d: Delivery): Promise<Outcome> {
    const event = d.record.event;
    if (!hasMessage(event)) return { kind: 'delivered', status: 'skipped' };
    const controlId = controlIdFor(d.idempotencyKey);
    let patient: Demographics | null = null;
    try {
      patient = opts.patientOf ? await opts.patientOf(event.data.patientId) : null;
    } catch (err) {
      // The message would go out without PID-5; better to retry once the store answers.
      log.warn(
        { errorName: err instanceof Error ? err.name : typeof err },
        'mllp: patient demographics lookup failed',
      );
      return { kind: 'unreachable', reason: 'patient-lookup-failed' };
    }
    const text = toHl7v2(event, outboundOptions(channel, opts, { now: opts.now(), controlId, patient }));
    if (text === null) return { kind: 'delivered', status: 'skipped' };
    if (!socket) {
      const c = await connect();
      if (!(c instanceof net.Socket)) return c;
      if (closed) {
        // close() ran while connecting: nothing may stay open behind it.
        c.destroy();
        return { kind: 'unreachable', reason: 'closed' };
      }
      socket = c;
    }
    const s = socket;
    if (s.destroyed || !s.writable) {
      drop('connection-closed');
      return { kind: 'unreachable', reason: 'connection-closed' };
    }
    return new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => drop('no-ack'), channel.ackTimeoutMs);
      waiting = {
        controlId,
        settle: (o) => {
          clearTimeout(timer);
          resolve(o);
        },
      };
      s.write(mllpFrame(text));
    });
  }

  return {
    deliver(d: Delivery): Promise<Outcome> {
      const run = chain.then(() => send(d));
      chain = run.catch(() => undefined);
      return run;
    },
    close(): Promise<void> {
      closed = true;
      drop('closed');
      return Promise.resolve();
    },
  };
}
