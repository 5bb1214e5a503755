import iconvModule from 'iconv-lite';
import { isUtf8 } from 'node:buffer';

// iconv-lite's typings declare an ESM default export that its CommonJS
// module does not have at runtime; the module object itself is the API.
const iconv = iconvModule as unknown as typeof iconvModule.default;

/**
 * Bytes → text for one HL7 v2 message, and HL7 escape-sequence decoding.
 *
 * MSH-18 can only be read before the text is decoded, so it is sniffed from
 * the raw bytes: every charset accepted here is ASCII-compatible, so the MSH
 * segment reads the same under all of them. UTF-16/32 and the ISO-2022 (JIS)
 * family are not ASCII-compatible and are refused.
 */

export interface DecodedHl7 {
  text: string;
  /** iconv-lite name actually used to decode (utf8, latin1, ascii, ...). */
  charset: string;
  /** MSH-18 (first repetition) as declared, trimmed; '' when absent. */
  declared: string;
  /** false when MSH-18 names a charset the hub does not decode; text is then a latin1 best effort. */
  supported: boolean;
  /**
   * Whether the last segment ended with a segment terminator (CR, or LF/CRLF) before any MLLP
   * trailer. The text never shows it (terminators are trimmed), but a message without one may have
   * been cut off inside its last segment: structure.ts tolerates that only for a complete segment.
   */
  terminated: boolean;
  /**
   * Set when MSH-18 declares UTF-8 but the bytes are not: the latin1 reading of the message up to
   * and including the first invalid byte (delimiters are ASCII, so text.ts locates the field from
   * it). The message is refused (text.ts) rather than stored with U+FFFD in place of the bytes.
   */
  invalidUtf8Prefix?: string;
}

// HL7 table 0211 plus the spellings senders use in practice, upper-cased.
const CHARSETS: Readonly<Record<string, string>> = {
  ASCII: 'ascii',
  'US-ASCII': 'ascii',
  'ISO IR6': 'ascii',
  'ISO-IR6': 'ascii',
  '8859/1': 'latin1',
  'ISO IR100': 'latin1',
  'ISO-IR100': 'latin1',
  'ISO-8859-1': 'latin1',
  'ISO8859-1': 'latin1',
  'ISO_8859-1': 'latin1',
  LATIN1: 'latin1',
  'LATIN-1': 'latin1',
  '8859/2': 'iso-8859-2',
  '8859/3': 'iso-8859-3',
  '8859/4': 'iso-8859-4',
  '8859/5': 'iso-8859-5',
  '8859/6': 'iso-8859-6',
  '8859/7': 'iso-8859-7',
  '8859/8': 'iso-8859-8',
  '8859/9': 'iso-8859-9',
  '8859/15': 'iso-8859-15',
  'ISO-8859-15': 'iso-8859-15',
  'WINDOWS-1252': 'win1252',
  CP1252: 'win1252',
  'UNICODE UTF-8': 'utf8',
  'UTF-8': 'utf8',
  UTF8: 'utf8',
  'ISO IR192': 'utf8',
  'ISO-IR192': 'utf8',
  'GB 18030-2000': 'gb18030',
  GB18030: 'gb18030',
  'BIG-5': 'big5',
  BIG5: 'big5',
  'KS X 1001': 'euc-kr',
};

/** iconv-lite name for an MSH-18 value; undefined when not supported. */
export function charsetForMsh18(declared: string): string | undefined {
  const k = declared.trim().toUpperCase();
  if (k === '') return undefined;
  return CHARSETS[k];
}

const CR = 0x0d;
const LF = 0x0a;

/** Strips what an MLLP framer may leave around the payload and a UTF-8 BOM. */
function payload(bytes: Buffer): Buffer {
  let start = 0;
  let end = bytes.length;
  if (bytes[start] === 0x0b) start++;
  if (bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf) start += 3;
  while (end > start && (bytes[end - 1] === 0x1c || bytes[end - 1] === CR || bytes[end - 1] === LF)) end--;
  return bytes.subarray(start, end);
}

/** Whether the bytes end with a segment terminator, ignoring an MLLP end block (FS, or FS CR) left by a framer. */
export function endsWithTerminator(bytes: Buffer): boolean {
  let end = bytes.length;
  if (end >= 2 && bytes[end - 1] === CR && bytes[end - 2] === 0x1c) end -= 2;
  else if (end >= 1 && bytes[end - 1] === 0x1c) end -= 1;
  return end > 0 && (bytes[end - 1] === CR || bytes[end - 1] === LF);
}

/** MSH-18 (first repetition) read from the raw bytes; '' when absent or not an MSH message. */
export function sniffMsh18(bytes: Buffer): string {
  const b = payload(bytes);
  if (b.length < 4 || b.toString('latin1', 0, 3) !== 'MSH') return '';
  let eol = b.indexOf(CR);
  const lf = b.indexOf(LF);
  if (eol < 0 || (lf >= 0 && lf < eol)) eol = lf;
  const msh = b.toString('latin1', 0, eol < 0 ? b.length : eol);
  const fs = msh.charAt(3);
  const rep = msh.charAt(5);
  // parts[0] = 'MSH', parts[1] = MSH-2, so MSH-n is parts[n - 1].
  const parts = msh.split(fs);
  const f18 = parts[17] ?? '';
  return (rep && rep !== fs ? (f18.split(rep)[0] ?? '') : f18).trim();
}

