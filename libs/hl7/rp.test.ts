import { describe, expect, it } from 'vitest';
import { observationIdFor } from '../events/ids.js';
import { codeOf, invalidPaths, type ResultReported } from '../events/index.js';
import { DEFAULT_IDENTITY_POLICY } from '../identity/index.js';
import { declaredContentType } from './ed.js';
import { mapHl7Message } from './map.js';
import type { MapContext } from './types.js';

const ctx: MapContext = {
  recordedAt: 1_710_000_000_000,
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: 'hl7.raw.v1/x',
  timeZone: 'UTC',
};

/** An ORU whose first OBX is a reference pointer (OBX-2 = RP) with the given OBX-5. */
function oru(obx5: string, obx3 = '18748-4^CT report^LN'): Buffer {
  return Buffer.from(
    [
      'MSH|^~\\&|RIS|GENHOSP|HUB|HUBFAC|20240310120000||ORU^R01^ORU_R01|RP-1|P|2.5.1',
      'PID|1||MRN77^^^HOSP^MR||Scan^Sam||19800101|M',
      'OBR|1|PLC7|FIL7^RIS|18748-4^CT report^LN|||20240310110000|||||||||||||||20240310115900|||F',
      `OBX|1|RP|${obx3}||${obx5}||||||F`,
      'OBX|2|NM|2345-7^Glucose^LN||5.4|mmol/L|||||F',
      '',
    ].join('\r'),
    'latin1',
  );
}

function result(obx5: string, obx3?: string): ResultReported {
  const out = mapHl7Message(oru(obx5, obx3), ctx);
  if (out.kind !== 'mapped') throw new Error(out.refusal.error.message);
  const r = out.events.find((e) => e.type === 'ResultReported');
  if (r?.type !== 'ResultReported') throw new Error('no ResultReported');
  expect(invalidPaths(r.type, r.data)).toEqual([]);
  // A link is not content: nothing is lifted.
  expect(out.events.map((e) => e.type)).toEqual(['ResultReported']);
  return r.data;
}

describe('ORU with a reference pointer (OBX-2 = RP, HL7 v2 chapter 2A RP)', () => {
  it('given pointer ^ application ^ application ^ pdf, when mapped, then an RP value: url in valueString, the MIME type as a BCP 13 code, the title in the code display', () => {
    // given a URL whose & and ^ the sender escaped (\T\, \S\), as chapter 2 requires in a component
    const r = result('https://pacs.example/wado?study=1.2.3\\T\\type=pdf\\S\\x^PACS^application^pdf');
    // then
    expect(r.observations[0]).toEqual({
      sequence: 1,
      code: codeOf('http://loinc.org', '18748-4', 'CT report'),
      valueType: 'RP',
      valueNumber: null,
      valueString: 'https://pacs.example/wado?study=1.2.3&type=pdf^x',
      valueCode: codeOf('urn:ietf:bcp:13', 'application/pdf'),
      valueComparator: null,
      unit: null,
      referenceRange: null,
      interpretation: null,
      status: 'final',
      observedAt: null,
      attachment: null,
      observationId: observationIdFor(r.resultId, codeOf('http://loinc.org', '18748-4'), null),
      subId: null,
      unitCode: null,
      referenceLow: null,
      referenceHigh: null,
      interpretations: [],
      notes: [],
      components: [],
      method: null,
      bodySite: null,
    });
    // and the report with a discrete value beside the link is still a lab report
    expect(r.category).toBe('laboratory');
    expect(r.reportText).toBeNull();
  });

  it('given table 0191 type and subtype (AP ^ PDF, IM ^ JPEG) or none that names a MIME type, then the matching type, or no valueCode', () => {
    expect(result('doc/123^PACS&1.2.3&ISO^AP^PDF').observations[0]).toMatchObject({
      valueString: 'doc/123',
      valueCode: { code: 'application/pdf' },
    });
    expect(result('img/9^PACS^IM^JPEG').observations[0]?.valueCode?.code).toBe('image/jpeg');
    expect(result('https://docs.example/1').observations[0]).toMatchObject({
      valueString: 'https://docs.example/1',
      valueCode: null,
    });
    expect(result('https://docs.example/1^^^').observations[0]?.valueCode).toBeNull();
  });

  it('given a report with only an RP link and no OBR-24, then it is not called a lab report', () => {
    const out = mapHl7Message(
      Buffer.from(
        [
          'MSH|^~\\&|RIS|GENHOSP|HUB|HUBFAC|20240310120000||ORU^R01^ORU_R01|RP-2|P|2.5.1',
          'PID|1||MRN77^^^HOSP^MR||Scan^Sam||19800101|M',
          'OBR|1|PLC8|FIL8^RIS|18748-4^CT report^LN|||20240310110000|||||||||||||||20240310115900|||F',
          'OBX|1|RP|18748-4^CT report^LN||https://pacs.example/1^PACS^application^pdf||||||F',
          '',
        ].join('\r'),
        'latin1',
      ),
      ctx,
    );
    if (out.kind !== 'mapped' || out.events[0]?.type !== 'ResultReported') throw new Error('refused');
    expect(out.events[0].data.category).toBe('other');
  });
});

describe('declaredContentType (ED/RP type of data and subtype)', () => {
  it('given MIME names, table 0191/0291 codes, or nothing recognisable, then the MIME type or null (no guessing)', () => {
    expect(declaredContentType('application', 'pdf')).toBe('application/pdf');
    expect(declaredContentType('AP', 'PDF')).toBe('application/pdf');
    expect(declaredContentType('Application', 'DICOM')).toBe('application/dicom');
    expect(declaredContentType('', '')).toBeNull();
    expect(declaredContentType('AP', '')).toBeNull();
  });
});
