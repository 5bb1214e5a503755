import { HubError } from '../errors/index.js';
import { normaliseText } from '../identity/hygiene.js';
import { decodeEscapes, type Delimiters } from './decode.js';
import type { ErrorLocation, Hl7Refusal } from './types.js';

/**
 * Safe, escape-decoding access to a message split on its delimiters.
 * Splitting leaves escape sequences as they are; every read here decodes
 * them, and returns '' for anything absent.
 *
 * The split is @medplum/core's Hl7Message.parse's, exactly (segments on
 * runs of CR/LF, fields, repetitions, components; message.property.test.ts
 * compares the two), but a field is split into repetitions and components
 * only when it is first read: Medplum built two objects with defined
 * properties for every field of every message, about a tenth of the
 * adapter's CPU time, for fields the mapper mostly never reads.
 */

/** Repetitions × components of one field's text, as Medplum's Hl7Field.parse splits it. */
export function splitField(text: string, d: Delimiters): string[][] {
  return text.split(d.repetition).map((r) => r.split(d.component));
}

/** A segment's name: the first component of its first field, as Medplum's Hl7Segment reads it. */
export function segmentName(fields: readonly string[], d: Delimiters): string {
  return (fields[0] ?? '').split(d.repetition)[0]?.split(d.component)[0] ?? '';
}

/** A message's segments, each split into fields: Medplum's Hl7Message.parse without the objects. */
export function splitSegments(text: string, d: Delimiters): string[][] {
  return text.split(/[\r\n]+/).map((line) => line.split(d.field));
}

/** Thrown inside the mapper only; mapHl7Message turns it into a refusal. */
export class RefusalSignal extends Error {
  constructor(readonly refusal: Hl7Refusal) {
    super(refusal.error.message);
    this.name = 'RefusalSignal';
  }
}

/** AE/AR with an HL7 table 0357 code. The message must name fields, never values. */
export function refuse(
  ack: 'AE' | 'AR',
  hl7ErrorCode: string,
  message: string,
  location?: ErrorLocation,
): RefusalSignal {
  const error = new HubError('HUB_INPUT_INVALID', message, {
    details: { hl7ErrorCode, ...(location ? { location } : {}) },
  });
  return new RefusalSignal({ ack, hl7ErrorCode, error, ...(location ? { location } : {}) });
}

export function loc(seg: Seg, field?: number, component?: number): ErrorLocation {
  return {
    segment: seg.name,
    segmentSequence: seg.sequence,
    ...(field === undefined ? {} : { field }),
    ...(component === undefined ? {} : { component }),
  };
}

export function fieldName(seg: Seg, field: number, component?: number): string {
  return `${seg.name}-${field}${component === undefined ? '' : `.${component}`}`;
}

export class Seg {
  constructor(
    readonly name: string,
    /** 1-based occurrence of this segment name in the message. */
    readonly sequence: number,
    /** 0-based position among all segments, for grouping (ORC → OBR → OBX). */
    readonly position: number,
    /** The segment's text split on the field separator; [0] is its id (MSH: [1] is MSH-2, [n-1] MSH-n). */
    private readonly fields: readonly string[],
    private readonly msg: Msg,
  ) {}

  /** Fields split into repetitions × components so far, by index into `fields`. */
  private readonly split: (string[][] | undefined)[] = [];

  /** Index into `fields` of field n; -1 for none (n < 1, and MSH-1/2, which are not split fields). */
  private indexOf(n: number): number {
    if (n < 1) return -1;
    return this.name === 'MSH' ? (n <= 2 ? -1 : n - 1) : n;
  }

  /** Repetitions × components of field n, still escaped. */
  private repsOf(n: number): string[][] {
    const i = this.indexOf(n);
    const text = this.fields[i];
    if (text === undefined) return [];
    return (this.split[i] ??= splitField(text, this.msg.delimiters));
  }

  /**
   * Field n as sent (all repetitions, escapes kept); MSH-1/2 included. The
   * field's text itself: joining its split parts back gave the same string,
   * built anew on every read (the structure check reads every required field).
   */
  rawField(n: number): string {
    if (this.name === 'MSH' && n === 1) return this.msg.delimiters.field;
    if (this.name === 'MSH' && n === 2) return this.msg.encodingCharacters;
    return this.fields[this.indexOf(n)] ?? '';
  }

  repetitionCount(n: number): number {
    return this.repsOf(n).length;
  }

  /**
   * Component c (1-based) of repetition rep (0-based), optionally subcomponent s (1-based); decoded, trimmed.
   * The HL7 null `""` reads as '' (no value): it is an instruction to the receiver, never text.
   */
  get(n: number, c = 1, s?: number, rep = 0): string {
    const comp = this.repsOf(n)[rep]?.[c - 1] ?? '';
    const raw = s === undefined ? comp : (comp.split(this.msg.delimiters.subcomponent)[s - 1] ?? '');
    const v = this.msg.decode(raw).trim();
    return v === HL7_NULL ? '' : v;
  }

