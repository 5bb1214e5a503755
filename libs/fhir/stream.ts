import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/**
 * Streaming readers for bulk input: neither reads a whole file into memory.
 * NDJSON: one resource per line (FHIR $export). Bundle document: one JSON
 * Bundle, possibly pretty-printed over many lines; its `entry` array is cut
 * into elements by a small scanner, one element at a time.
 */
export interface ImportItem {
  /** 1-based line number (NDJSON) or entry number (Bundle document). */
  line: number;
  text: string;
  /** Set when the item is a Bundle entry element (`{"fullUrl", "resource", "request"}`), not a resource. */
  isEntry: boolean;
}

export async function* readNdjson(
  input: Readable,
  opts: { maxLineLength?: number } = {},
): AsyncGenerator<ImportItem> {
  const rl = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  for await (const text of rl) {
    line++;
    if (text.trim() === '') continue;
    // An oversize line still counts (and is dead-lettered by the caller), but is not held.
    if (opts.maxLineLength !== undefined && text.length > opts.maxLineLength) {
      yield { line, text: '', isEntry: false };
      continue;
    }
    yield { line, text, isEntry: false };
  }
}

/**
 * Yields the elements of the top-level `entry` array of a Bundle document.
 * Everything else in the document (type, meta, ...) is skipped; a document
 * that is not an object, or has no entry array, yields nothing.
 */
export async function* readBundleEntries(
  input: Readable,
  opts: { maxEntryLength?: number } = {},
): AsyncGenerator<ImportItem> {
  const max = opts.maxEntryLength ?? 16 * 1024 * 1024;
  let depth = 0;
  let inString = false;
  let escape = false;
  // Key tracking at depth 1: the last string seen, and whether it was a key.
  let lastString = '';
  let collectingKey = false;
  let pendingKey = '';
  let inEntryArray = false;
  let entryBuf: string[] | null = null;
  let entryLen = 0;
  let oversize = false;
  let n = 0;
  for await (const chunk of input) {
    const s = typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    let segStart = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (inString) {
        if (escape) escape = false;
        else if (c === '\\') escape = true;
        else if (c === '"') inString = false;
        if (collectingKey && inString) lastString += c;
        else if (collectingKey && !inString) collectingKey = false;
        continue;
      }
      switch (c) {
        case '"':
          inString = true;
          if (depth === 1 && !inEntryArray) {
            collectingKey = true;
            lastString = '';
          }
          break;
        case ':':
          if (depth === 1) pendingKey = lastString;
          break;
        case '{':
        case '[':
          if (depth === 1 && c === '[' && pendingKey === 'entry') inEntryArray = true;
          if (inEntryArray && depth === 2 && c === '{') {
            entryBuf = [];
            entryLen = 0;
            oversize = false;
            segStart = i;
          }
          depth++;
          break;
        case '}':
        case ']':
          depth--;
          if (inEntryArray && depth === 2 && c === '}' && entryBuf) {
            const part = s.slice(segStart, i + 1);
            entryLen += part.length;
            if (!oversize && entryLen <= max) entryBuf.push(part);
            n++;
            yield { line: n, text: entryLen > max ? '' : entryBuf.join(''), isEntry: true };
            entryBuf = null;
          }
          if (inEntryArray && depth === 1) {
            inEntryArray = false;
            pendingKey = '';
          }
          break;
        case ',':
          if (depth === 1) pendingKey = '';
          break;
        default:
          break;
      }
    }
    if (entryBuf) {
      const part = s.slice(segStart);
      entryLen += part.length;
      if (entryLen > max) {
        oversize = true;
        entryBuf = [];
      } else entryBuf.push(part);
    }
  }
}
