import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_IDENTITY_POLICY } from '../identity/index.js';
import { endsWithTerminator } from './decode.js';
import { mapHl7Message } from './map.js';
import { SegmentGrammar, matchSegments, parseSyntax, requiredFields, structureFor } from './structure.js';
import { STRUCTURES } from './structure-tables.js';
import type { Hl7Refusal, MapContext, MapOutcome } from './types.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/hl7');
const ctx: MapContext = {
  recordedAt: 1_710_000_000_000,
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: null,
  timeZone: 'UTC',
};

const text = (...segs: string[]) => segs.join('\r');
const map = (t: string): MapOutcome => mapHl7Message(Buffer.from(t, 'utf8'), ctx);
function refused(t: string): Hl7Refusal {
  const out = map(t);
  if (out.kind !== 'refused') throw new Error('expected a refusal, got events');
  return out.refusal;
}
function mappedTypes(t: string): string[] {
  const out = map(t);
  if (out.kind !== 'mapped')
    throw new Error(`refused: ${out.refusal.hl7ErrorCode} ${out.refusal.error.message}`);
  return out.events.map((e) => e.type);
}

const MSH = (type: string, version = '2.5.1') =>
  `MSH|^~\\&|LIS|GENHOSP|HUB|HUB|20240301130000+0100||${type}|X1|P|${version}`;
const PID = 'PID|1||MRN1^^^HOSP^MR||Doe^Jo||19800215|F';
const PV1 = 'PV1|1|I|WARD^1^1||||||||||||||||V1^^^HOSP^VN';
const EVN = (t: string) => `EVN|${t}|20240301130000+0100`;
const OBR = 'OBR|1|PO1^CPOE|F1^LIS|24323-8^Panel^LN|||20240301113000+0100||||||||||||||||||F';
const OBX = (n: number, value = '182', status = 'F', type = 'NM') =>
  `OBX|${n}|${type}|2345-7^Glucose^LN||${value}|mg/dL|70-99|H|||${status}`;

describe('truncation (issue 15 item 4)', () => {
  it('truncated ORU was acknowledged AA and published a partial value', () => {
    // Given an ORU cut inside the value of its last OBX: no OBX-11, no final segment terminator.
    const whole = text(MSH('ORU^R01'), PID, OBR, OBX(1), OBX(2, '1234.5'));
    const cut = whole.slice(0, whole.lastIndexOf('1234.5') + 2); // "...||12"
    // When mapped.
    const out = map(cut);
    // Then it is refused AE 101 at OBX #2 field 11, and no event (no partial value "12") exists.
    expect(out.kind).toBe('refused');
    if (out.kind !== 'refused') return;
    expect(out.refusal).toMatchObject({
      ack: 'AE',
      hl7ErrorCode: '101',
      location: { segment: 'OBX', segmentSequence: 2, field: 11 },
    });
    expect(out.refusal.error.message).toContain('truncated');
    expect(out.refusal.error.message).not.toContain('12');
    expect(out.header?.controlId).toBe('X1');
  });

  it('given the same ORU complete but without a final terminator, when mapped, then it is accepted', () => {
    expect(mappedTypes(text(MSH('ORU^R01'), PID, OBR, OBX(1), OBX(2, '1234.5')))).toEqual(['ResultReported']);
  });

  it('given a message cut inside the last segment id, when mapped, then AE 100 (not an unknown segment to ignore)', () => {
    const r = refused(`${text(MSH('ORU^R01'), PID, OBR, OBX(1))}\rOB`);
    expect(r).toMatchObject({ ack: 'AE', hl7ErrorCode: '100', location: { segment: 'OB' } });
    expect(r.error.message).toContain('truncated');
  });

  it('given a raw line break inside a text field (a stray "segment"), when mapped, then AE 100 without echoing the text', () => {
    const r = refused(text(MSH('ORU^R01'), PID, OBR, OBX(1), 'NTE|1||Sample was', 'Hemolysed, repeat'));
    expect(r).toMatchObject({ hl7ErrorCode: '100', location: { segment: 'UNK' } });
    expect(r.error.message).not.toContain('Hemolysed');
  });

  it('given an A01 cut inside PV1 before PV1-2, when mapped, then AE 101 at PV1-2', () => {
    const r = refused(text(MSH('ADT^A01'), EVN('A01'), PID, 'PV1|1'));
    expect(r).toMatchObject({
      hl7ErrorCode: '101',
      location: { segment: 'PV1', segmentSequence: 1, field: 2 },
    });
  });

  it('knows whether bytes end with a segment terminator, ignoring an MLLP trailer', () => {
    expect(endsWithTerminator(Buffer.from('MSH|x\r'))).toBe(true);
    expect(endsWithTerminator(Buffer.from('MSH|x\n'))).toBe(true);
    expect(endsWithTerminator(Buffer.from('MSH|x\r\x1c\r'))).toBe(true);
    expect(endsWithTerminator(Buffer.from('MSH|x\x1c\r'))).toBe(false);
    expect(endsWithTerminator(Buffer.from('MSH|x'))).toBe(false);
    expect(endsWithTerminator(Buffer.alloc(0))).toBe(false);
  });
});

