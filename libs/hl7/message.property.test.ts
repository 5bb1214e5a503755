import { Hl7Message } from '@medplum/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Delimiters } from './decode.js';
import { Msg, segmentName, splitField, splitSegments } from './message.js';

/**
 * message.ts splits messages itself, lazily, instead of through
 * @medplum/core's Hl7Message.parse; these properties hold it to Medplum's
 * split, segment by segment and field by field, on text full of delimiters,
 * terminators and empty parts.
 */

const DELIMS: Delimiters = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };
const ODD: Delimiters = { field: '#', component: '*', repetition: '!', escape: '$', subcomponent: '%' };

/** Text made mostly of delimiters and terminators, so that every empty and edge case comes up. */
function body(d: Delimiters): fc.Arbitrary<string> {
  const chars = [
    d.field,
    d.component,
    d.repetition,
    d.escape,
    d.subcomponent,
    '\r',
    '\n',
    'A',
    'B',
    ' ',
    '"',
  ];
  return fc
    .array(fc.oneof(fc.constantFrom(...chars), fc.constantFrom('PID', 'OBX', 'ZXT', 'MSH')), {
      maxLength: 120,
    })
    .map((parts) => parts.join(''));
}

function message(d: Delimiters): fc.Arbitrary<string> {
  const head = `MSH${d.field}${d.component}${d.repetition}${d.escape}${d.subcomponent}${d.field}`;
  return body(d).map((rest) => head + rest);
}

/** Medplum's segments as plain arrays: name and each field's repetitions × components. */
function medplumSplit(text: string): { name: string; fields: string[][][] }[] {
  return Hl7Message.parse(text).segments.map((s) => ({
    name: s.name,
    fields: s.fields.map((f) => f.components),
  }));
}

function ourSplit(text: string, d: Delimiters): { name: string; fields: string[][][] }[] {
  return splitSegments(text, d).map((fields) => ({
    name: segmentName(fields, d),
    fields: fields.map((f) => splitField(f, d)),
  }));
}

describe("message splitting: Medplum's Hl7Message.parse, without its objects (property-based)", () => {
  it('given any message text, when split, then segments, names, fields, repetitions and components equal Medplum', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(DELIMS, ODD).chain((d) => message(d).map((text) => ({ d, text }))),
        ({ d, text }) => {
          expect(ourSplit(text, d)).toEqual(medplumSplit(text));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('given any message text, when read through Msg, then every field of every segment reads as from Medplum', () => {
    fc.assert(
      fc.property(message(DELIMS), (text) => {
        const msg = Msg.parse(text, 'utf8');
        const theirs = medplumSplit(text);
        for (const seg of msg.segments) {
          const raw = theirs[seg.position];
          expect(raw?.name.trim()).toBe(seg.name);
          const count = raw?.fields.length ?? 0;
          for (let n = 1; n <= count + 1; n++) {
            // MSH-n is Medplum's field n-1 (MSH-1, the separator, is not a field of the split).
            const f = seg.name === 'MSH' ? (n <= 2 ? undefined : raw?.fields[n - 1]) : raw?.fields[n];
            expect(seg.repetitionCount(n)).toBe(f?.length ?? 0);
            if (n > 2 || seg.name !== 'MSH') {
              expect(seg.rawField(n)).toBe((f ?? []).map((r) => r.join('^')).join('~'));
            }
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('given any message text, when a field is tested for emptiness without splitting it, then it agrees with its split (every component blank)', () => {
    // isEmpty reads the field text against a pattern instead of splitting it on every call.
    fc.assert(
      fc.property(
        fc.constantFrom(DELIMS, ODD).chain((d) => message(d).map((text) => ({ d, text }))),
        ({ d, text }) => {
          const msg = Msg.parse(text, 'utf8');
          for (const seg of msg.segments) {
            for (let n = 0; n <= 12; n++) {
              const split = n > 2 || seg.name !== 'MSH' ? splitField(seg.rawField(n), d) : [];
              const blank = split.every((r) => r.every((c) => c.trim() === ''));
              expect(seg.isEmpty(n), `${seg.name}-${n}`).toBe(blank);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('given separators that are special in a regular expression, when a field is tested for emptiness, then they count as separators only', () => {
    // Given ] and \ as component and repetition separators, and white space of several kinds
    const msg = Msg.parse('MSH|]\\#&|A\rPID|1|]\\ \t\u00a0|]x|&', 'utf8');
    const pid = msg.segments[1];
    // Then separators and white space are empty; a component with text or a subcomponent separator is not
    expect([pid?.isEmpty(2), pid?.isEmpty(3), pid?.isEmpty(4), pid?.isEmpty(9)]).toEqual([
      true,
      false,
      false,
      true,
    ]);
  });

  it('given segments that are empty or blank-named, when parsed, then positions still count them as Medplum does', () => {
    // Given a blank line inside the message and a trailing terminator
    const text = 'MSH|^~\\&|A\r\n\rPID|1\r  |x\rOBX|1\r';
    // When parsed
    const msg = Msg.parse(text, 'utf8');
    // Then names and positions are Medplum's (blank names skipped, their positions kept)
    const theirs = medplumSplit(text);
    expect(msg.segments.map((s) => [s.name, s.position])).toEqual(
      theirs.flatMap((s, i) => (s.name.trim() === '' ? [] : [[s.name.trim(), i]])),
    );
  });
});
