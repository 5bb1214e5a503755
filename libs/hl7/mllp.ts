/**
 * MLLP (Minimal Lower Layer Protocol) framing: <VT> message <FS><CR>.
 *
 * A pure, incremental state machine: the socket feeds it whatever bytes a
 * read delivered, it answers with complete frames and with what it had to
 * throw away. No I/O and no timers here (the server owns the frame timeout),
 * so every edge case is unit- and property-testable with plain buffers.
 */
export const VT = 0x0b;
/**
 * Default frame limit (MLLP_MAX_MESSAGE_BYTES): 16 MiB. Lab and imaging
 * systems send PDF reports as base64 ED in OBX-5, and 1-10 MB messages are
 * normal; the topics that keep messages as received are sized for it
 * (docs/large-messages.md).
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
export const FS = 0x1c;
export const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const TAB = 0x09;

export type FrameEvent =
  /** A complete message body (without VT / FS CR). */
  | { kind: 'frame'; bytes: Buffer }
  /**
   * Bytes outside any frame (before a start block, or after an end block).
   * `blank`: all of them CR, LF, space or tab, which some senders put between
   * frames; anything else means the peer is not speaking MLLP.
   */
  | { kind: 'junk'; length: number; blank: boolean }
  /**
   * A frame grew past the maximum. Only its first `prefix` bytes are kept
   * (enough to read MSH for the refusal); the rest is skipped up to the end block.
   */
  | { kind: 'oversize'; prefix: Buffer; length: number }
  /** A frame cut short by a new start block: what had arrived of it (or its prefix, if oversize). */
  | { kind: 'incomplete'; bytes: Buffer };

export interface FramerOptions {
  maxMessageBytes: number;
  /** How many leading bytes of an oversize frame are kept for the refusal (MSH lives there). */
  keepPrefixBytes?: number;
}

type State = 'idle' | 'inFrame' | 'discarding';

export class MllpFramer {
  private state: State = 'idle';
  private parts: Buffer[] = [];
  /**
   * How many leading `parts` are copies of their own; the rest are views of
   * the chunk being pushed, copied only if the frame is still open when the
   * push returns. A frame that arrives in one read is copied once (by the
   * concat that joins it), not twice.
   */
  private owned = 0;
  private size = 0;
  /** A frame's last byte was FS and the read ended: the next byte decides. */
  private pendingFs = false;
  private junk = 0;
  private junkBlank = true;
  private prefix: Buffer = Buffer.alloc(0);
  private readonly max: number;
  private readonly keep: number;

  constructor(opts: FramerOptions) {
    this.max = opts.maxMessageBytes;
    this.keep = Math.min(opts.keepPrefixBytes ?? 4096, opts.maxMessageBytes);
  }

  /** True while bytes of an unfinished frame are held (the server's timeout runs then). */
  get midFrame(): boolean {
    return this.state !== 'idle';
  }

  /** Bytes currently buffered for the unfinished frame. */
  get bufferedBytes(): number {
    return this.size;
  }