describe('message structure (segment order, groups, required segments: 100)', () => {
  it('given an ADT without EVN, when mapped, then AE 100 naming EVN', () => {
    const r = refused(text(MSH('ADT^A01'), PID, PV1));
    expect(r).toMatchObject({
      ack: 'AE',
      hl7ErrorCode: '100',
      location: { segment: 'EVN', segmentSequence: 1 },
    });
  });

  it('given an A28 without PV1 (required by ADT_A05, PV1-2 = N when there is no visit), when mapped, then AE 100 PV1', () => {
    const r = refused(text(MSH('ADT^A28^ADT_A05'), EVN('A28'), PID));
    expect(r).toMatchObject({ hl7ErrorCode: '100', location: { segment: 'PV1', segmentSequence: 1 } });
    expect(mappedTypes(text(MSH('ADT^A28^ADT_A05'), EVN('A28'), PID, 'PV1|1|N'))).toEqual([
      'PatientRegistered',
    ]);
  });

  it('given PID after PV1 in an A01, when mapped, then AE 100 at the segment out of place', () => {
    const r = refused(text(MSH('ADT^A01'), EVN('A01'), PV1, PID));
    expect(r).toMatchObject({ hl7ErrorCode: '100' });
    expect(['PID', 'PV1']).toContain(r.location?.segment);
  });

  it('given a second PID in an A01, when mapped, then AE 100 at PID #2', () => {
    const r = refused(text(MSH('ADT^A01'), EVN('A01'), PID, PID, PV1));
    expect(r).toMatchObject({ hl7ErrorCode: '100', location: { segment: 'PID', segmentSequence: 2 } });
  });

  it('given an OBX before any OBR in a v2.5.1 ORU, when mapped, then AE 100 at that OBX (it would be dropped)', () => {
    const r = refused(text(MSH('ORU^R01'), PID, OBX(1), OBR, OBX(2)));
    expect(r).toMatchObject({ hl7ErrorCode: '100', location: { segment: 'OBX', segmentSequence: 1 } });
  });

  it('given a patient-level OBX after PID in v2.6 (allowed from 2.6), when mapped, then it is accepted', () => {
    expect(mappedTypes(text(MSH('ORU^R01', '2.6'), PID, OBX(1), OBR, OBX(2)))).toEqual(['ResultReported']);
  });

  it('given an ORU with PID but no OBR, when mapped, then AE 100 naming OBR', () => {
    const r = refused(text(MSH('ORU^R01'), PID, PV1));
    expect(r).toMatchObject({ hl7ErrorCode: '100', location: { segment: 'OBR', segmentSequence: 1 } });
  });

  it('given an A40 PID without its MRG, when mapped, then AE 100 naming MRG', () => {
    const r = refused(
      text(MSH('ADT^A40^ADT_A39'), EVN('A40'), PID, 'MRG|OLD1^^^HOSP^MR', 'PID|2||MRN2^^^HOSP^MR||Roe^Al'),
    );
    expect(r).toMatchObject({ hl7ErrorCode: '100', location: { segment: 'MRG', segmentSequence: 2 } });
  });

  it('given Z-segments and standard segments the hub does not read, anywhere, when mapped, then they are ignored', () => {
    expect(
      mappedTypes(
        text(
          MSH('ADT^A01^ADT_A01'),
          'ZXX|site|data',
          'SFT|Vendor|1.0',
          EVN('A01'),
          PID,
          'PD1|||GP',
          'NK1|1|Doe^Ann',
          'ZPI|more',
          PV1,
          'PV2|||CHEST PAIN',
          'OBX|1|ST|HT^Height^L||180|cm|||||F',
          'AL1|1||PEN^Penicillin',
          'IN1|1|PLAN01^Gold|INS01|Acme',
          'ZIN|x',
        ),
      ),
      // AL1 and IN1 are mapped (wherever they stand); PD1, NK1 and PV2 feed the events above.
    ).toEqual(['PatientRegistered', 'EncounterStarted', 'AllergyRecorded', 'CoverageRecorded']);
    expect(
      mappedTypes(
        text(
          MSH('ORU^R01'),
          PID,
          'NTE|1||patient note',
          'ZPD|1',
          OBR,
          'NTE|1||order note',
          OBX(1),
          'NTE|1||result note',
          'ZRS|x',
        ),
      ),
    ).toEqual(['ResultReported']);
  });

  it('given an ORU with a specimen group (v2.5), when mapped, then it is accepted', () => {
    expect(
      mappedTypes(
        text(
          MSH('ORU^R01'),
          PID,
          'ORC|RE|PO1^CPOE|F1^LIS',
          OBR,
          'TQ1|1||||||||R',
          OBX(1),
          'SPM|1|||BLD^Blood',
          'OBX|2|ST|SPEC^Appearance^L||clear||||||F',
        ),
      ),
    ).toEqual(['ResultReported']);
  });

  it('given an OML^O21 with timing, specimen and a prior result, when mapped, then one order is placed', () => {
    const out = map(
      text(
        MSH('OML^O21^OML_O21'),
        PID,
        PV1,
        'ORC|NW|PO9^CPOE|||||||20240302085500+0100',
        'TQ1|1||||||||A^ASAP^HL70485',
        'OBR|1|PO9^CPOE||58410-2^CBC panel^LN',
        'SPM|1|||BLD^Blood',
        'OBR|1|PO8^CPOE|F8^LIS|58410-2^CBC panel^LN',
        'OBX|1|NM|718-7^Hgb^LN||13.5|g/dL|||||F',
      ),
    );
    expect(out.kind).toBe('mapped');
  });

  it('given a v2.3 ORM (no MSH-9.3, no MSH-7), when mapped, then it is accepted', () => {
    const msh = 'MSH|^~\\&|CPOE|GENHOSP|HUB|HUB|||ORM^O01|X1|P|2.3';
    expect(
      mappedTypes(text(msh, PID, 'ORC|NW|PO1^CPOE|||||||20240301105500', 'OBR|1|PO1^CPOE||24323-8^CMP^LN')),
    ).toEqual(['OrderPlaced']);
  });
});

