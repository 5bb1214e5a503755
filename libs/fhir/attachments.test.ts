import type { DiagnosticReport, Observation } from '@medplum/fhirtypes';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  codeOf,
  deterministicEventId,
  invalidPaths,
  noObservationDetail,
  type ClinicalEvent,
} from '../events/index.js';
import type { IdentityPolicy } from '../identity/index.js';
import { decodeAttachment, decodeFhirBase64, withCheckedDataElided } from './attachments.js';
import { contentHash, mapResource, type MapContext, type MapInput } from './mapping.js';
import { loadFhirDefinitions, parseResource, validateFhirResource } from './validate.js';

const policy: IdentityPolicy = {
  enterpriseSystems: ['urn:oid:2.16.840.1.113883.3.999.1'],
  authorityAliases: {},
};
const ctx: MapContext = {
  policy,
  recordedAt: Date.UTC(2026, 0, 20, 12),
  source: { system: 'fhir-test', facility: null, messageId: null },
  correlationId: null,
  requestKey: null,
};
const KEY = 'pat-test-key';

/** Made-up PDF bytes of a given size (a header, then filler that is not all one byte). */
function pdf(size: number, seed = 1): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  Buffer.from('%PDF-1.7\n').copy(b);
  return b;
}
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('base64');

const report = (forms: DiagnosticReport['presentedForm'], extra: Partial<DiagnosticReport> = {}) =>
  ({
    resourceType: 'DiagnosticReport',
    identifier: [{ system: 'urn:oid:2.16.840.1.113883.3.999.7', value: 'RPT-1' }],
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '11526-1', display: 'Pathology study' }] },
    subject: { reference: 'Patient/p1' },
    issued: '2026-01-20T10:00:00Z',
    presentedForm: forms,
    ...extra,
  }) as DiagnosticReport;

function map(r: DiagnosticReport, extra: Partial<MapInput> = {}) {
  return mapResource(
    {
      resource: r,
      id: 'r1',
      version: 1,
      contentHash: contentHash(r),
      previous: null,
      subjectKey: KEY,
      ...extra,
    },
    ctx,
  );
}

function events(r: DiagnosticReport, extra: Partial<MapInput> = {}): ClinicalEvent[] {
  const m = map(r, extra);
  if (!m.ok) throw new Error(JSON.stringify(m.issues));
  for (const e of m.events) expect(invalidPaths(e.type, e.data)).toEqual([]);
  return m.events;
}

describe('decodeFhirBase64 (FHIR base64Binary, strict)', () => {
  it('given padded base64, wrapped or not, then the bytes', () => {
    const b = pdf(100);
    const text = b.toString('base64');
    expect(decodeFhirBase64(text)?.equals(b)).toBe(true);
    expect(decodeFhirBase64(text.replace(/(.{76})/g, '$1\r\n'))?.equals(b)).toBe(true);
  });
  it('given characters outside the alphabet, unpadded data or padding inside, then null', () => {
    expect(decodeFhirBase64('JVBER!i0xLjQK')).toBeNull();
    expect(decodeFhirBase64('JVBERi0xLjQ')).toBeNull();
    expect(decodeFhirBase64('JV==Ri0xLjQK')).toBeNull();
    expect(decodeFhirBase64('JVBERi0x-_QK')).toBeNull(); // base64url is not base64Binary
  });
});

