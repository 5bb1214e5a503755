import avsc from 'avsc';
import { HubError } from '../errors/index.js';
import { EVENT_CONTRACTS, EVENT_TYPES, type EventType, type EventTypeMap } from './generated.js';
import { nameUuid } from './name-uuid.js';

export * from './generated.js';
export * from './values.js';

/** A decoded event with its type as the discriminant, for exhaustive switches. */
export type ClinicalEvent = { [K in EventType]: { type: K; data: EventTypeMap[K] } }[EventType];

export function isEventType(name: string): name is EventType {
  return (EVENT_TYPES as readonly string[]).includes(name);
}

export function contractOf(type: EventType): (typeof EVENT_CONTRACTS)[EventType] {
  return EVENT_CONTRACTS[type];
}

const byFullName = new Map<string, EventType>(EVENT_TYPES.map((t) => [EVENT_CONTRACTS[t].fullName, t]));

export function eventTypeOfFullName(fullName: string): EventType | undefined {
  return byFullName.get(fullName);
}

const types = new Map<EventType, avsc.Type>();

/** The avsc Type compiled from the contract this code was built against (the reader schema). */
export function avroTypeOf(type: EventType): avsc.Type {
  let t = types.get(type);
  if (!t) {
    t = avsc.Type.forSchema(EVENT_CONTRACTS[type].schema as avsc.Schema);
    types.set(type, t);
  }
  return t;
}

// A lone UTF-16 surrogate has no UTF-8 encoding (avsc would write U+FFFD, or a strict
// reader would fail on the record); PostgreSQL text and jsonb cannot hold U+0000.
const LONE_SURROGATE = /\p{Cs}/u;
const isUnstorable = (s: string): boolean => LONE_SURROGATE.test(s) || s.includes('\u0000');

/** Paths of strings (and map keys) that no strict UTF-8 reader or read model can store. */
function unstorableText(v: unknown, path: string[], out: string[]): void {
  if (typeof v === 'string') {
    if (isUnstorable(v)) out.push(`${path.join('.') || '(root)'} (lone surrogate or NUL in text)`);
    return;
  }
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return;
  const entries: [string, unknown][] = Array.isArray(v)
    ? v.map((x, i) => [String(i), x])
    : Object.entries(v as Record<string, unknown>);
  for (const [k, x] of entries) {
    path.push(k);
    if (isUnstorable(k)) out.push(`${path.join('.')} (lone surrogate or NUL in a key)`);
    unstorableText(x, path, out);
    path.pop();
  }
}

/**
 * Whether any string or key in `v` is unstorable: unstorableText's rule without building paths
 * or entry arrays, for the common case of valid text (paths are only computed when this is true).
 */
function hasUnstorableText(v: unknown): boolean {
  if (typeof v === 'string') return isUnstorable(v);
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (hasUnstorableText(x)) return true;
    return false;
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (isUnstorable(k) || hasUnstorableText(o[k])) return true;
  return false;
}

/** Whether `data` matches its contract and holds only storable text (invalidPaths would be empty). */
export function isValidEvent(type: EventType, data: unknown): boolean {
  // avsc without an error hook stops at the first mismatch and tracks no path through the fields.
  return avroTypeOf(type).isValid(data) && !hasUnstorableText(data);
}

/**
 * Paths of strings and keys in any JSON-like value that no strict UTF-8
 * reader, Postgres text or jsonb column can hold (never the values: they may
 * be PHI). Events are checked here before encoding; other records that are
 * written to Postgres (audit events) use the same rule.
 */
export function unstorableTextPaths(v: unknown): string[] {
  const out: string[] = [];
  unstorableText(v, [], out);
  return out;
}

/**
 * Checks an event against its Avro contract and returns the offending field
 * paths (never values: values may be PHI). Also refuses text that is not
 * valid Unicode (lone surrogates) or holds NUL: every event passes here
 * before it is encoded (assertValidEvent in the codec), so no path can
 * write such a record to the log.
 */
export function invalidPaths(type: EventType, data: unknown): string[] {
  const paths: string[] = [];
  avroTypeOf(type).isValid(data, {
    errorHook: (path: string[]) => {
      paths.push(path.join('.') || '(root)');
    },
  });
  unstorableText(data, [], paths);
  return paths;
}

export function assertValidEvent<K extends EventType>(
  type: K,
  data: unknown,
): asserts data is EventTypeMap[K] {
  // Every event passes here (codec.encode): the paths are worked out only for one that fails.
  if (isValidEvent(type, data)) return;
  const paths = invalidPaths(type, data);
  if (paths.length > 0) {
    throw new HubError('HUB_EVENT_INVALID', `${type} does not match its schema at: ${paths.join(', ')}`, {
      details: { eventType: type, paths },
    });
  }
}

// Fixed namespace for the hub's name-based (v5) event ids. Changing it would
// change every derived id and break resend de-duplication.
const EVENT_ID_NAMESPACE = '6f1b1c52-7d0e-4c35-9a0e-3f1c2b8a9d41';

/**
 * Deterministic event id from what identifies the source fact, e.g.
 * [sendingApp, sendingFacility, controlId, eventType, index]. A resend of the
 * same message yields the same ids, which is what makes downstream
 * de-duplication possible.
 */
export function deterministicEventId(parts: readonly string[]): string {
  // A separator that cannot occur unescaped keeps ["a|b","c"] and ["a","b|c"] apart.
  return nameUuid(
    parts.map((p) => p.replaceAll('\\', '\\\\').replaceAll('|', '\\|')).join('|'),
    EVENT_ID_NAMESPACE,
  );
}
