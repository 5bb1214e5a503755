import iconvModule from 'iconv-lite';
import type { Delimiters } from './decode.js';
import { refuse, type Msg } from './message.js';
import type { ErrorLocation } from './types.js';

// iconv-lite's typings declare an ESM default export its CommonJS module lacks at runtime.
const iconv = iconvModule as unknown as typeof iconvModule.default;

/**
 * Text that cannot be stored as what the sender meant is refused before any
 * event exists, with the field it is in (ERR-2) and HL7 error 102:
 *
 * - bytes that are not valid UTF-8 in a message declared UTF-8 (MSH-18).
 *   Decoding them would store U+FFFD replacement characters in a name or
 *   an identifier: a silent change of the sender's text that no one could
 *   later tell from a real character. An undeclared message falls back to
 *   ISO-8859-1 (lossless, see decode.ts); a declared one means what it says.
 * - `\Xhh…\` escapes whose bytes are not a complete, valid character in the
 *   message's charset (UTF-8), for the same reason;
 * - NUL (U+0000), raw or escaped: it has no meaning in HL7 text, and
 *   PostgreSQL (every read model) cannot store it in text or jsonb.
 *
 * AE, not AR: the charset is one the hub reads and the message is
 * otherwise well-formed; the error is in the content of one field, which
 * the sender can correct and resend (like a malformed date, also AE 102).
 */

/**
 * Where (ERR-2) the character at `index` of a message's text is: its
 * segment, that segment's occurrence, field and component. The text is the
 * decoded message (segments separated by CR); delimiters are ASCII, so a
 * latin1 reading of the bytes locates a byte offset exactly as well.
 */
export function locateAt(text: string, index: number, d: Delimiters): ErrorLocation {
  const lineStart = text.lastIndexOf('\r', index - 1) + 1;
  const before = text.slice(0, lineStart).split('\r');
  const line = text.slice(lineStart, index + 1);
  const name = text.slice(lineStart, lineStart + 3).trim() || '?';
  const sequence = 1 + before.filter((l) => l.slice(0, 3).trim() === name).length;
  const fields = line.split(d.field);
  // MSH-1 is the field separator itself, so MSH fields count one further.
  const field = fields.length - 1 + (name === 'MSH' ? 1 : 0);
  const component = afterLast(afterLast(line, d.field), d.repetition).split(d.component).length;
  return {
    segment: name,
    segmentSequence: sequence,
    ...(field > 0 ? { field } : {}),
    ...(field > 0 && component > 1 ? { component } : {}),
  };
}

/** The text after the last `sep` (all of it when there is none); Msg.parse has checked that delimiters are not empty. */
function afterLast(text: string, sep: string): string {
  return text.slice(text.lastIndexOf(sep) + 1);
}

function fieldLabel(l: ErrorLocation): string {
  return `${l.segment}${l.field === undefined ? '' : `-${l.field}`}${l.component === undefined ? '' : `.${l.component}`}`;
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether \X…\ hex bytes decode to text in this charset without loss or a NUL. */
function hexEscapeProblem(hex: string, charset: string): 'invalid' | 'nul' | null {
  const bytes = Buffer.from(hex, 'hex');
  let text: string;
  if (charset === 'utf8') {
    try {
      text = fatalUtf8.decode(bytes);
    } catch {
      return 'invalid';
    }
  } else {
    text = iconv.encodingExists(charset) ? iconv.decode(bytes, charset) : bytes.toString('latin1');
  }
  return text.includes('\u0000') ? 'nul' : null;
}

function leafEscapeProblem(leaf: string, esc: string, charset: string): 'invalid' | 'nul' | null {
  let i = 0;
  for (;;) {
    const open = leaf.indexOf(esc, i);
    if (open < 0) return null;
    const close = leaf.indexOf(esc, open + 1);
    if (close < 0) return null;
    const seq = leaf.slice(open + 1, close);
    if (/^X(?:[0-9A-Fa-f]{2})+$/.test(seq)) {
      const p = hexEscapeProblem(seq.slice(1), charset);
      if (p !== null) return p;
    }
    i = close + 1;
  }
}

/**
 * Refuses (AE 102, with the field) a message whose text cannot be stored
 * faithfully; see the module comment. `invalidUtf8Prefix` is decode.ts's
 * latin1 reading of the bytes up to the first invalid one, when there is one.
 */
export function checkMessageText(msg: Msg, text: string, invalidUtf8Prefix?: string): void {
  const d = msg.delimiters;
  if (invalidUtf8Prefix !== undefined) {
    const l = locateAt(invalidUtf8Prefix, invalidUtf8Prefix.length - 1, d);
    throw refuse(
      'AE',
      '102',
      `${fieldLabel(l)} contains bytes that are not valid UTF-8, the character set MSH-18 declares`,
      l,
    );
  }
  const nul = text.indexOf('\u0000');
  if (nul >= 0) {
    const l = locateAt(text, nul, d);
    throw refuse('AE', '102', `${fieldLabel(l)} contains a NUL character`, l);
  }
  if (d.escape === '' || !text.includes(`${d.escape}X`)) return;
  // Escapes pair up within one leaf value, as decodeEscapes reads them.
  const counts = new Map<string, number>();
  for (const line of text.split('\r')) {
    const name = line.slice(0, 3).trim();
    if (name === '') continue;
    const sequence = (counts.get(name) ?? 0) + 1;
    counts.set(name, sequence);
    if (!line.includes(d.escape)) continue;
    for (const [fi, f] of line.split(d.field).entries()) {
      // Field 0 is the segment id; MSH-2 is the encoding characters, escape character included.
      if (fi === 0 || (name === 'MSH' && fi === 1)) continue;
      if (!f.includes(d.escape)) continue;
      for (const rep of f.split(d.repetition)) {
        for (const [ci, comp] of rep.split(d.component).entries()) {
          for (const leaf of comp.split(d.subcomponent)) {
            const p = leafEscapeProblem(leaf, d.escape, msg.charset);
            if (p === null) continue;
            const l: ErrorLocation = {
              segment: name,
              segmentSequence: sequence,
              field: name === 'MSH' ? fi + 1 : fi,
              ...(ci > 0 ? { component: ci + 1 } : {}),
            };
            throw refuse(
              'AE',
              '102',
              p === 'nul'
                ? `${fieldLabel(l)} contains a NUL character (\\X escape)`
                : `${fieldLabel(l)} contains a \\X escape whose bytes are not a valid character in the message character set`,
              l,
            );
          }
        }
      }
    }
  }
}