describe('required fields per segment and version (101)', () => {
  const cases: [string, string, { segment: string; field: number }][] = [
    ['PID-3', text(MSH('ADT^A01'), EVN('A01'), 'PID|1||||Doe^Jo', PV1), { segment: 'PID', field: 3 }],
    ['PID-5', text(MSH('ADT^A01'), EVN('A01'), 'PID|1||MRN1^^^HOSP^MR', PV1), { segment: 'PID', field: 5 }],
    [
      'PV1-2',
      text(MSH('ADT^A02'), EVN('A02'), PID, 'PV1|1||W^2^2|||||||||||||||||V1^^^HOSP^VN'),
      { segment: 'PV1', field: 2 },
    ],
    ['EVN-2 (v2.3.1+)', text(MSH('ADT^A08', '2.4'), 'EVN|A08', PID, PV1), { segment: 'EVN', field: 2 }],
    [
      'MSH-7 (v2.4+)',
      text('MSH|^~\\&|EHR|H|HUB|H|||ADT^A08|X1|P|2.5.1', EVN('A08'), PID, PV1),
      { segment: 'MSH', field: 7 },
    ],
    [
      'MSH-11',
      text('MSH|^~\\&|EHR|H|HUB|H|20240301||ADT^A08|X1||2.5.1', EVN('A08'), PID, PV1),
      { segment: 'MSH', field: 11 },
    ],
    ['MRG-1', text(MSH('ADT^A40'), EVN('A40'), PID, 'MRG||OLD'), { segment: 'MRG', field: 1 }],
    ['IN1-3', text(MSH('ADT^A01'), EVN('A01'), PID, PV1, 'IN1|1|PLAN01'), { segment: 'IN1', field: 3 }],
    [
      'ORC-1',
      text(MSH('ORM^O01'), PID, 'ORC||PO1^CPOE', 'OBR|1|PO1^CPOE||X^Y^L'),
      { segment: 'ORC', field: 1 },
    ],
    [
      'OBR-4',
      text(MSH('ORU^R01'), PID, 'OBR|1|PO1|F1|||||||||||||||||||||F', OBX(1)),
      { segment: 'OBR', field: 4 },
    ],
    ['OBX-3', text(MSH('ORU^R01'), PID, OBR, 'OBX|1|NM|||5|mg|||||F'), { segment: 'OBX', field: 3 }],
    [
      'OBX-11',
      text(MSH('ORU^R01'), PID, OBR, OBX(1), 'OBX|2|NM|A^A^L||5|mg|||||\r'),
      { segment: 'OBX', field: 11 },
    ],
    [
      'OBX-11 sent as the null ""',
      text(MSH('ORU^R01'), PID, OBR, OBX(1, '5', '""')),
      { segment: 'OBX', field: 11 },
    ],
  ];
  it.each(cases)('given %s missing, when mapped, then AE 101 at that field', (_name, msg, location) => {
    expect(refused(msg)).toMatchObject({ ack: 'AE', hl7ErrorCode: '101', location });
  });

  it('given v2.3, where MSH-7 and EVN-2 are optional, when mapped without them but with EVN-6, then it is accepted', () => {
    const msh = 'MSH|^~\\&|EHR|H|HUB|H|||ADT^A08|X1|P|2.3';
    expect(mappedTypes(text(msh, 'EVN|A08|||||20240301101500', PID, PV1))).toEqual(['PatientUpdated']);
  });

  it('given refusals for required fields, when their messages are read, then they name fields and never values', () => {
    for (const [, msg] of cases) {
      const r = refused(msg);
      for (const v of ['Doe', 'MRN1', 'PLAN01', 'PO1', 'OLD']) expect(r.error.message).not.toContain(v);
    }
  });
});

