import { isAscii } from 'node:buffer';
import { errorSpec, toHubError } from '../errors/index.js';
import type { ErrorLocation } from './types.js';

/**
 * HL7 v2 acknowledgements, built from the raw MSH of the message they answer.
 *
 * The ACK is written with the sender's own delimiters and copies MSH-3..6
 * (swapped) as the sender wrote them, so a sender that uses unusual
 * encoding characters or multi-component HD values gets back what it sent.
 * That is why this reads MSH itself (`sniffMsh`) rather than taking the
 * mapper's normalised header: it also has to work for input the mapper
 * never saw (an oversize or unterminated frame).
 */

export interface SniffedMsh {
  fieldSeparator: string;
  encodingCharacters: string;
  /** MSH fields by HL7 number (1 = field separator, 2 = encoding characters), raw text. */
  fields: readonly string[];
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  controlId: string;
  messageCode: string;
  triggerEvent: string;
  processingId: string;
  version: string;
  acceptAckType: string;
  applicationAckType: string;
  /** MSH-18 as declared (first repetition). */
  declaredCharset: string;
  /** iconv-lite name for the declared charset; utf8 when none is declared or it is unknown. */
  charset: 'ascii' | 'latin1' | 'utf8';
}

const CHARSETS: Record<string, SniffedMsh['charset']> = {
  ASCII: 'ascii',
  'US-ASCII': 'ascii',
  '8859/1': 'latin1',
  'ISO-8859-1': 'latin1',
  'ISO_IR 100': 'latin1',
  LATIN1: 'latin1',
  'UNICODE UTF-8': 'utf8',
  'UTF-8': 'utf8',
  UTF8: 'utf8',
  UNICODE: 'utf8',
};

/** Normalises an MSH-18 value to an iconv-lite name, or null when it is not one the hub reads. */
export function charsetOf(declared: string): SniffedMsh['charset'] | null {
  const d = declared.trim().toUpperCase();
  if (d === '') return 'utf8';
  return CHARSETS[d] ?? null;
}

/**
 * Reads MSH from the first segment of a message, tolerating any segment
 * terminator and leading whitespace. Returns null when there is no usable
 * MSH. Never throws, whatever the bytes.
 */
export function sniffMsh(bytes: Buffer): SniffedMsh | null {
  return sniffMshWithin(bytes, mshEnd(bytes));
}

/** MSH is looked for in this many leading bytes at most. */
const SNIFF_BYTES = 8192;

/**
 * How many leading bytes sniffMsh needs to decode: up to the end of the
 * segment that starts at the first `MSH` (its CR or LF), or the sniff
 * window. firstSegment reads nothing beyond, and CR/LF/`MSH` are ASCII
 * (never part of a UTF-8 sequence), so decoding only these bytes gives the
 * same segment, in latin1 and in UTF-8, as decoding the whole window: the
 * rest of the message is decoded once, by the mapper.
 */
export function mshEnd(bytes: Buffer): number {
  const window = bytes.subarray(0, Math.min(bytes.length, SNIFF_BYTES));
  const at = window.indexOf('MSH');
  // No MSH in the window: nothing to decode, the answer is null either way.
  if (at === -1) return 0;
  const rest = window.subarray(at);
  const cr = rest.indexOf(0x0d);
  const lf = rest.indexOf(0x0a);
  const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
  return end === -1 ? window.length : at + end;
}

/** sniffMsh over the first `end` bytes (any bound from mshEnd's up to the window reads the same MSH; tests compare). */
export function sniffMshWithin(bytes: Buffer, end: number): SniffedMsh | null {
  // latin1 maps every byte to one char, so a non-ASCII sender name cannot
  // make decoding fail; it is re-decoded below once MSH-18 is known.
  const first = firstSegment(bytes.toString('latin1', 0, end));
  if (!first) return null;
  const pre = parseMsh(first);
  if (!pre) return null;
  const charset = charsetOf(pre.declaredCharset) ?? 'utf8';
  // ASCII reads the same in latin1 and UTF-8: no second decode and parse.
  if (charset !== 'utf8' || isAscii(bytes.subarray(0, end))) return { ...pre, charset };
  const utf = parseMsh(firstSegment(bytes.toString('utf8', 0, end)) ?? '');
  return utf ? { ...utf, charset } : { ...pre, charset };
}

function firstSegment(text: string): string | null {
  const at = text.indexOf('MSH');
  if (at === -1 || text.slice(0, at).trim() !== '') return null;
  const rest = text.slice(at);
  const end = rest.search(/[\r\n]/);
  return end === -1 ? rest : rest.slice(0, end);
}

