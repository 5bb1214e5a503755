import { HubError } from '../errors/index.js';
import { fieldName, loc, refuse, type Msg, type Seg } from './message.js';
import {
  CODED_FIELDS,
  REQUIRED_FIELDS,
  STRUCTURES,
  type RequiredField,
  type StructureDef,
} from './structure-tables.js';
import type { MessageHeader } from './types.js';

/**
 * Structural validation of an HL7 v2 message before any event is made from
 * it (mapping.md, "Validation"). In order, each failure an AE refusal with an
 * HL7 table 0357 code and an ERR-2 location:
 *
 * 1. every segment id is three upper-case letters/digits (100): a message cut
 *    inside a segment id (`...\rOB`) is not an unknown segment to ignore;
 * 2. the segments, filtered to those in the structure's skeleton
 *    (structure-tables.ts; every other segment is ignored, as chapter 2 tells
 *    a recipient), follow the message structure of MSH-9 for the MSH-12
 *    version: order, groups, required segments (100);
 * 3. every field the standard marks R in those segments is valued (101);
 * 4. coded fields the hub turns into facts hold a value of their HL7 table
 *    (103), and OBX-5 of an NM observation is a number (102).
 *
 * Truncation: a message cut inside a segment ends with a segment shorter than
 * its required fields (an OBX without OBX-11): rule 3 refuses it. The missing
 * final segment terminator is tolerated only when the last segment passes
 * every rule; the refusal then says that the message looks truncated.
 *
 * Pure and total on any parsed message: throws only RefusalSignal.
 */

export interface StructureInput {
  /** Whether the text ended with a segment terminator (decode.ts `terminated`). */
  terminated: boolean;
}

// ---------------------------------------------------------------------------
// Versions

/** HL7 segment ids: three upper-case letters or digits, the first a letter. */
const SEGMENT_ID = /^[A-Z][A-Z0-9]{2}$/;

type Version = readonly number[];

function parseVersion(v: string): Version {
  return v.split('.').map((p) => Number(p));
}

