/**
 * Streaming readers for bulk input: neither reads a whole file into memory.
 * NDJSON: one resource per line (FHIR $export). Bundle document: one JSON
 * Bundle, possibly pretty-printed over many lines; its `entry` array is cut
 * into elements by a small scanner, one element at a time.
 *
 * Both work on bytes and decode each line (or entry) as strict UTF-8 on its
 * own: a line with invalid bytes is yielded flagged (and dead-lettered by the
 * import) instead of carrying U+FFFD into a stored name, and a multi-byte
 * character split across two chunks of the stream stays whole. Every
 * delimiter the scanners look for is ASCII, and no byte of a multi-byte
 * UTF-8 sequence is ASCII, so scanning bytes finds exactly what scanning
 * characters would.
 */
export interface ImportItem {
  /** 1-based line number (NDJSON) or entry number (Bundle document). */
  line: number;
  /** The line or entry; '' when it was too long (or not UTF-8) to hold. */
  text: string;
  /** Set when the item is a Bundle entry element (`{"fullUrl", "resource", "request"}`), not a resource. */
  isEntry: boolean;
  /** Set when the item's bytes are not valid UTF-8 (text is then ''). */
  invalidUtf8?: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** The per-line (NDJSON) and per-entry (Bundle) limit when none is given: 16 MiB of UTF-8. */
export const DEFAULT_MAX_ITEM_BYTES = 16 * 1024 * 1024;

function isBlank(b: Buffer): boolean {
  for (const x of b) if (x !== 0x20 && (x < 0x09 || x > 0x0d)) return false;
  return true;
}

function toBuffer(chunk: unknown): Buffer {
  return typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
}

/** Decodes held parts into an item's text fields; over-limit and invalid items carry no text. */
function textOf(parts: readonly Buffer[], oversize: boolean): { text: string; invalidUtf8?: true } {
  if (oversize) return { text: '' };
  try {
    const [first] = parts;
    return { text: utf8.decode(parts.length === 1 && first ? first : Buffer.concat(parts)) };
  } catch {
    return { text: '', invalidUtf8: true };
  }
}

/**
 * Cuts pushed chunks into NDJSON lines. The size limit is checked as the
 * bytes arrive: once a line passes `maxLineBytes`, what was held of it is let
 * go and the rest of it only counted, so a line of any length costs at most
 * the limit plus the chunk being read (a 40 MB line no longer sits in memory
 * before being found too long). It still comes out, empty, with its number:
 * the import dead-letters it as too large and goes on with the next line.
 */
export class NdjsonSplitter {
  private parts: Buffer[] = [];
  private held = 0;
  private oversize = false;
  private blank = true;
  private line = 0;
  // A CR ends a line; an LF right after it (maybe in the next chunk) belongs to the same break.
  private afterCr = false;

  constructor(private readonly maxLineBytes: number = DEFAULT_MAX_ITEM_BYTES) {}

  /** Bytes of the current line held in memory (0 once it is over the limit). */
  get heldBytes(): number {
    return this.oversize ? 0 : this.held;
  }

  /** The lines the chunk completes. */
  push(b: Buffer): ImportItem[] {
    const out: ImportItem[] = [];
    if (b.length === 0) return out;
    let start = this.afterCr && b[0] === 0x0a ? 1 : 0;
    this.afterCr = false;
    // Native searches for the two terminators, each redone only once passed.
    let lf = b.indexOf(0x0a, start);
    let cr = b.indexOf(0x0d, start);
    for (;;) {
      if (lf >= 0 && lf < start) lf = b.indexOf(0x0a, start);
      if (cr >= 0 && cr < start) cr = b.indexOf(0x0d, start);
      const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (end < 0) break;
      this.take(b.subarray(start, end));
      const item = this.finish();
      if (item) out.push(item);
      start = end + 1;
      if (b[end] === 0x0d) {
        if (start === b.length) this.afterCr = true;
        else if (b[start] === 0x0a) start++;
      }
    }
    this.take(b.subarray(start));
    return out;
  }

  /** The last line, when the input does not end with a line break. */
  end(): ImportItem[] {
    if (this.held === 0 && this.blank) return [];
    const item = this.finish();
    return item ? [item] : [];
  }