describe('coded values (103) and data types (102)', () => {
  it('given OBX-11 outside table 0085, when mapped, then AE 103 (not the report status in its place)', () => {
    expect(refused(text(MSH('ORU^R01'), PID, OBR, OBX(1, '5', 'Q')))).toMatchObject({
      ack: 'AE',
      hl7ErrorCode: '103',
      location: { segment: 'OBX', field: 11 },
    });
  });

  it('given OBX-2 outside table 0125, when mapped, then AE 103 (not read as text)', () => {
    expect(refused(text(MSH('ORU^R01'), PID, OBR, OBX(1, '5', 'F', 'NN')))).toMatchObject({
      hl7ErrorCode: '103',
      location: { segment: 'OBX', field: 2 },
    });
  });

  it('given OBR-25 outside table 0123 (D is an OBX-11 code), when mapped, then AE 103', () => {
    const obr = OBR.replace(/\|F$/, '|D');
    expect(refused(text(MSH('ORU^R01'), PID, obr, OBX(1)))).toMatchObject({
      hl7ErrorCode: '103',
      location: { segment: 'OBR', field: 25 },
    });
  });

  it('given an NM OBX-5 that is not a number, when mapped, then AE 102 at OBX-5', () => {
    expect(refused(text(MSH('ORU^R01'), PID, OBR, OBX(1, '12,5')))).toMatchObject({
      hl7ErrorCode: '102',
      location: { segment: 'OBX', segmentSequence: 1, field: 5 },
    });
  });
});