  push(chunk: Buffer): FrameEvent[] {
    const out: FrameEvent[] = [];
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.state === 'idle') {
        const start = chunk.indexOf(VT, i);
        const end = start === -1 ? n : start;
        this.countJunk(chunk, i, end);
        if (start === -1) break;
        this.flushJunk(out);
        this.begin();
        i = start + 1;
        continue;
      }
      if (this.pendingFs) {
        this.pendingFs = false;
        if (chunk[i] === CR) {
          this.finish(out);
          i += 1;
          continue;
        }
        // A lone FS inside the body: it was data after all.
        this.append(Buffer.from([FS]));
      }
      const stop = findStop(chunk, i);
      if (stop.kind === 'none') {
        // No end block in this read; a trailing FS may pair with the next read's CR.
        const trailingFs = chunk[n - 1] === FS;
        this.append(chunk.subarray(i, trailingFs ? n - 1 : n));
        this.pendingFs = trailingFs;
        break;
      }
      this.append(chunk.subarray(i, stop.at));
      if (stop.kind === 'end') {
        this.finish(out);
        i = stop.at + 2;
      } else {
        // A start block inside a frame: the sender gave up on the previous
        // message without an end block. That part is reported, never glued
        // to the next message.
        out.push({ kind: 'incomplete', bytes: this.held() });
        this.begin();
        i = stop.at + 1;
      }
    }
    if (this.state === 'idle') this.flushJunk(out);
    this.ownParts();
    return out;
  }

  /** Copies what an open frame holds of this chunk: the socket may reuse its read buffer. */
  private ownParts(): void {
    for (let k = this.owned; k < this.parts.length; k++) {
      const p = this.parts[k];
      if (p) this.parts[k] = Buffer.from(p);
    }
    this.owned = this.parts.length;
  }

  /**
   * Gives up on the unfinished frame (the server's frame timeout fired) and
   * returns what was held, so the caller can refuse and retain it.
   */
  abandon(): Buffer | null {
    if (this.state === 'idle') return null;
    const held = this.held();
    this.reset();
    return held;
  }

  private held(): Buffer {
    return this.state === 'discarding' ? this.prefix : Buffer.concat(this.parts, this.size);
  }

  private begin(): void {
    this.reset();
    this.state = 'inFrame';
  }

  private append(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.state === 'discarding') {
      this.size += bytes.length;
      return;
    }
    if (this.size + bytes.length > this.max) {
      // Only the prefix is copied, not the megabytes held so far.
      const pieces: Buffer[] = [];
      let need = this.keep;
      for (const p of [...this.parts, bytes]) {
        if (need <= 0) break;
        pieces.push(p.subarray(0, need));
        need -= Math.min(need, p.length);
      }
      this.prefix = Buffer.concat(pieces);
      this.parts = [];
      this.size += bytes.length;
      this.state = 'discarding';
      return;
    }
    // A view for now: ownParts copies it if the frame outlives this push.
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  private finish(out: FrameEvent[]): void {
    if (this.state === 'discarding') {
      out.push({ kind: 'oversize', prefix: this.prefix, length: this.size });
    } else {
      out.push({ kind: 'frame', bytes: Buffer.concat(this.parts, this.size) });
    }
    this.reset();
  }

  private countJunk(chunk: Buffer, from: number, to: number): void {
    this.junk += to - from;
    for (let k = from; k < to && this.junkBlank; k++) {
      const b = chunk[k];
      if (b !== CR && b !== LF && b !== SPACE && b !== TAB) this.junkBlank = false;
    }
  }

  private flushJunk(out: FrameEvent[]): void {
    if (this.junk > 0) out.push({ kind: 'junk', length: this.junk, blank: this.junkBlank });
    this.junk = 0;
    this.junkBlank = true;
  }

  private reset(): void {
    this.state = 'idle';
    this.parts = [];
    this.owned = 0;
    this.size = 0;
    this.pendingFs = false;
    this.prefix = Buffer.alloc(0);
  }
}

/** The first end block (FS CR) or start block (VT) at or after `from`. */
function findStop(chunk: Buffer, from: number): { kind: 'end' | 'start'; at: number } | { kind: 'none' } {
  const vt = chunk.indexOf(VT, from);
  let i = from;
  for (;;) {
    const fs = chunk.indexOf(FS, i);
    const limit = vt === -1 ? Infinity : vt;
    if (fs === -1 || fs >= limit) break;
    if (fs === chunk.length - 1) return vt === -1 ? { kind: 'none' } : { kind: 'start', at: vt };
    if (chunk[fs + 1] === CR) return { kind: 'end', at: fs };
    i = fs + 1;
  }
  return vt === -1 ? { kind: 'none' } : { kind: 'start', at: vt };
}

/** Wraps a message in an MLLP frame. */
export function mllpFrame(body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const out = Buffer.allocUnsafe(b.length + 3);
  out[0] = VT;
  b.copy(out, 1);
  out[b.length + 1] = FS;
  out[b.length + 2] = CR;
  return out;
}