  /**
   * Every repetition of field n rendered as decoded text; components joined with the component separator.
   * A `""` component (or repetition) contributes no text.
   */
  textRepetitions(n: number): string[] {
    const d = this.msg.delimiters;
    return this.repsOf(n).map((r) => {
      const text = this.msg.decode(r.map((c) => (c.trim() === HL7_NULL ? '' : c)).join(d.component));
      return text.trim() === HL7_NULL ? '' : text;
    });
  }

  /** Nothing sent in field n (absent, or only delimiters/blanks): the receiver keeps what it has. */
  isEmpty(n: number): boolean {
    // Every repetition's every component blank: only separators and white space
    // (what trim removes is exactly \s), read off the text without splitting it.
    const text = this.fields[this.indexOf(n)];
    return text === undefined || this.msg.blankField.test(text);
  }

  /** Field n carries a value, including the null `""` (HL7 v2 chapter 2: "not present" vs "null"). */
  isSent(n: number): boolean {
    return !this.isEmpty(n);
  }

  /**
   * Field n is exactly `""` (one repetition, one component): HL7 v2's null, meaning "delete the
   * stored value" (for a repeating field, the whole list).
   */
  isNull(n: number): boolean {
    const reps = this.repsOf(n);
    const comps = reps.length === 1 ? reps[0] : undefined;
    const raw = comps?.length === 1 ? comps[0] : undefined;
    if (raw === undefined) return false;
    return raw.trim() === HL7_NULL || this.msg.decode(raw).trim() === HL7_NULL;
  }
}

/** HL7 v2 chapter 2: a field (or component) sent as two double quotes is "null": delete the value. */
export const HL7_NULL = '""';

/** Patterns of blankFieldPattern by separator pair: nearly every sender uses ^ and ~. Bounded, keys come from messages. */
const blankPatterns = new Map<string, RegExp>();

/** A field that is only repetition and component separators and white space (\s, what trim removes). */
export function blankFieldPattern(d: Pick<Delimiters, 'component' | 'repetition'>): RegExp {
  const key = d.component + d.repetition;
  let re = blankPatterns.get(key);
  if (!re) {
    // Inside a character class only \ ] ^ - are special.
    const esc = (c: string) => c.replace(/[\\\]^-]/g, '\\$&');
    re = new RegExp(`^[\\s${esc(d.component)}${esc(d.repetition)}]*$`);
    if (blankPatterns.size < 64) blankPatterns.set(key, re);
  }
  return re;
}

export class Msg {
  readonly segments: Seg[];
  readonly delimiters: Delimiters;
  readonly encodingCharacters: string;
  /** Matches a field's text that has only separators and white space (Seg.isEmpty). */
  readonly blankField: RegExp;

  private constructor(
    text: string,
    readonly charset: string,
    encodingCharacters: string,
  ) {
    // MSH-1 and MSH-2 (Msg.parse has checked that there are five, distinct).
    this.delimiters = {
      field: text.charAt(3),
      component: text.charAt(4),
      repetition: text.charAt(5),
      escape: text.charAt(6),
      subcomponent: text.charAt(7),
    };
    this.encodingCharacters = encodingCharacters;
    this.blankField = blankFieldPattern(this.delimiters);
    const counts = new Map<string, number>();
    this.segments = [];
    splitSegments(text, this.delimiters).forEach((fields, position) => {
      const name = segmentName(fields, this.delimiters).trim();
      if (name === '') return;
      const n = (counts.get(name) ?? 0) + 1;
      counts.set(name, n);
      this.segments.push(new Seg(name, n, position, fields, this));
    });
  }

  /**
   * Parses decoded text. Refuses (AR 100) what is not an HL7 message: no MSH
   * first, or delimiters that are missing, repeated or alphanumeric.
   */
  static parse(text: string, charset: string): Msg {
    if (!text.startsWith('MSH') || text.length < 8) {
      throw refuse('AR', '100', 'message does not start with an MSH segment');
    }
    const fs = text.charAt(3);
    const end = text.indexOf(fs, 4);
    const enc = end < 0 ? '' : text.slice(4, end);
    const delims = [fs, ...enc.slice(0, 4)];
    const bad =
      enc.length < 4 ||
      enc.length > 5 ||
      new Set(delims).size !== 5 ||
      delims.some((c) => /[A-Za-z0-9\s]/.test(c));
    if (bad) {
      throw refuse('AR', '100', 'MSH-1/MSH-2 do not declare five distinct delimiters', {
        segment: 'MSH',
        segmentSequence: 1,
        field: 2,
      });
    }
    return new Msg(text, charset, enc);
  }

  /**
   * A leaf value as text, in Unicode NFC: the same name sent precomposed by one sender and
   * decomposed by another is one stored value (characters are kept, never stripped).
   */
  decode(raw: string): string {
    return normaliseText(decodeEscapes(raw, this.delimiters, this.charset));
  }

  all(name: string): Seg[] {
    return this.segments.filter((s) => s.name === name);
  }

  first(name: string): Seg | undefined {
    return this.segments.find((s) => s.name === name);
  }

  get msh(): Seg {
    const s = this.segments[0];
    if (!s || s.name !== 'MSH') throw refuse('AR', '100', 'message does not start with an MSH segment');
    return s;
  }
}