describe('the structure table', () => {
  it('parses every structure and maps every trigger the hub supports, in every version 2.3 to 2.8', () => {
    for (const s of STRUCTURES) expect(() => new SegmentGrammar(s.syntax)).not.toThrow();
    const triggers: [string, string][] = [
      ...['A01', 'A02', 'A03', 'A04', 'A05', 'A08', 'A11', 'A12', 'A13', 'A28', 'A31', 'A40'].map(
        (t): [string, string] => ['ADT', t],
      ),
      ['ORM', 'O01'],
      ['OML', 'O21'],
      ['ORU', 'R01'],
    ];
    for (const version of ['2.3', '2.3.1', '2.4', '2.5', '2.5.1', '2.6', '2.7', '2.7.1', '2.8', '2.8.2']) {
      for (const [messageCode, triggerEvent] of triggers) {
        expect(
          structureFor({ messageCode, triggerEvent, version }),
          `${messageCode}^${triggerEvent} ${version}`,
        ).toBeDefined();
      }
    }
    expect(structureFor({ messageCode: 'ORU', triggerEvent: 'R01', version: '2.5.1' })?.syntax).toContain(
      'SPM',
    );
    expect(structureFor({ messageCode: 'ORU', triggerEvent: 'R01', version: '2.4' })?.syntax).not.toContain(
      'SPM',
    );
  });

  it('reads [ ], { } and [{ }] as optional, one-or-more and zero-or-more', () => {
    const g = new SegmentGrammar('MSH AAA [ BBB ] { CCC } [{ DDD }]');
    const ok = (names: string) => matchSegments(g, names.split(' ')).ok;
    expect(ok('MSH AAA CCC')).toBe(true);
    expect(ok('MSH AAA BBB CCC CCC DDD DDD')).toBe(true);
    expect(ok('MSH AAA BBB BBB CCC')).toBe(false);
    expect(ok('MSH AAA DDD')).toBe(false);
    expect(matchSegments(g, ['MSH', 'AAA', 'DDD'])).toEqual({ ok: false, missing: 'CCC', before: 2 });
    expect(matchSegments(g, ['MSH', 'AAA'])).toEqual({ ok: false, missing: 'CCC' });
    expect(matchSegments(g, ['MSH', 'CCC'])).toEqual({ ok: false, missing: 'AAA', before: 1 });
    expect(matchSegments(g, ['MSH', 'AAA', 'BBB', 'BBB', 'CCC'])).toEqual({ ok: false, unexpected: 3 });
    expect(() => new SegmentGrammar('MSH [ PID')).toThrow();
    expect(() => new SegmentGrammar('MSH pid')).toThrow();
    // A table bug, never a sender's: HUB_INTERNAL, naming the token, not a message's content.
    expect(() => parseSyntax('MSH { PID')).toThrow(
      expect.objectContaining({
        code: 'HUB_INTERNAL',
        message: 'message structure syntax: missing }',
      }) as Error,
    );
    expect(parseSyntax('[{ XYZ }]')).toEqual({
      kind: 'seq',
      optional: false,
      repeating: false,
      items: [{ kind: 'seq', optional: true, repeating: true, items: [{ kind: 'seg', name: 'XYZ' }] }],
    });
  });

  it('names the shortest way to complete a message that ended early', () => {
    const g = new SegmentGrammar('MSH { [ PID [ PV1 ] ] { [ ORC ] OBR } }');
    expect(matchSegments(g, ['MSH', 'PID'])).toEqual({ ok: false, missing: 'OBR' });
  });
});

