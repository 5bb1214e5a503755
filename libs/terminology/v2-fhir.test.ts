import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Code } from '../events/generated.js';
import { codeOf } from '../events/values.js';
import { V2_TABLE } from './code-systems.js';
import {
  BCP47,
  bcp47Of,
  fhirCodeFor,
  toFhirConcept,
  toFhirCoding,
  V3,
  v2TableOf,
  type V2TableId,
} from './v2-fhir.js';

const withAlt = (c: Code, alt: Code): Code => ({ ...c, alternates: [{ ...alt }] });

describe('toFhirConcept', () => {
  it('given an OBX-8 H flag in v2-0078, then the v3 ObservationInterpretation coding first and the v2 coding kept second', () => {
    const cc = toFhirConcept(codeOf(V2_TABLE('0078'), 'H', 'High'));
    expect(cc.coding).toEqual([
      { system: V3('ObservationInterpretation'), code: 'H', display: 'High' },
      { system: V2_TABLE('0078'), code: 'H', display: 'High' },
    ]);
  });

  it('given an old event with system "HL7-0078", then it is canonicalised and translated the same way', () => {
    const cc = toFhirConcept(codeOf('HL7-0078', 'LL'));
    expect(cc.coding?.map((c) => [c.system, c.code])).toEqual([
      [V3('ObservationInterpretation'), 'LL'],
      [V2_TABLE('0078'), 'LL'],
    ]);
  });

  it('given marital status A (separated) in v2-0002, then v3 MaritalStatus L first, v2 A second', () => {
    const cc = toFhirConcept(codeOf(V2_TABLE('0002'), 'A', 'Separated'));
    expect(cc.coding?.[0]).toEqual({ system: V3('MaritalStatus'), code: 'L', display: 'Legally Separated' });
    expect(cc.coding?.[1]).toEqual({ system: V2_TABLE('0002'), code: 'A', display: 'Separated' });
  });

  it('given a FHIR sender v3 MaritalStatus U, when the element implies table 0002, then it is not read as v2 U', () => {
    const cc = toFhirConcept(codeOf(V3('MaritalStatus'), 'U', 'unmarried'), '0002');
    expect(cc.coding).toEqual([{ system: V3('MaritalStatus'), code: 'U', display: 'unmarried' }]);
  });

  it('given language ENG in table 0296, then the BCP-47 "en" coding only, the sender words as text', () => {
    // Patient.communication.language allows no other system (max binding AllLanguages: an error).
    const cc = toFhirConcept(codeOf(V2_TABLE('0296'), 'ENG', 'English'), '0296');
    expect(cc).toEqual({ coding: [{ system: BCP47, code: 'en' }], text: 'English' });
  });

  it('given an unknown language code, then no coding at all, the code as text', () => {
    expect(toFhirConcept(codeOf(V2_TABLE('0296'), 'XYZ'), '0296')).toEqual({ text: 'XYZ' });
  });

  it('given a language sent as a BCP-47 tag in upper case, then one normalised BCP-47 coding', () => {
    const cc = toFhirConcept(codeOf(BCP47, 'ES', 'Spanish'), '0296');
    expect(cc).toEqual({ coding: [{ system: BCP47, code: 'es' }], text: 'Spanish' });
  });

  it('given a hospital service code not in v2-0069, then no v2-0069 coding (invalid), the code kept as text', () => {
    const cc = toFhirConcept(codeOf(V2_TABLE('0069'), 'EM', null));
    expect(cc).toEqual({ text: 'EM' });
    expect(toFhirConcept(codeOf(V2_TABLE('0069'), 'MED', 'Medical'))).toEqual({
      coding: [{ system: V2_TABLE('0069'), code: 'MED', display: 'Medical' }],
    });
  });

  it('given LOINC with a local alternate and original text, then every coding kept with canonical systems and the text', () => {
    const code: Code = {
      ...withAlt(codeOf('LN', '2345-7', 'Glucose'), codeOf('99LAB', 'GLU', 'Glucose local')),
      text: 'Glucose, serum',
      version: '2.74',
    };
    expect(toFhirConcept(code)).toEqual({
      coding: [
        { system: 'http://loinc.org', version: '2.74', code: '2345-7', display: 'Glucose' },
        { system: 'urn:hl7:codesystem:99LAB', code: 'GLU', display: 'Glucose local' },
      ],
      text: 'Glucose, serum',
    });
  });

  it('given relationship SPO in v2-0063, then v3 RoleCode SPS first', () => {
    expect(toFhirCoding(codeOf(V2_TABLE('0063'), 'SPO'))).toEqual({
      system: V3('RoleCode'),
      code: 'SPS',
      display: 'spouse',
    });
  });

  it('given any code of any table, then the concept is never empty and never holds an empty code', () => {
    const tables: V2TableId[] = ['0001', '0002', '0063', '0069', '0078', '0112', '0203', '0296'];
    fc.assert(
      fc.property(
        fc.constantFrom(...tables),
        fc.string({ minLength: 1, maxLength: 6 }).filter((s) => s.trim() !== ''),
        fc.option(fc.string({ maxLength: 8 }), { nil: null }),
        (table, code, display) => {
          const cc = toFhirConcept(codeOf(V2_TABLE(table), code, display));
          expect(cc.coding !== undefined || cc.text !== undefined).toBe(true);
          for (const c of cc.coding ?? []) expect(c.code).not.toBe('');
        },
      ),
    );
  });
});

describe('table look-ups', () => {
  it('given ISO 639 codes, then BCP-47 tags', () => {
    expect(bcp47Of('ENG')).toBe('en');
    expect(bcp47Of('spa')).toBe('es');
    expect(bcp47Of('EN_us')).toBe('en-US');
    expect(bcp47Of('XYZ')).toBeUndefined();
  });

  it('given v2 codes, then the FHIR codes of code-typed elements', () => {
    expect(fhirCodeFor('0001', 'F')).toBe('female');
    expect(fhirCodeFor('0007', 'E')).toBe('EM');
    expect(v2TableOf('HL70078')).toBe('0078');
    expect(v2TableOf('http://loinc.org')).toBeUndefined();
  });
});