/** Byte offset of the first byte that does not start or continue a valid UTF-8 sequence; -1 when valid. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  // Reading past the end gives undefined, which ends the scan.
  for (let x = b[i]; x !== undefined; x = b[i]) {
    if (x < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    if (x >= 0xc2 && x <= 0xdf) {
      n = 1;
      min = 0x80;
    } else if (x >= 0xe0 && x <= 0xef) {
      n = 2;
      min = 0x800;
    } else if (x >= 0xf0 && x <= 0xf4) {
      n = 3;
      min = 0x10000;
    } else return i;
    let cp = x & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const c = b[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return i;
    i += n + 1;
  }
  return -1;
}

function isValidUtf8(b: Buffer): boolean {
  // Checked in place: a round trip through a string copied a 16 MiB message twice.
  return isUtf8(b);
}

/** Segment terminators \r\n and \n become \r, the HL7 terminator. */
export function normaliseSegmentTerminators(text: string): string {
  return text.replace(/\r\n|\n/g, '\r');
}

/**
 * Decodes one message. An empty MSH-18 means ASCII by the standard, but
 * senders routinely send undeclared UTF-8: it is decoded as UTF-8 when the
 * bytes are valid UTF-8 and as ISO-8859-1 otherwise (never lossy); so is a
 * message declared ASCII that contains 8-bit bytes. A message declared
 * UTF-8 whose bytes are not is marked (invalidUtf8Prefix) for refusal, not
 * guessed at. Never throws.
 */
export function decodeHl7Bytes(bytes: Buffer): DecodedHl7 {
  const b = payload(bytes);
  const declared = sniffMsh18(b);
  let charset: string;
  let supported = true;
  if (declared === '') {
    charset = isValidUtf8(b) ? 'utf8' : 'latin1';
  } else {
    const known = charsetForMsh18(declared);
    if (known === undefined) {
      supported = false;
      charset = 'latin1';
    } else if (known === 'ascii' && b.some((x) => x > 0x7f)) {
      // Declared ASCII but 8-bit bytes: the declaration is wrong, and replacing
      // the bytes would lose text. Same rule as an undeclared charset.
      charset = isValidUtf8(b) ? 'utf8' : 'latin1';
    } else {
      charset = known;
    }
  }
  const text = normaliseSegmentTerminators(iconv.decode(b, charset));
  const out: DecodedHl7 = { text, charset, declared, supported, terminated: endsWithTerminator(bytes) };
  if (charset === 'utf8' && declared !== '' && !isUtf8(b)) {
    const bad = firstInvalidUtf8(b);
    out.invalidUtf8Prefix = normaliseSegmentTerminators(b.toString('latin1', 0, bad + 1));
  }
  return out;
}

/** The five delimiters (MSH-1 and MSH-2) a message is encoded with. */
export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

export const DEFAULT_DELIMITERS: Delimiters = {
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
};

/**
 * Decodes HL7 escape sequences in one leaf value (after the message has been
 * split on its delimiters). \.br\ and \.sp\ become newlines; highlighting,
 * other formatting and charset-switching sequences are dropped; \Xhh..\ is
 * decoded as bytes in the message charset. An unterminated escape is kept
 * literally rather than losing text.
 */
export function decodeEscapes(value: string, d: Delimiters = DEFAULT_DELIMITERS, charset = 'utf8'): string {
  const esc = d.escape;
  if (esc === '' || !value.includes(esc)) return value;
  let out = '';
  let i = 0;
  while (i < value.length) {
    const c = value.charAt(i);
    if (c !== esc) {
      out += c;
      i++;
      continue;
    }
    const close = value.indexOf(esc, i + 1);
    if (close < 0) {
      out += value.slice(i);
      break;
    }
    const seq = value.slice(i + 1, close);
    out += expand(seq, d, charset) ?? value.slice(i, close + 1);
    i = close + 1;
  }
  return out;
}

function expand(seq: string, d: Delimiters, charset: string): string | undefined {
  switch (seq) {
    case 'F':
      return d.field;
    case 'S':
      return d.component;
    case 'T':
      return d.subcomponent;
    case 'R':
      return d.repetition;
    case 'E':
      return d.escape;
    case 'H':
    case 'N':
      return '';
    case '.br':
      return '\n';
    case '.fi':
    case '.nf':
      return '';
    default:
      break;
  }
  const head = seq.charAt(0);
  if (head === 'X' && /^X(?:[0-9A-Fa-f]{2})*$/.test(seq)) {
    const hex = Buffer.from(seq.slice(1), 'hex');
    return charset && iconv.encodingExists(charset) ? iconv.decode(hex, charset) : hex.toString('latin1');
  }
  if (seq.startsWith('.sp')) {
    const n = Number(seq.slice(3).trim() || '1');
    return Number.isInteger(n) && n >= 0 && n <= 20 ? '\n'.repeat(n) : '\n';
  }
  // Indentation, centring, skips, charset switching (\C..\, \M..\) and
  // locally defined escapes (\Z..\) have no plain-text meaning.
  if (/^(\.in|\.ti|\.sk|\.ce)/.test(seq) || /^[CMZ][0-9A-Za-z]*$/.test(seq)) return '';
  return undefined;
}
