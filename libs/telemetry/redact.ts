/**
 * The logger's second safety net (the first is censoring PHI keys): errors
 * from drivers quote data. node-postgres puts the offending row in `detail`
 * ("Key (mrn)=(...) already exists"), the statement and its values in
 * `where` and `internalQuery`, a value in the message itself ("invalid input
 * syntax for type integer: ..."); knex prefixes the message with the SQL and
 * its bindings filled in; kafkajs logs a failed batch handler's error as an
 * object, its stack as a string and its message inside the log line
 * ("Crash: error: ..."). Everything a log call carries is scrubbed here, at
 * any depth, before it is written:
 *
 * - driver fields (`DRIVER_ERROR_KEYS`) are redacted wherever they appear;
 * - a driver error's message (a Postgres error: `severity` and a SQLSTATE
 *   `code`) is redacted, and so is that text wherever it is repeated: in a
 *   wrapping error's message (`toHubError` copies it), in the log line;
 * - stacks keep their frames only (their first line repeats the message); a
 *   bare stack string's message is treated as foreign text, except kafkajs's
 *   own errors (connection, protocol), which quote no data;
 * - the rest of an error (type, code, constraint, table, column, SQLSTATE)
 *   is kept: it says what went wrong without saying with whose data.
 */

/** Fields of driver errors (node-postgres, knex) that quote row values, statement parameters or SQL. */
export const DRIVER_ERROR_KEYS: ReadonlySet<string> = new Set([
  'detail',
  'where',
  'hint',
  'internalQuery',
  'parameters',
  'bindings',
  'sql',
  'query',
]);

export const CENSOR = '[REDACTED]';
const MAX_DEPTH = 8;
/** Shorter texts are not worth replacing (and would hit harmless words). */
const MIN_FOREIGN = 4;

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null;

function isPlain(v: unknown): boolean {
  if (!isObj(v) || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A Postgres error as node-postgres raises it (also after knex rewrote its message). */
export function isDriverError(v: unknown): boolean {
  if (!isObj(v)) return false;
  return (
    typeof v['severity'] === 'string' && typeof v['code'] === 'string' && /^[0-9A-Z]{5}$/.test(v['code'])
  );
}

/** Frames only: the lines before the first `at` repeat the message. */
export function stackFrames(stack: string): string {
  const at = stack.search(/\n\s+at /);
  return at < 0 ? '' : stack.slice(at + 1);
}

/** A stack's first lines without the `Name: ` prefix, and the name. */
function stackHeader(stack: string): { name: string; message: string } {
  const at = stack.search(/\n\s+at /);
  const head = at < 0 ? stack : stack.slice(0, at);
  const m = /^([\w$.]+): ([\s\S]*)$/.exec(head);
  return m ? { name: m[1] ?? '', message: m[2] ?? '' } : { name: '', message: head };
}

/** kafkajs's own errors quote brokers and protocol codes; the retry wrapper quotes whatever failed. */
const benignStackName = (name: string) => /^KafkaJS/.test(name) && name !== 'KafkaJSNumberOfRetriesExceeded';

/** The data-bearing texts (driver messages, bare stack headers) reachable in a log call's object. */
export function foreignTexts(value: unknown): string[] {
  const out = new Set<string>();
  const seen = new WeakSet<object>();
  const walk = (v: unknown, key: string, depth: number): void => {
    if (typeof v === 'string') {
      if (key === 'stack') {
        const h = stackHeader(v);
        if (!benignStackName(h.name)) out.add(h.message);
      }
      return;
    }
    if (!isObj(v) || depth > MAX_DEPTH || seen.has(v)) return;
    seen.add(v);
    if (isDriverError(v)) {
      if (typeof v['message'] === 'string') out.add(v['message']);
      if (typeof v['stack'] === 'string') out.add(stackHeader(v['stack']).message);
    }
    if (Array.isArray(v)) {
      for (const x of v) walk(x, key, depth + 1);
      return;
    }
    if (!isPlain(v) && !(v instanceof Error)) return;
    for (const k of Object.keys(v)) walk(v[k], k, depth + 1);
    if (v instanceof Error && v.cause !== undefined) walk(v.cause, 'cause', depth + 1);
  };
  walk(value, '', 0);
  return [...out].filter((t) => t.length >= MIN_FOREIGN).sort((a, b) => b.length - a.length);
}

/** `text` with every foreign text in it replaced by the censor. */
export function withoutForeign(text: string, foreign: readonly string[]): string {
  let out = text;
  for (const t of foreign) if (out.includes(t)) out = out.split(t).join(CENSOR);
  return out;
}

/**
 * A copy of a log call's object with driver fields, driver messages and
 * stack headers removed. Errors become plain objects (`type`, `message`,
 * `stack`, their own fields, `cause`); plain objects and arrays are copied;
 * other objects (dates, buffers, class instances) are kept as they are.
 */
export function scrubForLog(value: unknown, foreign: readonly string[] = foreignTexts(value)): unknown {
  const seen = new WeakSet<object>();
  const field = (k: string, v: unknown, depth: number): unknown => {
    if (DRIVER_ERROR_KEYS.has(k) && v !== undefined && v !== null) return CENSOR;
    if (k === 'stack' && typeof v === 'string') return stackFrames(v);
    if (k === 'message' && typeof v === 'string') return withoutForeign(v, foreign);
    return walk(v, depth + 1);
  };
  const fields = (from: Obj, into: Obj, depth: number): Obj => {
    for (const k of Object.keys(from)) if (!(k in into)) into[k] = field(k, from[k], depth);
    return into;
  };
  const walk = (v: unknown, depth: number): unknown => {
    if (!isObj(v)) return v;
    if (depth > MAX_DEPTH) return '[Truncated]';
    if (seen.has(v)) return '[Circular]';
    if (Array.isArray(v)) {
      seen.add(v);
      return v.map((x) => walk(x, depth + 1));
    }
    if (v instanceof Error) {
      seen.add(v);
      const view: Obj = {
        type: v.constructor.name || v.name,
        message: isDriverError(v) ? CENSOR : withoutForeign(v.message, foreign),
        stack: stackFrames(v.stack ?? ''),
      };
      fields(v, view, depth);
      if (v.cause !== undefined && !('cause' in view)) view['cause'] = walk(v.cause, depth + 1);
      return view;
    }
    if (!isPlain(v)) return v;
    seen.add(v);
    const copy = fields(v, {}, depth);
    if (isDriverError(v) && typeof copy['message'] === 'string') copy['message'] = CENSOR;
    return copy;
  };
  return walk(value, 0);
}