  private take(b: Buffer): void {
    if (b.length === 0) return;
    if (this.blank && !isBlank(b)) this.blank = false;
    this.held += b.length;
    if (this.held > this.maxLineBytes) {
      this.oversize = true;
      this.parts = [];
    } else if (!this.oversize) this.parts.push(b);
  }

  private finish(): ImportItem | undefined {
    this.line++;
    const item: ImportItem | undefined = this.blank
      ? undefined
      : { line: this.line, isEntry: false, ...textOf(this.parts, this.oversize) };
    this.parts = [];
    this.held = 0;
    this.oversize = false;
    this.blank = true;
    return item;
  }
}

export async function* readNdjson(
  input: AsyncIterable<unknown>,
  opts: { maxLineBytes?: number } = {},
): AsyncGenerator<ImportItem> {
  const splitter = new NdjsonSplitter(opts.maxLineBytes);
  for await (const chunk of input) yield* splitter.push(toBuffer(chunk));
  yield* splitter.end();
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Yields the elements of the top-level `entry` array of a Bundle document.
 * Everything else in the document (type, meta, ...) is skipped; a document
 * that is not an object, or has no entry array, yields nothing.
 */
export async function* readBundleEntries(
  input: AsyncIterable<unknown>,
  opts: { maxEntryBytes?: number } = {},
): AsyncGenerator<ImportItem> {
  // Checked at the end of every chunk: an entry costs at most the limit plus one chunk.
  const byteCap = opts.maxEntryBytes ?? DEFAULT_MAX_ITEM_BYTES;
  let depth = 0;
  let inString = false;
  let escape = false;
  // Key tracking at depth 1: the last string seen, and whether it was a key.
  let lastString = '';
  let collectingKey = false;
  let pendingKey = '';
  let inEntryArray = false;
  let entryBuf: Buffer[] | null = null;
  let entryLen = 0;
  let oversize = false;
  let n = 0;
  for await (const chunk of input) {
    const s = toBuffer(chunk);
    let segStart = 0;
    // Reading past the end of a Buffer gives undefined: that is the loop's end.
    for (let i = 0; ; i++) {
      const c = s[i];
      if (c === undefined) break;
      if (inString) {
        if (escape) escape = false;
        else if (c === BACKSLASH) escape = true;
        else if (c === QUOTE) inString = false;
        // Keys that matter ("entry") are ASCII; other bytes only need to be kept apart.
        if (collectingKey && inString) lastString += String.fromCharCode(c);
        else if (collectingKey && !inString) collectingKey = false;
        continue;
      }
      switch (c) {
        case QUOTE:
          inString = true;
          if (depth === 1 && !inEntryArray) {
            collectingKey = true;
            lastString = '';
          }
          break;
        case 0x3a: // :
          if (depth === 1) pendingKey = lastString;
          break;
        case 0x7b: // {
        case 0x5b: // [
          if (depth === 1 && c === 0x5b && pendingKey === 'entry') inEntryArray = true;
          if (inEntryArray && depth === 2 && c === 0x7b) {
            entryBuf = [];
            entryLen = 0;
            oversize = false;
            segStart = i;
          }
          depth++;
          break;
        case 0x7d: // }
        case 0x5d: // ]
          depth--;
          if (inEntryArray && depth === 2 && c === 0x7d && entryBuf) {
            const part = s.subarray(segStart, i + 1);
            entryLen += part.length;
            if (!oversize && entryLen <= byteCap) entryBuf.push(part);
            n++;
            yield { line: n, isEntry: true, ...textOf(entryBuf, oversize || entryLen > byteCap) };
            entryBuf = null;
          }
          if (inEntryArray && depth === 1) {
            inEntryArray = false;
            pendingKey = '';
          }
          break;
        case 0x2c: // ,
          if (depth === 1) pendingKey = '';
          break;
        default:
          break;
      }
    }
    if (entryBuf) {
      const part = s.subarray(segStart);
      entryLen += part.length;
      if (entryLen > byteCap) {
        oversize = true;
        entryBuf = [];
      } else entryBuf.push(part);
    }
  }
}