describe('decodeAttachment', () => {
  const b = pdf(1000);
  const at = 'DiagnosticReport.presentedForm[0]';
  it('given data with a matching size and hash, then its sha256, size, content type and title', () => {
    const r = decodeAttachment(
      {
        contentType: 'application/pdf',
        data: b.toString('base64'),
        size: 1000,
        hash: sha1(b),
        title: 'Report',
      },
      at,
    );
    expect(r).toMatchObject({
      ok: true,
      value: { sha256: sha256(b), size: 1000, contentType: 'application/pdf', title: 'Report' },
    });
  });
  it('given a size or hash that does not match the data, then 400 naming the element, not its value', () => {
    expect(
      decodeAttachment({ contentType: 'application/pdf', data: b.toString('base64'), size: 999 }, at),
    ).toEqual({
      ok: false,
      status: 400,
      issue: expect.objectContaining({ code: 'value', expression: [`${at}.size`] }) as unknown,
    });
    const wrongHash = sha1(pdf(1000, 2));
    const r = decodeAttachment(
      { contentType: 'application/pdf', data: b.toString('base64'), hash: wrongHash },
      at,
    );
    expect(r).toMatchObject({ ok: false, status: 400, issue: { expression: [`${at}.hash`] } });
    expect(JSON.stringify(r)).not.toContain(wrongHash);
  });
  it('given a url and no data (valid R4: a document held elsewhere), then a link, as sent', () => {
    expect(
      decodeAttachment(
        { contentType: 'application/pdf', url: 'https://pacs.example/doc?id=1&f=pdf', title: 'Scan' },
        at,
      ),
    ).toEqual({
      ok: true,
      kind: 'link',
      value: { url: 'https://pacs.example/doc?id=1&f=pdf', contentType: 'application/pdf', title: 'Scan' },
    });
    expect(decodeAttachment({ url: 'https://pacs.example/d/2' }, at)).toEqual({
      ok: true,
      kind: 'link',
      value: { url: 'https://pacs.example/d/2', contentType: null, title: null },
    });
  });
  it('given a url and data, then the data is the content and the url is kept beside it', () => {
    expect(
      decodeAttachment(
        { contentType: 'application/pdf', data: b.toString('base64'), url: 'https://x.example/r' },
        at,
      ),
    ).toMatchObject({ ok: true, kind: 'content', value: { sha256: sha256(b), url: 'https://x.example/r' } });
  });
  it('given no contentType, then application/pdf only when the bytes say %PDF-', () => {
    expect(decodeAttachment({ data: b.toString('base64') }, at)).toMatchObject({
      value: { contentType: 'application/pdf' },
    });
    expect(decodeAttachment({ data: 'AAAA' }, at)).toMatchObject({
      value: { contentType: 'application/octet-stream' },
    });
  });
});

describe('validateFhirResource with presentedForm', () => {
  loadFhirDefinitions();
  it('given a report with a 3 MB PDF (over the base validator 1 MB string limit), then it is valid and unchanged', () => {
    const data = pdf(3_000_000).toString('base64');
    const r = report([{ contentType: 'application/pdf', data, title: 'Pathology report' }]);
    const v = validateFhirResource(r, 'DiagnosticReport');
    expect(v.ok).toBe(true);
    if (v.ok) expect((v.value as DiagnosticReport).presentedForm?.[0]?.data).toBe(data);
  });
  it('given bad base64 in the second form, then 400 attachment-invalid naming that element', () => {
    const r = report([
      { contentType: 'application/pdf', data: pdf(10).toString('base64') },
      { contentType: 'application/pdf', data: 'JVBER!i0xLjQK' },
    ]);
    expect(parseResource(JSON.stringify(r), 'DiagnosticReport')).toMatchObject({
      ok: false,
      status: 400,
      reason: 'attachment-invalid',
      issues: [{ expression: ['DiagnosticReport.presentedForm[1].data'] }],
    });
  });
  it('given a url-only form (valid FHIR R4), then it is valid and unchanged', () => {
    const r = report([{ contentType: 'application/pdf', url: 'https://lab.example/r.pdf' }]);
    expect(validateFhirResource(r)).toEqual({ ok: true, value: r });
  });
  it('given data, then the base validator sees a short stand-in and the other elements as sent', () => {
    const elided = withCheckedDataElided(report([{ data: pdf(10).toString('base64') }])) as DiagnosticReport;
    expect(elided.presentedForm?.[0]).toEqual({ data: 'AAAA' });
  });
  it('given an Observation with valueAttachment (R5, not R4), then 422 unknown element', () => {
    const o = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      valueAttachment: { contentType: 'application/pdf', data: 'AAAA' },
    } as unknown as Observation;
    expect(validateFhirResource(o)).toMatchObject({ ok: false, status: 422, reason: 'fhir-invalid' });
  });
});