describe('truncation (property-based)', () => {
  const fixtures = readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.hl7') && !f.startsWith('bad-'))
    .map((f) =>
      readFileSync(join(FIXTURES, f), 'utf8')
        .replace(/\r\n|\n/g, '\r')
        .replace(/\r+$/, ''),
    );

  it('given a conformant fixture cut anywhere inside its last segment before its last required field, when mapped, then it is refused and publishes nothing', () => {
    const cases = fixtures.flatMap((t) => {
      const start = t.lastIndexOf('\r') + 1;
      const last = t.slice(start);
      const fs = t.charAt(3);
      const version = (t.split('\r')[0] ?? '').split(fs)[11] ?? '';
      const required = requiredFields(last.slice(0, 3), version);
      if (required.length === 0 || last.startsWith('MSH')) return [];
      const lastField = Math.max(...required.map((r) => r.field));
      // Offset of the first character of the last required field's value.
      let at = 0;
      for (let i = 0; i < lastField; i++) at = last.indexOf(fs, at) + 1;
      return at > 0 ? [{ t, start, cutBefore: start + at }] : [];
    });
    expect(cases.length).toBeGreaterThan(5);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: cases.length - 1 }),
        fc.integer({ min: 0, max: 10_000 }),
        (i, r) => {
          const c = cases[i]!;
          const cut = c.start + 1 + (r % (c.cutBefore - c.start - 1));
          const out = mapHl7Message(Buffer.from(c.t.slice(0, cut), 'utf8'), ctx);
          expect(out.kind).toBe('refused');
          if (out.kind === 'refused') expect(['100', '101']).toContain(out.refusal.hl7ErrorCode);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('given any conformant fixture without its final terminator, when mapped, then the outcome is the same as with it', () => {
    for (const t of fixtures) {
      const withCr = mapHl7Message(Buffer.from(`${t}\r`, 'utf8'), ctx);
      const without = mapHl7Message(Buffer.from(t, 'utf8'), ctx);
      expect(without).toEqual(withCr);
    }
  });
});

/** The structure's syntax as a regular expression over `NAME,` tokens: an oracle independent of the NFA. */
function syntaxRegex(syntax: string): RegExp {
  const body = (syntax.match(/\[|\]|\{|\}|[^\s[\]{}]+/g) ?? [])
    .map((t) => ({ '[': '(?:', ']': ')?', '{': '(?:', '}': ')+' })[t] ?? `(?:${t},)`)
    .join('');
  return new RegExp(`^${body}$`);
}

describe('segment matching through the memoised grammar (steps kept per state set)', () => {
  it('given any sequence of a structure’s segments, when matched repeatedly on one grammar, then it is accepted exactly when the syntax says so, and a fresh grammar agrees on every refusal', () => {
    const defs = STRUCTURES.filter((s, i) => STRUCTURES.findIndex((o) => o.syntax === s.syntax) === i);
    const shared = new Map(defs.map((d) => [d.syntax, new SegmentGrammar(d.syntax)]));
    fc.assert(
      fc.property(
        fc.constantFrom(...defs).chain((d) => {
          const names = [...(shared.get(d.syntax)?.names ?? [])];
          return fc.array(fc.constantFrom(...names), { maxLength: 14 }).map((seq) => ({ d, seq }));
        }),
        ({ d, seq }) => {
          const g = shared.get(d.syntax);
          if (!g) throw new Error('no grammar');
          const r = matchSegments(g, seq);
          expect(r.ok).toBe(syntaxRegex(d.syntax).test(seq.map((n) => `${n},`).join('')));
          expect(r).toEqual(matchSegments(new SegmentGrammar(d.syntax), seq));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('given a structure matched before, when matched again, then each step is the state set met the first time (no sets built)', () => {
    const g = new SegmentGrammar('MSH EVN PID [ PD1 ] { [ NK1 ] } PV1');
    const walk = () =>
      ['MSH', 'EVN', 'PID', 'NK1', 'NK1', 'PV1'].reduce((set, n) => g.step(set, n), g.initial());
    const first = walk();
    expect(g.accepts(first)).toBe(true);
    expect(walk()).toBe(first);
  });

  it('given a header whose trigger holds a NUL, when its structure is looked up, then it is not taken for another header (the memo key)', () => {
    expect(structureFor({ messageCode: 'ADT', triggerEvent: 'A01', version: '2.5.1' })).toBeDefined();
    expect(
      structureFor({ messageCode: 'ADT', triggerEvent: 'A01\u00002.5.1', version: 'x' }),
    ).toBeUndefined();
    expect(structureFor({ messageCode: 'ADT\u0000A01', triggerEvent: '2.5.1', version: '' })).toBeUndefined();
  });
});
