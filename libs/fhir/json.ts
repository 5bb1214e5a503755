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

/** The one-character escapes after a backslash and what each stands for. */
const SIMPLE_ESCAPES: ReadonlyMap<string, string> = new Map([
  ['"', '"'],
  ['\\', '\\'],
  ['/', '/'],
  ['b', '\b'],
  ['f', '\f'],
  ['n', '\n'],
  ['r', '\r'],
  ['t', '\t'],
]);

/**
 * One pass over one document: the cursor, the path to the value being read
 * (for problem locations) and one method per JSON production. A class rather
 * than closures so each rule reads on its own.
 */
class StrictJsonReader {
  private i = 0;
  private readonly path: (string | number)[] = [];

  constructor(
    private readonly text: string,
    private readonly root: string,
    private readonly maxDepth: number,
  ) {}

  /** The whole input is one value, with nothing after it but whitespace. */
  document(): unknown {
    const v = this.value(0, false);
    this.ws();
    if (this.i !== this.text.length) this.fail('invalid-json', 'trailing content after the JSON value', []);
    return v;
  }

  private fail(code: JsonProblemCode, message: string, at: (string | number)[] = this.path): never {
    throw new Stop({ code, expression: render(this.root, at), message });
  }

  private ws(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i++;
      else return;
    }
  }

  private value(depth: number, nullAllowed: boolean): unknown {
    this.ws();
    const c = this.text[this.i];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') {
      const s = this.str();
      if (s === '') this.fail('empty-string', 'empty string value');
      return s;
    }
    return this.literal(nullAllowed);
  }

  private object(depth: number): Record<string, unknown> {
    if (depth >= this.maxDepth) this.fail('too-deep', `nesting deeper than ${this.maxDepth}`);
    this.i++;
    const obj: Record<string, unknown> = {};
    const seen = new Set<string>();
    this.ws();
    if (this.text[this.i] === '}') {
      this.i++;
      return obj;
    }
    for (;;) {
      const key = this.propertyName(seen);
      this.path.push(key);
      // Arrays of primitive extensions (`_given`) use null to align with their values.
      obj[key] = this.value(depth + 1, false);
      this.path.pop();
      if (this.endOfList('}')) return obj;
    }
  }

  /** After a member or element: true at the closing bracket, false after a comma (either consumed). */
  private endOfList(close: '}' | ']'): boolean {
    this.ws();
    if (this.text[this.i] === ',') {
      this.i++;
      return false;
    }
    if (this.text[this.i] === close) {
      this.i++;
      return true;
    }
    return this.fail('invalid-json', `expected "," or "${close}"`);
  }

  /** Reads `"key":`, refusing empty, forbidden and repeated names. */
  private propertyName(seen: Set<string>): string {
    this.ws();
    if (this.text[this.i] !== '"') this.fail('invalid-json', 'expected a property name');
    const key = this.str();
    if (key === '') this.fail('empty-string', 'empty property name');
    if (FORBIDDEN_KEYS.has(key))
      this.fail('forbidden-key', `property name "${key}" is not allowed`, [...this.path, key]);
    if (seen.has(key)) this.fail('duplicate-key', `duplicate property "${key}"`, [...this.path, key]);
    seen.add(key);
    this.ws();
    if (this.text[this.i] !== ':') this.fail('invalid-json', 'expected ":"');
    this.i++;
    return key;
  }

  private array(depth: number): unknown[] {
    if (depth >= this.maxDepth) this.fail('too-deep', `nesting deeper than ${this.maxDepth}`);
    this.i++;
    const arr: unknown[] = [];
    const key = this.path[this.path.length - 1];
    const alignedNulls = typeof key === 'string' && key.startsWith('_');
    this.ws();
    if (this.text[this.i] === ']') {
      this.i++;
      return arr;
    }
    for (;;) {
      this.path.push(arr.length);
      arr.push(this.value(depth + 1, alignedNulls));
      this.path.pop();
      if (this.endOfList(']')) return arr;
    }
  }

  /** true, false, null (where allowed) or a number. */
  private literal(nullAllowed: boolean): unknown {
    const { text } = this;
    if (text.startsWith('true', this.i)) {
      this.i += 4;
      return true;
    }
    if (text.startsWith('false', this.i)) {
      this.i += 5;
      return false;
    }
    if (text.startsWith('null', this.i)) {
      if (!nullAllowed) this.fail('null-value', 'null is not allowed here');
      this.i += 4;
      return null;
    }
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(text);
    if (m) {
      this.i += m[0].length;
      return Number(m[0]);
    }
    return this.fail(
      'invalid-json',
      this.i >= text.length ? 'unexpected end of input' : 'unexpected character',
    );
  }

  private str(): string {
    const { text } = this;
    // Caller has checked the opening quote.
    this.i++;
    let out = '';
    let start = this.i;
    for (;;) {
      if (this.i >= text.length) this.fail('invalid-json', 'unterminated string');
      const c = text.charCodeAt(this.i);
      if (c === 0x22) {
        out += text.slice(start, this.i);
        this.i++;
        return this.checkedString(out);
      }
      if (c < 0x20) this.fail('invalid-json', 'control character in string');
      if (c === 0x5c) {
        out += text.slice(start, this.i) + this.escape();
        start = this.i;
        continue;
      }
      this.i++;
    }
  }

  /** Decodes the escape at the cursor (a backslash) and moves past it. */
  private escape(): string {
    const e = this.text[this.i + 1];
    const simple = e === undefined ? undefined : SIMPLE_ESCAPES.get(e);
    if (simple !== undefined) {
      this.i += 2;
      return simple;
    }
    if (e !== 'u') return this.fail('invalid-json', 'bad escape in string');
    const hex = this.text.slice(this.i + 2, this.i + 6);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid-json', 'bad \\u escape');
    this.i += 6;
    return String.fromCharCode(parseInt(hex, 16));
  }

  private checkedString(out: string): string {
    // "\ud800" escapes (or such text handed in) are not Unicode: no UTF-8 encoding, no
    // Avro string, no PostgreSQL text. U+0000 cannot be stored in PostgreSQL text or jsonb.
    if (LONE_SURROGATE.test(out))
      this.fail('lone-surrogate', 'string is not valid Unicode (unpaired surrogate)');
    if (out.includes('\u0000')) this.fail('nul-character', 'string contains U+0000 (NUL)');
    // One stored form for canonically equivalent text (a name sent composed or decomposed).
    return normaliseText(out);
  }
}

export function parseStrictJson(text: string, opts: StrictJsonOptions = {}): StrictJsonResult {
  const root = sniffRoot(text);
  if (opts.maxLength !== undefined && text.length > opts.maxLength) {
    return {
      ok: false,
      problem: { code: 'too-large', expression: root, message: `input exceeds ${opts.maxLength} characters` },
    };
  }
  try {
    const value = new StrictJsonReader(text, root, opts.maxDepth ?? DEFAULT_MAX_DEPTH).document();
    return { ok: true, value };
  } catch (err) {
    if (err instanceof Stop) return { ok: false, problem: err.problem };
    throw err;
  }
}