describe('mapping a DiagnosticReport with presentedForm', () => {
  const bytes = pdf(250_000);
  const form = {
    contentType: 'application/pdf',
    data: bytes.toString('base64'),
    title: 'Pathology report PDF',
  };

  it('given one PDF, then AttachmentStored (id from patient + sha256) ahead of ResultReported that refers to it', () => {
    const got = events(report([form]));
    expect(got.map((e) => e.type)).toEqual(['AttachmentStored', 'ResultReported']);
    const [att, res] = got;
    if (att?.type !== 'AttachmentStored' || res?.type !== 'ResultReported') throw new Error('types');
    expect(att.data).toMatchObject({
      patientId: KEY,
      sha256: sha256(bytes),
      size: bytes.length,
      contentType: 'application/pdf',
    });
    expect(att.data.data.equals(bytes)).toBe(true);
    // The same id rule as the HL7 mapper: the same PDF by either route is one fact.
    expect(att.data.meta.eventId).toBe(deterministicEventId(['attachment', KEY, sha256(bytes)]));
    expect(res.data.observations).toEqual([
      expect.objectContaining({
        sequence: 1,
        valueType: 'ED',
        valueString: null,
        code: codeOf('http://loinc.org', '11526-1', 'Pathology study'),
        status: 'final',
        attachment: {
          sha256: sha256(bytes),
          size: bytes.length,
          contentType: 'application/pdf',
          title: 'Pathology report PDF',
        },
      }),
    ]);
    // The bytes are not in the result event.
    expect(JSON.stringify(res.data).length).toBeLessThan(4000);
  });

  it('given result observations too, then the forms follow them and the same PDF twice is one form and one event', () => {
    const obs: Observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'Hb' },
      valueString: 'ok',
    };
    const got = events(report([form, { ...form, title: 'again' }]), { resultObservations: [obs] });
    expect(got.filter((e) => e.type === 'AttachmentStored')).toHaveLength(1);
    const res = got.find((e) => e.type === 'ResultReported');
    if (res?.type !== 'ResultReported') throw new Error('no result');
    expect(res.data.observations.map((o) => [o.sequence, o.valueType, o.attachment?.sha256 ?? null])).toEqual(
      [
        [1, 'ST', null],
        [2, 'ED', sha256(bytes)],
      ],
    );
  });

  it('given the same input twice, then the same events (deterministic, pure)', () => {
    const r = report([form]);
    // Buffers as hex: a deep compare of 250 kB byte by byte is slow.
    const flat = (es: ClinicalEvent[]) =>
      JSON.stringify(es, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v));
    expect(flat(events(r))).toBe(flat(events(r)));
  });

  it('given a corrected report with the same PDF, then the same AttachmentStored id and a ResultCorrected', () => {
    const first = events(report([form]));
    const corrected = events(report([form], { status: 'corrected' }), { version: 2 });
    expect(corrected.map((e) => e.type)).toEqual(['AttachmentStored', 'ResultCorrected']);
    expect(corrected[0]?.data.meta.eventId).toBe(first[0]?.data.meta.eventId);
  });

  it('given damaged data (mapper used without the validator), then refused, no events', () => {
    expect(map(report([{ contentType: 'application/pdf', data: 'not*base64' }]))).toMatchObject({
      ok: false,
      status: 400,
      issues: [{ expression: ['DiagnosticReport.presentedForm[0].data'] }],
    });
  });

  it('given a url-only form beside results, then accepted: the results and an RP value (HL7 reference pointer), no AttachmentStored', () => {
    const obs: Observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'Hb' },
      valueString: 'ok',
    };
    const url = 'https://pacs.example/wado?study=1.2.3&contentType=application%2Fpdf';
    const got = events(
      report([{ contentType: 'application/pdf', url, title: 'CT report (PACS)' }], { status: 'final' }),
      { resultObservations: [obs] },
    );
    expect(got.map((e) => e.type)).toEqual(['ResultReported']);
    const res = got[0];
    if (res?.type !== 'ResultReported') throw new Error('no result');
    expect(res.data.observations).toEqual([
      expect.objectContaining({ sequence: 1, valueType: 'ST', valueString: 'ok' }),
      {
        sequence: 2,
        code: codeOf('http://loinc.org', '11526-1', 'CT report (PACS)'),
        valueType: 'RP',
        valueNumber: null,
        valueString: url,
        valueCode: codeOf('urn:ietf:bcp:13', 'application/pdf'),
        valueComparator: null,
        unit: null,
        referenceRange: null,
        interpretation: null,
        status: 'final',
        observedAt: null,
        attachment: null,
        // A document line has no value of its own to identify, annotate or qualify.
        ...noObservationDetail(),
      },
    ]);
  });

  it('given content and links mixed, then one value per form in order; no title or type: the report display, no valueCode; the same url twice is one', () => {
    const got = events(
      report([
        { url: 'https://docs.example/1' },
        form,
        { url: 'https://docs.example/1', title: 'again' },
        { contentType: 'image/jpeg', url: 'https://docs.example/2', data: pdf(10, 3).toString('base64') },
      ]),
    );
    expect(got.map((e) => e.type)).toEqual(['AttachmentStored', 'AttachmentStored', 'ResultReported']);
    const res = got[2];
    if (res?.type !== 'ResultReported') throw new Error('no result');
    expect(
      res.data.observations.map((o) => [o.sequence, o.valueType, o.valueString, o.valueCode, o.code.display]),
    ).toEqual([
      [1, 'RP', 'https://docs.example/1', null, 'Pathology study'],
      [2, 'ED', null, null, 'Pathology study'],
      // url and data: the data is the content (Binary/{sha256}); the sender's url is kept beside it.
      [3, 'ED', 'https://docs.example/2', null, 'Pathology study'],
    ]);
  });

  it('given no presentedForm, then the result is as before (no attachment events)', () => {
    expect(events(report(undefined)).map((e) => e.type)).toEqual(['ResultReported']);
  });
});
