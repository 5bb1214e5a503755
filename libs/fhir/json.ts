import { normaliseText } from '../identity/hygiene.js';

/**
 * A strict JSON reader for untrusted FHIR input. JSON.parse silently keeps
 * the last of duplicate keys, accepts `null` anywhere and lets `__proto__`
 * through to whoever copies the object later; FHIR forbids the first two
 * and the third is an attack. Strings must be valid Unicode without NUL (a
 * `\ud800` escape would reach the log as text no UTF-8 reader can decode)
 * and are returned in NFC. Problems come back with a FHIRPath-style
 * location and never quote the offending value (it may be PHI).
 */

export type JsonProblemCode =
  | 'invalid-json'
  | 'duplicate-key'
  | 'empty-string'
  | 'null-value'
  | 'forbidden-key'
  | 'too-deep'
  | 'too-large'
  | 'invalid-utf8'
  | 'lone-surrogate'
  | 'nul-character';

export interface JsonProblem {
  code: JsonProblemCode;
  /** FHIRPath-style location, e.g. `Patient.name[0].family`. */
  expression: string;
  message: string;
}

export interface StrictJsonOptions {
  /** Maximum nesting of objects and arrays. */
  maxDepth?: number;
  /** Maximum input length in UTF-16 code units (the HTTP layer limits bytes before this). */
  maxLength?: number;
}

export type StrictJsonResult = { ok: true; value: unknown } | { ok: false; problem: JsonProblem };

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
export const DEFAULT_MAX_DEPTH = 32;

class Stop extends Error {
  constructor(readonly problem: JsonProblem) {
    super(problem.message);
  }
}

/** Best-effort resource type for locations, before the document is parsed. */
function sniffRoot(text: string): string {
  const m = /^\s*\{[^{}[\]]*?"resourceType"\s*:\s*"([A-Za-z]{1,64})"/.exec(text.slice(0, 4096));
  return m?.[1] ?? '$';
}

function render(root: string, path: readonly (string | number)[]): string {
  let out = root;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${p}`;
  return out;
}

const LONE_SURROGATE = /\p{Cs}/u;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

export function parseStrictJson(text: string, opts: StrictJsonOptions = {}): StrictJsonResult {
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  const root = sniffRoot(text);
  const path: (string | number)[] = [];
  let i = 0;

  const fail = (code: JsonProblemCode, message: string, at: (string | number)[] = path): never => {
    throw new Stop({ code, expression: render(root, at), message });
  };
  if (opts.maxLength !== undefined && text.length > opts.maxLength) {
    return {
      ok: false,
      problem: { code: 'too-large', expression: root, message: `input exceeds ${opts.maxLength} characters` },
    };
  }

  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return;
    }
  };

  const str = (): string => {
    // Caller has checked the opening quote.
    i++;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= text.length) fail('invalid-json', 'unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        // "\ud800" escapes (or such text handed in) are not Unicode: no UTF-8 encoding, no
        // Avro string, no PostgreSQL text. U+0000 cannot be stored in PostgreSQL text or jsonb.
        if (LONE_SURROGATE.test(out))
          fail('lone-surrogate', 'string is not valid Unicode (unpaired surrogate)');
        if (out.includes('\u0000')) fail('nul-character', 'string contains U+0000 (NUL)');
        // One stored form for canonically equivalent text (a name sent composed or decomposed).
        return normaliseText(out);
      }
      if (c < 0x20) fail('invalid-json', 'control character in string');
      if (c === 0x5c) {
        out += text.slice(start, i);
        const e = text[i + 1];
        switch (e) {
          case '"':
          case '\\':
          case '/':
            out += e;
            i += 2;
            break;
          case 'b':
            out += '\b';
            i += 2;
            break;
          case 'f':
            out += '\f';
            i += 2;
            break;
          case 'n':
            out += '\n';
            i += 2;
            break;
          case 'r':
            out += '\r';
            i += 2;
            break;
          case 't':
            out += '\t';
            i += 2;
            break;
          case 'u': {
            const hex = text.slice(i + 2, i + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid-json', 'bad \\u escape');
            out += String.fromCharCode(parseInt(hex, 16));
            i += 6;
            break;
          }
          case undefined:
          default:
            fail('invalid-json', 'bad escape in string');
        }
        start = i;
        continue;
      }
      i++;
    }
  };

  const value = (depth: number, nullAllowed: boolean): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      if (depth >= maxDepth) fail('too-deep', `nesting deeper than ${maxDepth}`);
      i++;
      const obj: Record<string, unknown> = {};
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('invalid-json', 'expected a property name');
        const key = str();
        if (key === '') fail('empty-string', 'empty property name');
        if (FORBIDDEN_KEYS.has(key))
          fail('forbidden-key', `property name "${key}" is not allowed`, [...path, key]);
        if (seen.has(key)) fail('duplicate-key', `duplicate property "${key}"`, [...path, key]);
        seen.add(key);
        ws();
        if (text[i] !== ':') fail('invalid-json', 'expected ":"');
        i++;
        path.push(key);
        // Arrays of primitive extensions (`_given`) use null to align with their values.
        obj[key] = value(depth + 1, false);
        path.pop();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail('invalid-json', 'expected "," or "}"');
      }
    }
    if (c === '[') {
      if (depth >= maxDepth) fail('too-deep', `nesting deeper than ${maxDepth}`);
      i++;
      const arr: unknown[] = [];
      const key = path[path.length - 1];
      const alignedNulls = typeof key === 'string' && key.startsWith('_');
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        path.push(arr.length);
        arr.push(value(depth + 1, alignedNulls));
        path.pop();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail('invalid-json', 'expected "," or "]"');
      }
    }
    if (c === '"') {
      const s = str();
      if (s === '') fail('empty-string', 'empty string value');
      return s;
    }
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      if (!nullAllowed) fail('null-value', 'null is not allowed here');
      i += 4;
      return null;
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m) {
      i += m[0].length;
      return Number(m[0]);
    }
    return fail('invalid-json', i >= text.length ? 'unexpected end of input' : 'unexpected character');
  };

  try {
    const v = value(0, false);
    ws();
    if (i !== text.length) fail('invalid-json', 'trailing content after the JSON value', []);
    return { ok: true, value: v };
  } catch (err) {
    if (err instanceof Stop) return { ok: false, problem: err.problem };
    throw err;
  }
}