function parseMsh(seg: string): Omit<SniffedMsh, 'charset'> | null {
  if (!seg.startsWith('MSH') || seg.length < 8) return null;
  const fs = seg.charAt(3);
  if (/[A-Za-z0-9\s]/.test(fs)) return null;
  const parts = seg.split(fs);
  const enc = parts[1] ?? '';
  // Delimiters must be distinct non-alphanumerics, or no field could be read back reliably.
  const delims = [fs, ...enc];
  if (enc.length < 2 || enc.length > 5 || new Set(delims).size !== delims.length) return null;
  if (delims.some((d) => /[A-Za-z0-9\s]/.test(d))) return null;
  // fields[n] is MSH-n: MSH-1 is the separator itself, so segment part i is field i+1.
  const fields = ['', fs, ...parts.slice(1)];
  const f = (n: number) => fields[n] ?? '';
  const comp = enc.charAt(0);
  const msh9 = f(9).split(comp);
  return {
    fieldSeparator: fs,
    encodingCharacters: enc,
    fields,
    sendingApplication: f(3),
    sendingFacility: f(4),
    receivingApplication: f(5),
    receivingFacility: f(6),
    controlId: f(10).trim(),
    messageCode: (msh9[0] ?? '').trim(),
    triggerEvent: (msh9[1] ?? '').trim(),
    processingId: f(11),
    version: (f(12).split(comp)[0] ?? '').trim(),
    acceptAckType: f(15).trim().toUpperCase(),
    applicationAckType: f(16).trim().toUpperCase(),
    declaredCharset: (f(18).split(enc.charAt(1) || '~')[0] ?? '').trim(),
  };
}

export type AckCode = 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR';

export interface AckError {
  /** HL7 table 0357. */
  hl7ErrorCode: string;
  /** PHI-free text for ERR-3.2; the table's own wording when omitted. */
  text?: string;
  location?: ErrorLocation;
  /** ERR-4 (table 0516): E error, W warning, I information, F fatal. */
  severity?: 'E' | 'W' | 'I' | 'F';
}

const TABLE_0357: Record<string, string> = {
  '0': 'Message accepted',
  '100': 'Segment sequence error',
  '101': 'Required field missing',
  '102': 'Data type error',
  '103': 'Table value not found',
  '200': 'Unsupported message type',
  '201': 'Unsupported event code',
  '202': 'Unsupported processing id',
  '203': 'Unsupported version id',
  '204': 'Unknown key identifier',
  '205': 'Duplicate key identifier',
  '206': 'Application record locked',
  '207': 'Application internal error',
};

const INTERNAL_ERROR = { ack: 'AR', code: '207' } as const;

/**
 * The application ACK code and ERR for a failure, from its code's HL7 edge
 * (libs/errors ERROR_CODES[code].hl7). A HubError that names its own table
 * 0357 code (details.hl7ErrorCode, as refusals do) keeps it; a code no sender
 * causes answers as an internal error (AR 207): the sender did nothing wrong.
 * `text` is ERR-3.2 (PHI-free); the table's wording when omitted.
 */
export function ackErrorFor(err: unknown, text?: string): { ack: 'AE' | 'AR'; error: AckError } {
  const h = toHubError(err);
  const edge = errorSpec(h.code).hl7 ?? INTERNAL_ERROR;
  const own = h.details['hl7ErrorCode'];
  const hl7ErrorCode = typeof own === 'string' && Object.hasOwn(TABLE_0357, own) ? own : edge.code;
  return { ack: edge.ack, error: { hl7ErrorCode, severity: 'E', ...(text !== undefined ? { text } : {}) } };
}

export interface AckOptions {
  code: AckCode;
  /** MSH-10 of the ACK itself, from the injected id generator. */
  ackControlId: string;
  /** Epoch ms for MSH-7. */
  now: number;
  error?: AckError;
}

const DEFAULT_VERSION = '2.5.1';

