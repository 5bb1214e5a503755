import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_IDENTITY_POLICY } from '../identity/index.js';
import {
  decodeBase64Strict,
  decodeEdData,
  decodeHexStrict,
  edContentType,
  sha1Base64,
  sha256Hex,
} from './ed.js';
import { mapHl7Message } from './map.js';
import type { MapContext, MapOutcome } from './types.js';

const ctx: MapContext = {
  recordedAt: 1_710_000_000_000,
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: 'hl7.raw.v1/x',
  timeZone: 'UTC',
};

/** A small deterministic byte buffer that starts like a PDF. */
function pseudoPdf(size: number): Buffer {
  const b = Buffer.alloc(size);
  b.write('%PDF-1.7\n', 0, 'latin1');
  let x = 12345;
  for (let i = 9; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function oru(obx5: string, opts: { obx2?: string; controlId?: string } = {}): Buffer {
  return Buffer.from(
    [
      `MSH|^~\\&|LAB|GENHOSP|HUB|HUBFAC|20240310120000||ORU^R01^ORU_R01|${opts.controlId ?? 'ED-1'}|P|2.5.1`,
      'PID|1||MRN55^^^HOSP^MR||Pdf^Patty||19800101|F',
      'OBR|1|PLC1|FIL1^LAB|11502-2^Laboratory report^LN|||20240310110000|||||||||||||||20240310115900|||F',
      `OBX|1|${opts.obx2 ?? 'ED'}|11502-2^Laboratory report PDF^LN||${obx5}||||||F`,
      'OBX|2|NM|2345-7^Glucose^LN||5.4|mmol/L|||||F',
      '',
    ].join('\r'),
    'latin1',
  );
}

function refused(out: MapOutcome) {
  if (out.kind !== 'refused') throw new Error('expected a refusal');
  return out.refusal;
}

describe('ED data decoding (table 0299)', () => {
  it('given strict base64 with line breaks, when decoded, then the bytes come back; damage is refused, not skipped', () => {
    const bytes = pseudoPdf(1000);
    const b64 = bytes.toString('base64');
    expect(decodeBase64Strict(b64)?.equals(bytes)).toBe(true);
    expect(decodeBase64Strict(`${b64.slice(0, 76)}\n${b64.slice(76)}`)?.equals(bytes)).toBe(true);
    // unpadded base64 of a length that can only be unpadded
    expect(decodeBase64Strict('QUJD')?.toString()).toBe('ABC');
    expect(decodeBase64Strict('QUI')?.toString()).toBe('AB');
    // not base64: a character outside the alphabet, padding in the middle, an impossible length
    expect(decodeBase64Strict(`${b64.slice(0, 10)}*${b64.slice(10)}`)).toBeNull();
    expect(decodeBase64Strict('QQ==QUJD')).toBeNull();
    expect(decodeBase64Strict('QUJDR')).toBeNull();
    expect(decodeBase64Strict('QUJ===')).toBeNull();
  });

  it('given hex, when decoded, then odd lengths and non-hex digits are refused', () => {
    expect(decodeHexStrict('25504446')?.toString('latin1')).toBe('%PDF');
    expect(decodeHexStrict('2550444')).toBeNull();
    expect(decodeHexStrict('25zz')).toBeNull();
  });

  it('given the encoding component, when decoded, then case does not matter and unknown or missing ones are named', () => {
    expect(decodeEdData('QUJD', 'BASE64')).toEqual({ ok: true, bytes: Buffer.from('ABC') });
    expect(decodeEdData('414243', 'hex')).toEqual({ ok: true, bytes: Buffer.from('ABC') });
    expect(decodeEdData('ABC', 'A')).toEqual({ ok: true, bytes: Buffer.from('ABC') });
    expect(decodeEdData('QUJD', '')).toEqual({ ok: false, problem: 'missing-encoding' });
    expect(decodeEdData('QUJD', 'UUENCODE')).toEqual({ ok: false, problem: 'unknown-encoding' });
    expect(decodeEdData('QU*D', 'Base64')).toEqual({ ok: false, problem: 'invalid-data' });
  });

  it('given ED type and subtype, when typed, then MIME names, table 0191/0291 codes and a PDF header all give a content type', () => {
    const none = Buffer.alloc(0);
    expect(edContentType('application', 'pdf', none)).toBe('application/pdf');
    expect(edContentType('Application', 'PDF', none)).toBe('application/pdf');
    expect(edContentType('AP', 'PDF', none)).toBe('application/pdf');
    expect(edContentType('IM', 'JPEG', none)).toBe('image/jpeg');
    expect(edContentType('IM', 'x-custom', none)).toBe('image/x-custom');
    expect(edContentType('TEXT', '', none)).toBe('text/plain');
    expect(edContentType('AP', '', Buffer.from('%PDF-1.4 ...'))).toBe('application/pdf');
    expect(edContentType('AP', 'weird/../thing', none)).toBe('application/octet-stream');
  });

  it('given bytes, when hashed, then sha256 is lower-case hex and the FHIR hash is base64 SHA-1', () => {
    const b = Buffer.from('abc');
    expect(sha256Hex(b)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha1Base64(b)).toBe('qZk+NkcGgWq6PiVxeFDCbJzQ2J0=');
  });
});

describe('ORU with an ED observation (OBX-2 = ED)', () => {
  it('given a base64 PDF in OBX-5 with escaped delimiters, when mapped, then the bytes become one AttachmentStored and the observation carries only the reference', () => {
    // given a PDF whose base64 the sender wrapped with \.br\ (an escape the reader decodes first)
    const pdf = pseudoPdf(30_000);
    const b64 = pdf.toString('base64');
    const wrapped = `${b64.slice(0, 76)}\\.br\\${b64.slice(76)}`;
    // when mapped
    const out = mapHl7Message(oru(`^AP^PDF^Base64^${wrapped}`), ctx);
    // then
    if (out.kind !== 'mapped') throw new Error(out.refusal.error.message);
    expect(out.events.map((e) => e.type)).toEqual(['AttachmentStored', 'ResultReported']);
    const stored = out.events[0]!;
    const result = out.events[1]!;
    if (stored.type !== 'AttachmentStored' || result.type !== 'ResultReported') throw new Error('types');
    const sha256 = createHash('sha256').update(pdf).digest('hex');
    expect(stored.data).toMatchObject({
      patientId: result.data.patientId,
      sha256,
      size: pdf.length,
      contentType: 'application/pdf',
    });
    expect(stored.data.data.equals(pdf)).toBe(true);
    const [ed, glucose] = result.data.observations;
    expect(ed).toMatchObject({
      valueType: 'ED',
      valueString: null,
      attachment: {
        sha256,
        size: pdf.length,
        contentType: 'application/pdf',
        title: 'Laboratory report PDF',
      },
    });
    expect(glucose).toMatchObject({ valueNumber: 5.4, attachment: null });
    // a PDF is not a discrete value: with a number beside it the report is still lab
    expect(result.data.category).toBe('laboratory');
    expect(JSON.stringify(result.data)).not.toContain(b64.slice(0, 40));
  });

  it('given the same message again or another message with the same PDF, when mapped, then ids are the same where the facts are', () => {
    const pdf = pseudoPdf(2_000);
    const a = mapHl7Message(oru(`^application^pdf^Base64^${pdf.toString('base64')}`), ctx);
    const again = mapHl7Message(oru(`^application^pdf^Base64^${pdf.toString('base64')}`), ctx);
    const other = mapHl7Message(
      oru(`^application^pdf^Base64^${pdf.toString('base64')}`, { controlId: 'ED-2' }),
      ctx,
    );
    if (a.kind !== 'mapped' || again.kind !== 'mapped' || other.kind !== 'mapped') throw new Error('refused');
    expect(again.events.map((e) => e.data.meta.eventId)).toEqual(a.events.map((e) => e.data.meta.eventId));
    // the attachment is the same fact (patient + content); the report event is another message's
    expect(other.events[0]!.data.meta.eventId).toBe(a.events[0]!.data.meta.eventId);
    expect(other.events[1]!.data.meta.eventId).not.toBe(a.events[1]!.data.meta.eventId);
  });

  it('given Hex and A encodings, when mapped, then both decode', () => {
    const hex = mapHl7Message(oru('^AP^octet-stream^Hex^00FF10'), ctx);
    if (hex.kind !== 'mapped' || hex.events[0]!.type !== 'AttachmentStored') throw new Error('refused');
    expect(hex.events[0].data.data).toEqual(Buffer.from([0x00, 0xff, 0x10]));
    expect(hex.events[0].data.contentType).toBe('application/octet-stream');
    const text = mapHl7Message(oru('^TEXT^plain^A^Line one\\.br\\a \\T\\ b'), ctx);
    if (text.kind !== 'mapped' || text.events[0]!.type !== 'AttachmentStored') throw new Error('refused');
    expect(text.events[0].data.data.toString('utf8')).toBe('Line one\na & b');
    expect(text.events[0].data.contentType).toBe('text/plain');
  });

  it('given base64 that is not base64, when mapped, then AE 102 at OBX-5 and nothing is published', () => {
    const r = refused(mapHl7Message(oru('^AP^PDF^Base64^JVBERi0x*LjQK'), ctx));
    expect(r).toMatchObject({
      ack: 'AE',
      hl7ErrorCode: '102',
      location: { segment: 'OBX', segmentSequence: 1, field: 5 },
    });
    expect(r.error.message).not.toContain('JVBER');
  });

  it('given an unknown or missing ED encoding, when mapped, then AE 103 / 101 at OBX-5.4', () => {
    expect(refused(mapHl7Message(oru('^AP^PDF^UU^QUJD'), ctx))).toMatchObject({
      hl7ErrorCode: '103',
      location: { segment: 'OBX', field: 5, component: 4 },
    });
    expect(refused(mapHl7Message(oru('^AP^PDF^^QUJD'), ctx))).toMatchObject({
      hl7ErrorCode: '101',
      location: { segment: 'OBX', field: 5, component: 4 },
    });
  });

  it('given an ED observation without data, when mapped, then no attachment and no refusal', () => {
    const out = mapHl7Message(oru(''), ctx);
    if (out.kind !== 'mapped') throw new Error(out.refusal.error.message);
    expect(out.events.map((e) => e.type)).toEqual(['ResultReported']);
  });
});
