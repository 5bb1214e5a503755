import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventTypeMap } from '../events/index.js';
import { DEFAULT_IDENTITY_POLICY } from '../identity/index.js';
import { DEFAULT_DELIMITERS, decodeHl7Bytes, firstInvalidUtf8 } from './decode.js';
import { mapHl7Message } from './map.js';
import { locateAt } from './text.js';
import type { MapContext, MapOutcome } from './types.js';

/**
 * Identifier hygiene and text validity on the HL7 path: an identifier that
 * does not look like what it is, or text that is not what the sender wrote
 * (invalid UTF-8, NUL, broken \X escapes), is refused with AE 102 naming the
 * field; names keep their characters, in NFC.
 */

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/hl7');
const ADMIT = readFileSync(join(FIXTURES, 'adt-a01-admit.hl7'), 'latin1');
const ORDER = readFileSync(join(FIXTURES, 'orm-o01-new.hl7'), 'latin1');

const ctx: MapContext = {
  recordedAt: 1_710_000_000_000,
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: null,
  timeZone: 'UTC',
};

/** The admit fixture with one text replaced, as UTF-8 bytes declared UTF-8 in MSH-18. */
function admitWith(from: string, to: string, charsetDeclared = true): Buffer {
  expect(ADMIT).toContain(from);
  let text = ADMIT.replace(from, to);
  if (charsetDeclared) text = text.replace(/^(MSH(?:\|[^|\r]*){10}\|2\.5\.1)/, '$1||||||UNICODE UTF-8');
  return Buffer.from(text, 'utf8');
}

function refusal(out: MapOutcome) {
  if (out.kind !== 'refused') throw new Error('expected a refusal');
  return out.refusal;
}

function registered(out: MapOutcome): EventTypeMap['PatientRegistered'] {
  if (out.kind !== 'mapped') throw new Error(`refused: ${out.refusal.error.message}`);
  const e = out.events.find((x) => x.type === 'PatientRegistered');
  if (!e) throw new Error('no PatientRegistered');
  return e.data;
}

describe('HL7 identifiers (CX, EI, XCN) through identifier hygiene', () => {
  it.each<[string, string, string]>([
    ['a zero-width space', 'MRN\u200b10001', 'invisible'],
    ['an RLO bidi control', 'MRN\u202e10001', 'bidirectional'],
    ['full-width digits', 'MRN\uff11\uff10\uff10\uff10\uff11', 'compatibility'],
    ["a Cyrillic 'А'", 'MRN1000\u0410', 'scripts'],
    ['a Greek omicron', 'MRN1\u039f001', 'scripts'],
  ])('given PID-3 with %s in the MRN, when mapped, then AE 102 names PID-3', (_what, mrn, words) => {
    const r = refusal(mapHl7Message(admitWith('MRN10001^^^HOSP', `${mrn}^^^HOSP`), ctx));
    expect(r.ack).toBe('AE');
    expect(r.hl7ErrorCode).toBe('102');
    expect(r.location).toEqual({ segment: 'PID', segmentSequence: 1, field: 3 });
    expect(r.error.message).toContain('PID-3 (identifier)');
    expect(r.error.message).toContain(words);
    // The value is PHI: the message names the field only.
    expect(r.error.message).not.toContain('MRN');
  });

  it('given an escaped zero-width space (\\X escape) in the MRN, when mapped, then AE 102 PID-3', () => {
    const r = refusal(mapHl7Message(admitWith('MRN10001^^^HOSP', 'MRN\\XE2808B\\10001^^^HOSP'), ctx));
    expect(r).toMatchObject({ ack: 'AE', hl7ErrorCode: '102', location: { segment: 'PID', field: 3 } });
  });

  it('given a zero-width character in the assigning authority (CX-4), when mapped, then AE 102 PID-3.4', () => {
    const r = refusal(mapHl7Message(admitWith('MRN10001^^^HOSP', 'MRN10001^^^HO\u200bSP'), ctx));
    expect(r.location).toEqual({ segment: 'PID', segmentSequence: 1, field: 3, component: 4 });
    expect(r.error.message).toContain('PID-3.4 (assigning authority)');
  });

  it('given a bidi control in the visit number (PV1-19), when mapped, then AE 102 PV1-19', () => {
    const r = refusal(mapHl7Message(admitWith('V20001^^^HOSP^VN', 'V2\u202e0001^^^HOSP^VN'), ctx));
    expect(r.location).toEqual({ segment: 'PV1', segmentSequence: 1, field: 19 });
  });

  it('given a zero-width character in the attending doctor id (XCN, PV1-7), when mapped, then AE 102 PV1-7', () => {
    const r = refusal(mapHl7Message(admitWith('1234^Welby', '12\u200b34^Welby'), ctx));
    expect(r.location).toEqual({ segment: 'PV1', segmentSequence: 1, field: 7 });
  });

  it('given full-width digits in a placer order number (EI, ORC-2), when mapped, then AE 102 ORC-2', () => {
    const bytes = Buffer.from(ORDER.replace('ORC|NW|PO1001', 'ORC|NW|PO\uff11001'), 'utf8');
    const r = refusal(mapHl7Message(bytes, ctx));
    expect(r.location).toEqual({ segment: 'ORC', segmentSequence: 1, field: 2 });
  });

  it('given an MRN with surrounding spaces and in NFD, when mapped, then the stored value is trimmed NFC', () => {
    const nfd = 'MRNÉ10001'.normalize('NFD');
    const out = registered(mapHl7Message(admitWith('MRN10001^^^HOSP', ` ${nfd} ^^^HOSP`), ctx));
    expect(out.demographics.identifiers[0]!.value).toBe('MRNÉ10001'.normalize('NFC'));
  });
});