/** YYYYMMDDHHMMSS+0000: HL7 DTM in UTC. */
export function hl7Timestamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}+0000`
  );
}

/** Escapes text for a field written with these delimiters (HL7 \F\ \S\ \T\ \R\ \E\). */
export function hl7Escape(text: string, fs: string, enc: string): string {
  const comp = enc.charAt(0);
  const rep = enc.charAt(1);
  const esc = enc.charAt(2) || '\\';
  const sub = enc.charAt(3);
  let out = '';
  for (const ch of text) {
    if (ch === esc) out += `${esc}E${esc}`;
    else if (ch === fs) out += `${esc}F${esc}`;
    else if (ch === comp) out += `${esc}S${esc}`;
    else if (ch === rep) out += `${esc}R${esc}`;
    else if (sub && ch === sub) out += `${esc}T${esc}`;
    else if (ch === '\r' || ch === '\n') out += ' ';
    else out += ch;
  }
  return out;
}

/** Major.minor as a number, for "2.5 or later" decisions; unknown versions count as current. */
function versionNumber(v: string): number {
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? Number(m[1]) + Number(m[2]) / 10 : 2.5;
}

/**
 * The ACK text (segments joined by CR, no MLLP frame). MSH swaps sender and
 * receiver, keeps processing id and version, MSH-9 is ACK^<trigger>^ACK;
 * MSA-2 echoes the original MSH-10. An error adds ERR with ERR-2 (location),
 * ERR-3 (code^text^HL70357) and ERR-4 (severity), and for versions before
 * 2.5, which have no ERR-2..4, ERR-1 too.
 */
export function buildAck(msh: SniffedMsh | null, o: AckOptions): string {
  const fs = msh?.fieldSeparator ?? '|';
  const enc = msh?.encodingCharacters ?? '^~\\&';
  const comp = enc.charAt(0);
  const sub = enc.charAt(3) || '&';
  const e = (s: string) => hl7Escape(s, fs, enc);
  const version = msh?.version || DEFAULT_VERSION;
  const header = [
    'MSH',
    enc,
    msh?.receivingApplication ?? '',
    msh?.receivingFacility ?? '',
    msh?.sendingApplication ?? '',
    msh?.sendingFacility ?? '',
    hl7Timestamp(o.now),
    '',
    ['ACK', e(msh?.triggerEvent ?? ''), 'ACK'].join(comp),
    e(o.ackControlId),
    msh?.processingId || 'P',
    e(version),
  ].join(fs);
  const segments = [header, ['MSA', o.code, e(msh?.controlId ?? '')].join(fs)];
  if (o.error) {
    const err = o.error;
    const text = e(err.text ?? TABLE_0357[err.hl7ErrorCode] ?? 'Error');
    const loc = err.location;
    const erl = loc
      ? [
          e(loc.segment),
          String(loc.segmentSequence),
          loc.field !== undefined ? String(loc.field) : '',
          loc.field !== undefined && loc.component !== undefined ? '1' : '',
          loc.component !== undefined ? String(loc.component) : '',
        ]
          .join(comp)
          .replace(new RegExp(`${escapeRe(comp)}+$`), '')
      : '';
    const cwe = [e(err.hl7ErrorCode), text, 'HL70357'].join(comp);
    const eld =
      versionNumber(version) < 2.5
        ? [
            loc ? e(loc.segment) : '',
            loc ? String(loc.segmentSequence) : '',
            loc?.field !== undefined ? String(loc.field) : '',
            [e(err.hl7ErrorCode), text, 'HL70357'].join(sub),
          ].join(comp)
        : '';
    segments.push(['ERR', eld, erl, cwe, err.severity ?? 'E'].join(fs));
  }
  return segments.join('\r');
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** ACK bytes in the charset the message declared. */
export function encodeAck(text: string, charset: SniffedMsh['charset'] | undefined): Buffer {
  // The three charsets the hub reads are Node's own encodings.
  return Buffer.from(text, charset ?? 'utf8');
}

/** What happened to a message, in terms the ACK policy needs. */
export type Disposition =
  /** Kept in Kafka and mapped: every event acknowledged. */
  | 'accepted'
  /** Kept (dead-letter topic), refused for its content: the sender can fix it. */
  | 'content-error'
  /** Kept (dead-letter topic), refused as unprocessable (unparseable, unsupported, no MSH-10). */
  | 'rejected'
  /** Not kept: Kafka did not acknowledge. The sender must resend. */
  | 'unavailable';

function wants(condition: string, success: boolean): boolean {
  switch (condition) {
    case 'NE':
      return false;
    case 'ER':
      return !success;
    case 'SU':
      return success;
    default:
      // AL, or empty / unknown: always.
      return true;
  }
}

export function isEnhancedMode(msh: SniffedMsh | null): boolean {
  return Boolean(msh && (msh.acceptAckType !== '' || msh.applicationAckType !== ''));
}

/**
 * Which acknowledgements to send, in order. Original mode: one application
 * ACK (AA / AE / AR). Enhanced mode (MSH-15 or MSH-16 valued): an accept
 * ACK (CA once the message is safely kept, CR if refused as unprocessable,
 * CE if it could not be kept) when MSH-15 asks for it, then, for a kept and
 * processable message, the application ACK when MSH-16 asks for it.
 */
export function ackCodesFor(msh: SniffedMsh | null, d: Disposition): AckCode[] {
  if (!isEnhancedMode(msh) || !msh) {
    switch (d) {
      case 'accepted':
        return ['AA'];
      case 'content-error':
        return ['AE'];
      case 'rejected':
      case 'unavailable':
        return ['AR'];
    }
  }
  const accept: AckCode = d === 'unavailable' ? 'CE' : d === 'rejected' ? 'CR' : 'CA';
  const out: AckCode[] = [];
  if (wants(msh.acceptAckType, accept === 'CA')) out.push(accept);
  if (accept === 'CA') {
    const app: AckCode = d === 'accepted' ? 'AA' : 'AE';
    if (wants(msh.applicationAckType, app === 'AA')) out.push(app);
  }
  return out;
}
