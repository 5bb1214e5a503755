import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { oruLine as line, oruSegments } from '../../test/support/oru-arbitraries.js';
import { avroTypeOf, codingsOf, invalidPaths, type ResultReported } from '../events/index.js';
import { DEFAULT_IDENTITY_POLICY } from '../identity/index.js';
import { decodeHl7Bytes } from './decode.js';
import { mapHl7Message, parseHeader } from './map.js';
import type { MapContext, MapOutcome } from './types.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/hl7');
const corpus = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.hl7'))
  .map((f) => readFileSync(join(FIXTURES, f)));
const ctx: MapContext = {
  recordedAt: 0,
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: null,
  timeZone: 'UTC',
};

/** What must hold for any input: no throw, a well-formed outcome, valid events, an ACK-able refusal. */
function checkOutcome(out: MapOutcome): void {
  if (out.kind === 'mapped') {
    for (const e of out.events) expect(invalidPaths(e.type, e.data)).toEqual([]);
  } else {
    expect(['AE', 'AR']).toContain(out.refusal.ack);
    expect(out.refusal.hl7ErrorCode).toMatch(/^\d{3}$/);
    if (out.refusal.ack === 'AE') expect(out.header).not.toBeNull();
  }
}

// Bytes that matter to the parser, so mutations hit delimiters and escapes often.
const interesting = fc.constantFrom(...'|^~\\&\r\n\x0b\x1c#$*!%MSHPIDOBXFSRTEX.br0123456789+-'.split(''));

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), char: interesting }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 80 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(src: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(src);
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.kind) {
      case 'set':
        b[at] = m.char.charCodeAt(0);
        break;
      case 'byte':
        b[at] = m.byte;
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
        break;
      case 'dup':
        b = Buffer.concat([b.subarray(0, at + m.len), b.subarray(at)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
    }
  }
  return b;
}

describe('robustness (property-based)', () => {
  it('given arbitrary bytes, when decoded and mapped, then nothing throws and the outcome is well formed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (arr) => {
        const bytes = Buffer.from(arr);
        expect(() => decodeHl7Bytes(bytes)).not.toThrow();
        expect(() => parseHeader(bytes)).not.toThrow();
        checkOutcome(mapHl7Message(bytes, ctx));
      }),
      { numRuns: 2000 },
    );
  }, 60_000);

  it('given arbitrary text after a valid MSH prefix, when mapped, then nothing throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), fc.string({ maxLength: 300 }), (head, tail) => {
        const text = `MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1${head}\rPID|1||${tail}`;
        checkOutcome(mapHl7Message(Buffer.from(text, 'utf8'), ctx));
      }),
      { numRuns: 2000 },
    );
  }, 60_000);

  it('given mutated corpus messages, when mapped, then nothing throws and the outcome is well formed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: corpus.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 8 }),
        (i, ms) => {
          const bytes = mutate(corpus[i]!, ms);
          expect(() => decodeHl7Bytes(bytes)).not.toThrow();
          checkOutcome(mapHl7Message(bytes, ctx));
        },
      ),
      { numRuns: 5000 },
    );
  }, 60_000);

  const MSH = (type: string) => `MSH|^~\\&|A|H|HUB|H|20240101||${type}|BIG1|P|2.5.1`;
  const large: [string, string[]][] = [
    [
      'ORU with 5000 escaped TX lines',
      [
        MSH('ORU^R01'),
        'PID|1||M1^^^HOSP^MR||Doe^Jo',
        'OBR|1|P1|F1|C^Code^L|||||||||||||||||||RAD|F',
        ...Array.from({ length: 5000 }, (_, i) => `OBX|${i + 1}|TX|T^Text^L||${'\\F\\x'.repeat(20)}||||||F`),
      ],
    ],
    [
      'A40 with 20000 PID/MRG pairs',
      [
        MSH('ADT^A40'),
        'EVN|A40|20240101',
        ...Array.from({ length: 20000 }, (_, i) => `PID|1||P${i}^^^H^MR||Doe^Jo\rMRG|Q${i}^^^H^MR`),
      ],
    ],
    [
      'ORM with 5000 order groups',
      [
        MSH('ORM^O01'),
        'PID|1||M1^^^HOSP^MR||Doe^Jo',
        ...Array.from({ length: 5000 }, (_, i) => `ORC|NW|P${i}^CPOE\rOBR|1|P${i}^CPOE||C^Code^L`),
      ],
    ],
    [
      'A28 with 50000 PID-3 repetitions',
      [
        MSH('ADT^A28'),
        'EVN|A28|20240101',
        `PID|1||${Array.from({ length: 50000 }, (_, i) => `X${i}^^^A${i}`).join('~')}||Doe^Jo`,
        'PV1|1|N',
      ],
    ],
  ];
  it.each(large)(
    'given a large %s, when mapped, then it terminates quickly (no quadratic path)',
    (_name, segs) => {
      const started = performance.now();
      const out = mapHl7Message(Buffer.from(segs.join('\r')), ctx);
      expect(out.kind).toBe('mapped');
      // Generous bound (a loaded 2-core box): a quadratic path would take minutes here.
      expect(performance.now() - started).toBeLessThan(15_000);
    },
    60_000,
  );
});