function cmp(a: Version, b: Version): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** v within [from, to]; `to` also covers its sub-releases (2.8 covers 2.8.2). */
function inRange(v: Version, from: string | undefined, to: string | undefined): boolean {
  if (from !== undefined && cmp(v, parseVersion(from)) < 0) return false;
  if (to !== undefined) {
    const t = parseVersion(to);
    if (cmp(v.slice(0, t.length), t) > 0) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Abstract message syntax → NFA

type Node =
  { kind: 'seg'; name: string } | { kind: 'seq'; items: Node[]; optional: boolean; repeating: boolean };

/**
 * Parses the standard's notation (`[ ]` optional, `{ }` repeating) into a tree.
 * The syntax comes from structure-tables.ts, never from a message: a bad one
 * is the hub's own bug (HUB_INTERNAL), and the tests build every table's.
 */
export function parseSyntax(syntax: string): Node {
  const tokens = syntax.match(/\[|\]|\{|\}|[^\s[\]{}]+/g) ?? [];
  const bad = (why: string) => new HubError('HUB_INTERNAL', `message structure syntax: ${why}`);
  let i = 0;
  // Past the last token, reading gives undefined: that ends every open sequence.
  const next = (): string | undefined => tokens[i++];
  const seq = (close: string | undefined): Node[] => {
    const items: Node[] = [];
    for (let t = next(); t !== undefined; t = next()) {
      if (t === close) return items;
      if (t === '[' || t === '{') {
        const inner = seq(t === '[' ? ']' : '}');
        const only = inner.length === 1 ? inner[0] : undefined;
        // `[{ x }]` is one zero-or-more node, not an optional holding a repeating.
        if (t === '[' && only?.kind === 'seq' && only.repeating && !only.optional) {
          items.push({ ...only, optional: true });
        } else {
          items.push({ kind: 'seq', items: inner, optional: t === '[', repeating: t === '{' });
        }
      } else if (t === ']' || t === '}') {
        throw bad(`unbalanced ${t}`);
      } else if (SEGMENT_ID.test(t)) {
        items.push({ kind: 'seg', name: t });
      } else {
        throw bad(`${t} is not a segment id`);
      }
    }
    if (close !== undefined) throw bad(`missing ${close}`);
    return items;
  };
  return { kind: 'seq', items: seq(undefined), optional: false, repeating: false };
}

type State = { seg: string; next: number } | { eps: number[] } | { accept: true };

/** State numbers only ever come from SegmentGrammar itself: an unknown one is a bug there. */
function noState(s: number): HubError {
  return new HubError('HUB_INTERNAL', `segment grammar has no state ${s}`);
}

/** Thompson NFA over segment names; state 0 is the start. */
export class SegmentGrammar {
  private readonly states: State[] = [];
  private readonly start: number;
  /** Every segment name the structure mentions; other segments are ignored. */
  readonly names: ReadonlySet<string>;

  constructor(syntax: string) {
    const root = parseSyntax(syntax);
    const names = new Set<string>();
    const accept = this.add({ accept: true });
    this.start = this.build(root, accept, names);
    this.names = names;
  }

  private add(s: State): number {
    this.states.push(s);
    return this.states.length - 1;
  }

  private state(s: number): State {
    const st = this.states[s];
    if (st === undefined) throw noState(s);
    return st;
  }

  /** Builds `node` so that it continues to `next`; returns its entry state. */
  private build(node: Node, next: number, names: Set<string>): number {
    if (node.kind === 'seg') {
      names.add(node.name);
      return this.add({ seg: node.name, next });
    }
    const body = (to: number): number =>
      node.items.reduceRight((acc, item) => this.build(item, acc, names), to);
    if (!node.repeating) {
      const entry = body(next);
      return node.optional ? this.add({ eps: [entry, next] }) : entry;
    }
    // One or more: after the body, loop back or leave.
    const back: number[] = [];
    const loop = this.add({ eps: back });
    const entry = body(loop);
    back.push(entry, next);
    return node.optional ? this.add({ eps: [entry, next] }) : entry;
  }

  /** Epsilon closure of each state, computed once: a step is then a union of small arrays. */
  private closures: number[][] = [];

  /**
   * The state sets met so far, one object per distinct set, and the step
   * from each by segment name: the subset construction done lazily, so that
   * matching a message of a structure seen before walks a table without
   * allocating (every step built two Sets and an array, for every segment of
   * every message: 3-4% of what the adapter allocated per message, measured
   * with a sampling heap profile under load). Sets come from the
   * grammar, never from input, so the table is bounded by the grammar's
   * reachable subsets; the cap only guards against a grammar with a very
   * large one.
   */
  private readonly interned = new Map<string, ReadonlySet<number>>();
  private readonly steps = new WeakMap<ReadonlySet<number>, Map<string, ReadonlySet<number>>>();
  private static readonly MAX_INTERNED = 4096;

  private intern(set: Set<number>): ReadonlySet<number> {
    const key = [...set].sort((a, b) => a - b).join(',');
    const known = this.interned.get(key);
    if (known) return known;
    if (this.interned.size >= SegmentGrammar.MAX_INTERNED) return set;
    this.interned.set(key, set);
    // An interned set has a step table; a set without one is a caller's own.
    this.steps.set(set, new Map());
    return set;
  }

  private closure(set: Iterable<number>): Set<number> {
    if (this.closures.length === 0) this.closures = this.states.map((_, i) => this.closureFrom(i));
    const out = new Set<number>();
    for (const s of set) {
      const closure = this.closures[s];
      if (closure === undefined) throw noState(s);
      for (const c of closure) out.add(c);
    }
    return out;
  }

  private closureFrom(start: number): number[] {
    const out = new Set<number>();
    const stack = [start];
    for (let s = stack.pop(); s !== undefined; s = stack.pop()) {
      if (out.has(s)) continue;
      out.add(s);
      const st = this.state(s);
      if ('eps' in st) stack.push(...st.eps);
    }
    return [...out];
  }

  private initialSet: ReadonlySet<number> | undefined;

  /** The start's closure; the same object on every call (read-only: it is shared). */
  initial(): ReadonlySet<number> {
    return (this.initialSet ??= this.intern(this.closure([this.start])));
  }

  /** The states after segment `name`; read-only, shared with every other caller of the same step. */
  step(set: ReadonlySet<number>, name: string): ReadonlySet<number> {
    const byName = this.steps.get(set);
    const known = byName?.get(name);
    if (known) return known;
    const next: number[] = [];
    for (const s of set) {
      const st = this.state(s);
      if ('seg' in st && st.seg === name) next.push(st.next);
    }
    const out = this.intern(this.closure(next));
    // Only steps from interned sets are kept: a caller's own set (shortestCompletion) is met once.
    byName?.set(name, out);
    return out;
  }

  accepts(set: ReadonlySet<number>): boolean {
    for (const s of set) if ('accept' in this.state(s)) return true;
    return false;
  }

  /** Segment names that may come next, in the order the structure lists them. */
  expected(set: ReadonlySet<number>): string[] {
    const out = new Set<string>();
    for (const s of [...set].sort((a, b) => b - a)) {
      const st = this.state(s);
      if ('seg' in st) out.add(st.seg);
    }
    return [...out];
  }
}

export type StructureResult =
  { ok: true } | { ok: false; missing: string; before?: number } | { ok: false; unexpected: number };

/**
 * Matches segment names (already filtered to the grammar's names) against
 * the grammar. On failure says which required segment is missing (when
 * inserting it would let the message go on) or which segment is out of place.
 */
export function matchSegments(g: SegmentGrammar, names: readonly string[]): StructureResult {
  let set = g.initial();
  for (const [i, name] of names.entries()) {
    const next = g.step(set, name);
    if (next.size === 0) {
      // A segment the structure needs here, after which this one would fit, and
      // which does not come later anyway: the sender left it out.
      const later = new Set(names.slice(i + 1));
      const missing = g
        .expected(set)
        .find((n) => !later.has(n) && n !== name && g.step(g.step(set, n), name).size > 0);
      return missing !== undefined ? { ok: false, missing, before: i } : { ok: false, unexpected: i };
    }
    set = next;
  }
  if (g.accepts(set)) return { ok: true };
  return { ok: false, missing: shortestCompletion(g, set) };
}

/** The segment that starts the shortest way to complete the message; the one listed first on a tie. */
function shortestCompletion(g: SegmentGrammar, set: ReadonlySet<number>): string {
  let best: { name: string; length: number } | undefined;
  for (const n of g.expected(set)) {
    let frontier = g.step(set, n);
    for (let length = 1; length <= 32 && frontier.size > 0; length++) {
      if (g.accepts(frontier)) {
        if (!best || length < best.length) best = { name: n, length };
        break;
      }
      const all = new Set<number>();
      for (const m of g.expected(frontier)) for (const s of g.step(frontier, m)) all.add(s);
      frontier = all;
    }
  }
  return best?.name ?? 'MSH';
}

// ---------------------------------------------------------------------------
// Structure lookup

const grammars = new Map<StructureDef, SegmentGrammar>();

function grammarOf(def: StructureDef): SegmentGrammar {
  let g = grammars.get(def);
  if (!g) {
    g = new SegmentGrammar(def.syntax);
    grammars.set(def, g);
  }
  return g;
}

/**
 * Memo of values that depend only on a few header fields (type, trigger,
 * version): a handful of distinct keys in practice, recomputed per message
 * before (each lookup parsed every table entry's version range again). The
 * keys come from messages, so the memo is bounded: past `max` keys a value
 * is computed and not kept.
 */
function boundedMemo<V>(max: number, compute: (key: string) => V): (key: string) => V {
  const memo = new Map<string, V>();
  return (key) => {
    if (memo.has(key)) return memo.get(key) as V;
    const v = compute(key);
    if (memo.size < max) memo.set(key, v);
    return v;
  };
}

function findStructure(code: string, trigger: string, version: string): StructureDef | undefined {
  const v = parseVersion(version);
  return STRUCTURES.find((s) => s.code === code && s.events.includes(trigger) && inRange(v, s.from, s.to));
}

const structureMemo = boundedMemo<StructureDef | undefined>(256, (key) => {
  const [code = '', trigger = '', version = ''] = key.split('\u0000');
  return findStructure(code, trigger, version);
});

/** The structure the standard defines for MSH-9.1/9.2 at MSH-12; undefined when the hub does not map it. */
export function structureFor(
  h: Pick<MessageHeader, 'messageCode' | 'triggerEvent' | 'version'>,
): StructureDef | undefined {
  const { messageCode: code, triggerEvent: trigger, version } = h;
  // NUL separates the key's parts; a header holding one (no real sender's) is looked up unmemoised.
  if (code.includes('\u0000') || trigger.includes('\u0000') || version.includes('\u0000')) {
    return findStructure(code, trigger, version);
  }
  return structureMemo(`${code}\u0000${trigger}\u0000${version}`);
}

// ---------------------------------------------------------------------------
// Validation

// HL7 NM (chapter 2A): optional sign, digits, optional decimal point.
const NM = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

function truncationNote(seg: Seg, msg: Msg, input: StructureInput): string {
  const last = msg.segments[msg.segments.length - 1];
  return !input.terminated && last === seg
    ? ' (the message ends inside this segment without a segment terminator: it looks truncated)'
    : '';
}

/** A field that carries a value; the HL7 null `""` does not satisfy R (a required value cannot be deleted). */
function valued(seg: Seg, field: number): boolean {
  if (seg.isEmpty(field)) return false;
  const raw = seg.rawField(field).trim();
  return raw !== '""';
}

function requiredFor(name: string, v: Version): RequiredField[] {
  return (REQUIRED_FIELDS[name] ?? []).filter((r) => inRange(v, r.from, r.to));
}

/** requiredFor by segment, per MSH-12 version string: the same few versions arrive all day. */
const requiredMemo = boundedMemo<Map<string, readonly RequiredField[]>>(64, () => new Map());

function requiredAt(name: string, version: string): readonly RequiredField[] {
  const bySegment = requiredMemo(version);
  let fields = bySegment.get(name);
  if (!fields) {
    fields = requiredFor(name, parseVersion(version));
    // Names of segments the structure uses (its skeleton), so bounded as well.
    bySegment.set(name, fields);
  }
  return fields;
}

/** The fields the standard marks R in a segment at an MSH-12 version (those the hub checks). */
export function requiredFields(segment: string, version: string): RequiredField[] {
  return requiredFor(segment, parseVersion(version));
}

/**
 * Validates a parsed message whose MSH-10, MSH-12 and charset were already
 * checked. Messages whose type/trigger the hub does not map are left to the
 * dispatcher (AR 200/201). Throws the refusal; returns the structure used.
 */
export function validateStructure(
  msg: Msg,
  header: MessageHeader,
  input: StructureInput,
): StructureDef | undefined {
  checkSegmentIds(msg, input);
  const def = structureFor(header);
  if (!def) return undefined;
  const g = grammarOf(def);
  const used = msg.segments.filter((s) => g.names.has(s.name));
  checkSegmentOrder(msg, header, def, used);
  checkRequiredFields(msg, header.version, used, input);
  checkValues(msg, used, input);
  return def;
}

/** Rule 1: every segment id is three upper-case letters/digits (AE 100). */
function checkSegmentIds(msg: Msg, input: StructureInput): void {
  for (const s of msg.segments) {
    if (!SEGMENT_ID.test(s.name)) {
      throw refuse(
        'AE',
        '100',
        `segment #${s.position + 1} does not start with a valid segment id${truncationNote(s, msg, input)}`,
        // A cut id (`OB`) is echoed; anything longer may be message text, which is never echoed.
        { segment: /^[A-Z0-9]{1,3}$/.test(s.name) ? s.name : 'UNK', segmentSequence: s.sequence },
      );
    }
  }
}

/** The segment matchSegments pointed at: its indexes are into `used`, so a miss is a bug here. */
function usedAt(used: readonly Seg[], i: number): Seg {
  const s = used[i];
  if (s === undefined) throw new HubError('HUB_INTERNAL', `structure match points past the segments (${i})`);
  return s;
}

/** Rule 2: the structure's segments in its order, groups and required segments (AE 100). */
function checkSegmentOrder(msg: Msg, header: MessageHeader, def: StructureDef, used: readonly Seg[]): void {
  const r = matchSegments(
    grammarOf(def),
    used.map((s) => s.name),
  );
  if (r.ok) return;
  if ('unexpected' in r) {
    const s = usedAt(used, r.unexpected);
    throw refuse(
      'AE',
      '100',
      `segment ${s.name} #${s.sequence} is not allowed at this position in ${def.id} (v${header.version})`,
      loc(s),
    );
  }
  const before = r.before === undefined ? undefined : usedAt(used, r.before);
  const sequence =
    msg.all(r.missing).filter((s) => before === undefined || s.position < before.position).length + 1;
  const where = before === undefined ? '' : ` before ${before.name} #${before.sequence}`;
  throw refuse(
    'AE',
    '100',
    `required segment ${r.missing} is missing${where} (${def.id}, v${header.version})`,
    {
      segment: r.missing,
      segmentSequence: sequence,
    },
  );
}

/** Rule 3: every field the standard marks R at this version is valued (AE 101); MSH first. */
function checkRequiredFields(msg: Msg, version: string, used: readonly Seg[], input: StructureInput): void {
  for (const s of [msg.msh, ...used.filter((x) => x.name !== 'MSH')]) {
    for (const req of requiredAt(s.name, version)) {
      if (!valued(s, req.field)) {
        throw refuse(
          'AE',
          '101',
          `required field ${fieldName(s, req.field)} (${req.name}) is missing in ${s.name} #${s.sequence}${truncationNote(s, msg, input)}`,
          loc(s, req.field),
        );
      }
    }
  }
}

/** Rule 4: coded fields hold a value of their table (AE 103); NM observations are numbers (AE 102). */
function checkValues(msg: Msg, used: readonly Seg[], input: StructureInput): void {
  for (const s of used) {
    for (const c of CODED_FIELDS) {
      if (c.segment !== s.name || !valued(s, c.field)) continue;
      const value = s.get(c.field).toUpperCase();
      if (!c.values.includes(value)) {
        throw refuse(
          'AE',
          '103',
          `${fieldName(s, c.field)} (${c.name}) in ${s.name} #${s.sequence} is not a value of HL7 table ${c.table}${truncationNote(s, msg, input)}`,
          loc(s, c.field),
        );
      }
    }
    if (s.name === 'OBX' && s.get(2).toUpperCase() === 'NM') {
      for (let rep = 0; rep < s.repetitionCount(5); rep++) {
        const value = s.get(5, 1, undefined, rep);
        if (value !== '' && !NM.test(value)) {
          throw refuse(
            'AE',
            '102',
            `${fieldName(s, 5)} in ${s.name} #${s.sequence} is not a valid number for value type NM${truncationNote(s, msg, input)}`,
            loc(s, 5),
          );
        }
      }
    }
  }
}