describe('HL7 names and text: characters kept, stored as NFC', () => {
  it('given the same family name in NFC and in NFD, when mapped, then both store the same value', () => {
    const nfc = 'Müller-Ångström'.normalize('NFC');
    const a = registered(mapHl7Message(admitWith('Testpatient^Jane', `${nfc}^Jane`), ctx));
    const b = registered(mapHl7Message(admitWith('Testpatient^Jane', `${nfc.normalize('NFD')}^Jane`), ctx));
    expect(a.demographics.names[0]!.family).toBe(nfc);
    expect(b.demographics.names[0]!.family).toBe(nfc);
  });

  it('given a name with a zero-width joiner (legitimate in some scripts), when mapped, then it is kept', () => {
    const name = 'क्\u200dष';
    const out = registered(mapHl7Message(admitWith('Testpatient^Jane', `${name}^Jane`), ctx));
    expect(out.demographics.names[0]!.family).toBe(name.normalize('NFC'));
  });
});

describe('HL7 text that is not what the sender wrote', () => {
  it('given a message declared UTF-8 with an invalid byte in the family name, when mapped, then AE 102 PID-5 and no U+FFFD is stored', () => {
    const good = admitWith('Testpatient^Jane', 'Testpatient^Jane');
    const at = good.indexOf('Testpatient');
    const bytes = Buffer.concat([good.subarray(0, at + 4), Buffer.from([0xff]), good.subarray(at + 4)]);
    const r = refusal(mapHl7Message(bytes, ctx));
    expect(r).toMatchObject({ ack: 'AE', hl7ErrorCode: '102' });
    expect(r.location).toEqual({ segment: 'PID', segmentSequence: 1, field: 5 });
    expect(r.error.message).toContain('not valid UTF-8');
  });

  it('given a truncated UTF-8 sequence in a component, when mapped, then the location names the component', () => {
    const good = admitWith('Springfield', 'Springfield');
    const at = good.indexOf('Springfield');
    const bytes = Buffer.concat([good.subarray(0, at), Buffer.from([0xc3]), good.subarray(at)]);
    expect(refusal(mapHl7Message(bytes, ctx)).location).toEqual({
      segment: 'PID',
      segmentSequence: 1,
      field: 11,
      component: 3,
    });
  });

  it('given the same bytes without MSH-18, when mapped, then they are read as ISO-8859-1 (lossless) and accepted', () => {
    const good = admitWith('Testpatient^Jane', 'Testpatient^Jane', false);
    const at = good.indexOf('Testpatient');
    const bytes = Buffer.concat([good.subarray(0, at + 4), Buffer.from([0xe9]), good.subarray(at + 4)]);
    expect(registered(mapHl7Message(bytes, ctx)).demographics.names[0]!.family).toBe('Testépatient');
  });

  it('given a \\X escape whose bytes are not UTF-8 in a UTF-8 message, when mapped, then AE 102 names the field', () => {
    const r = refusal(mapHl7Message(admitWith('Testpatient^Jane', 'Test\\XFF\\patient^Jane'), ctx));
    expect(r).toMatchObject({ ack: 'AE', hl7ErrorCode: '102' });
    expect(r.location).toEqual({ segment: 'PID', segmentSequence: 1, field: 5 });
  });

  it('given a valid \\X escape (é as C3A9), when mapped, then the name holds é', () => {
    const out = registered(mapHl7Message(admitWith('Testpatient^Jane', 'Ren\\XC3A9\\^Jane'), ctx));
    expect(out.demographics.names[0]!.family).toBe('René');
  });

  it('given a NUL byte or a \\X00\\ escape in a name, when mapped, then AE 102 names the field', () => {
    for (const bad of ['Test\u0000patient^Jane', 'Test\\X00\\patient^Jane']) {
      const r = refusal(mapHl7Message(admitWith('Testpatient^Jane', bad), ctx));
      expect(r).toMatchObject({ ack: 'AE', hl7ErrorCode: '102' });
      expect(r.location).toMatchObject({ segment: 'PID', field: 5 });
    }
  });

  it('given any bytes, when mapped, then no event holds U+0000 or a lone surrogate', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 12 }), fc.nat(), (noise, pos) => {
        const good = admitWith('Testpatient^Jane', 'Testpatient^Jane');
        const at = good.indexOf('Testpatient') + (pos % 11);
        const bytes = Buffer.concat([good.subarray(0, at), Buffer.from(noise), good.subarray(at)]);
        const out = mapHl7Message(bytes, ctx);
        if (out.kind === 'mapped') {
          const json = JSON.stringify(out.events);
          expect(json).not.toContain('\\u0000');
          expect(json).not.toMatch(/\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])/);
          expect(json).not.toContain('\ufffd');
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('firstInvalidUtf8 and locateAt', () => {
  it('agrees with the platform UTF-8 decoder on what is valid', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 16 }), (b) => {
        let valid = true;
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(b);
        } catch {
          valid = false;
        }
        expect(firstInvalidUtf8(b) === -1).toBe(valid);
      }),
      { numRuns: 5000 },
    );
  });

  it('finds the first bad byte: overlong, surrogate, truncated and stray continuation bytes', () => {
    expect(firstInvalidUtf8(Buffer.from([0x41, 0xc0, 0x80]))).toBe(1);
    expect(firstInvalidUtf8(Buffer.from([0x41, 0x42, 0xed, 0xa0, 0x80]))).toBe(2);
    expect(firstInvalidUtf8(Buffer.from([0xe2, 0x82]))).toBe(0);
    expect(firstInvalidUtf8(Buffer.from([0x41, 0x80]))).toBe(1);
    expect(firstInvalidUtf8(Buffer.from('héllo ✓ 😀', 'utf8'))).toBe(-1);
  });

  it('locates a character by segment occurrence, field and component (MSH counts its separator)', () => {
    const text = 'MSH|^~\\&|A|B\rPID|1||X^Y\rOBX|1\rOBX|2|NM|c^d';
    expect(locateAt(text, text.indexOf('B'), DEFAULT_DELIMITERS)).toEqual({
      segment: 'MSH',
      segmentSequence: 1,
      field: 4,
    });
    expect(locateAt(text, text.indexOf('Y'), DEFAULT_DELIMITERS)).toEqual({
      segment: 'PID',
      segmentSequence: 1,
      field: 3,
      component: 2,
    });
    expect(locateAt(text, text.lastIndexOf('d'), DEFAULT_DELIMITERS)).toEqual({
      segment: 'OBX',
      segmentSequence: 2,
      field: 3,
      component: 2,
    });
  });

  it('marks a message declared UTF-8 with invalid bytes, and only that one', () => {
    const declared = Buffer.concat([
      Buffer.from('MSH|^~\\&|||||||ADT^A01|1|P|2.5||||||UNICODE UTF-8\rPID|1||'),
      Buffer.from([0xff]),
    ]);
    expect(decodeHl7Bytes(declared).invalidUtf8Prefix).toMatch(/PID\|1\|\|\xff$/);
    const undeclared = Buffer.concat([
      Buffer.from('MSH|^~\\&|||||||ADT^A01|1|P|2.5\rPID|1||'),
      Buffer.from([0xff]),
    ]);
    expect(decodeHl7Bytes(undeclared).invalidUtf8Prefix).toBeUndefined();
  });
});