describe('ORU facts survive map → Avro → decode (property-based)', () => {
  it('given generated OBX lines (codings, units, sub-ids, flags, notes, times), when mapped, encoded and decoded, then every fact is unchanged', () => {
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 4 }), (lines) => {
        // given
        const segs = oruSegments(lines);
        // when
        const out = mapHl7Message(Buffer.from(segs.join('\r')), { ...ctx, timeZone: 'America/New_York' });
        if (out.kind !== 'mapped') throw new Error(out.refusal.error.message);
        const event = out.events.find((e) => e.type === 'ResultReported');
        if (event?.type !== 'ResultReported') throw new Error('no ResultReported');
        const type = avroTypeOf('ResultReported');
        const decoded = type.fromBuffer(type.toBuffer(event.data)) as ResultReported;
        // then: the decoded event is the mapped one, and it holds what was sent
        expect(decoded).toEqual(event.data);
        lines.forEach((l, i) => {
          const o = decoded.observations[i]!;
          expect(codingsOf(o.code)).toEqual([
            { system: 'http://loinc.org', code: l.loinc, display: l.display, version: null },
            ...(l.local
              ? [
                  {
                    system: 'urn:hl7:codesystem:99LAB',
                    code: l.local.code,
                    display: l.local.display,
                    version: null,
                  },
                ]
              : []),
          ]);
          expect(o.subId).toBe(l.subId ?? null);
          expect(o.valueNumber).toBe(l.value);
          expect(o.unit).toBe(l.unit.text ?? l.unit.code);
          expect(o.unitCode).toEqual({
            system: l.unit.ucum ? 'http://unitsofmeasure.org' : 'urn:hl7:local:LIS',
            code: l.unit.code,
            display: l.unit.text ?? null,
            version: null,
            alternates: [],
            text: null,
          });
          expect(o.interpretations.map((c) => c.code)).toEqual(l.flags);
          expect(o.interpretation?.code ?? null).toBe(l.flags[0] ?? null);
          expect(o.notes.map((n) => n.text)).toEqual(l.notes.map((n) => n.lines.join('\n')));
          const times = (field: string) => decoded.meta.sourceTimes.find((t) => t.field === field);
          if (l.observedAt) {
            expect(o.observedAt).not.toBeNull();
            expect(times(`observations[${i}].observedAt`)).toMatchObject({
              precision: l.observedAt.precision,
              zoned: l.observedAt.zoned,
            });
          } else expect(o.observedAt).toBeNull();
          l.notes.forEach((n, j) => {
            if (n.at)
              expect(times(`observations[${i}].notes[${j}].authoredAt`)).toMatchObject({
                precision: n.at.precision,
                zoned: n.at.zoned,
              });
            else expect(o.notes[j]!.authoredAt).toBeNull();
          });
        });
        expect(new Set(decoded.observations.map((o) => o.observationId)).size).toBe(lines.length);
      }),
      { numRuns: 300 },
    );
  }, 60_000);
});
