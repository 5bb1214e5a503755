import { Hl7Message, type Hl7Segment } from '@medplum/core';
import { HubError } from '../errors/index.js';
import { normaliseText } from '../identity/hygiene.js';
import { decodeEscapes, type Delimiters } from './decode.js';
import type { ErrorLocation, Hl7Refusal } from './types.js';

/**
 * Safe, escape-decoding access to a message parsed by @medplum/core's
 * Hl7Message. Medplum splits on the delimiters but leaves escape sequences
 * as they are, and its own accessors throw on absent repetitions; every read
 * here returns '' for anything absent instead.
 */

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
    private readonly raw: Hl7Segment,
    private readonly msg: Msg,
  ) {}

  /** Repetitions × components of field n, still escaped. */
  private repsOf(n: number): string[][] {
    if (n < 1) return [];
    const f = this.name === 'MSH' ? (n <= 2 ? undefined : this.raw.fields[n - 1]) : this.raw.fields[n];
    return f?.components ?? [];
  }

  /** Field n as sent (all repetitions, escapes kept); MSH-1/2 included. */
  rawField(n: number): string {
    if (this.name === 'MSH' && n === 1) return this.msg.delimiters.field;
    if (this.name === 'MSH' && n === 2) return this.msg.encodingCharacters;
    const d = this.msg.delimiters;
    return this.repsOf(n)
      .map((r) => r.join(d.component))
      .join(d.repetition);
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
    return this.repsOf(n).every((r) => r.every((c) => c.trim() === ''));
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

export class Msg {
  readonly segments: Seg[];
  readonly delimiters: Delimiters;
  readonly encodingCharacters: string;

  private constructor(
    parsed: Hl7Message,
    readonly charset: string,
    encodingCharacters: string,
  ) {
    const ctx = parsed.context;
    this.delimiters = {
      field: ctx.fieldSeparator,
      component: ctx.componentSeparator,
      repetition: ctx.repetitionSeparator,
      escape: ctx.escapeCharacter,
      subcomponent: ctx.subcomponentSeparator,
    };
    this.encodingCharacters = encodingCharacters;
    const counts = new Map<string, number>();
    this.segments = [];
    parsed.segments.forEach((s, position) => {
      const name = s.name.trim();
      if (name === '') return;
      const n = (counts.get(name) ?? 0) + 1;
      counts.set(name, n);
      this.segments.push(new Seg(name, n, position, s, this));
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
    return new Msg(Hl7Message.parse(text), charset, enc);
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
