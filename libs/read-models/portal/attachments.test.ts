import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { evolveAll } from '../../../test/support/read-model-testing.js';
import { at, attachment, obs, resulted } from '../../../test/support/hospital-day.js';
import { evolve, type PortalTables } from './domain.js';

const run = (...events: Parameters<typeof evolve>[1][]) => evolveAll<PortalTables>(evolve, events);
const PDF = Buffer.from('%PDF-1.4\nmade-up report\n%%EOF\n');
const SHA = createHash('sha256').update(PDF).digest('hex');

describe('portal: report attachments (HL7 ED lifted into AttachmentStored)', () => {
  it('given the PDF and a final report presenting it, in either order, then one content row and presentedForm names it', () => {
    const a = attachment('P1', 'oru-pdf', at(9), PDF);
    const report = resulted('P1', 'R1', null, null, 'cbc', 'final', 'oru-pdf', at(9), [
      a.observation,
      obs('718-7', 'Hemoglobin', 12, 'g/dL', null, 'final'),
    ]);
    for (const d of [run(a.stored, report), run(report, a.stored)]) {
      expect([...d.all('attachments').values()]).toEqual([
        {
          sha256: SHA,
          content_type: 'application/pdf',
          size: PDF.length,
          sha1: createHash('sha1').update(PDF).digest('base64'),
          data: `\\x${PDF.toString('hex')}`,
        },
      ]);
      expect(d.all('reports').get('R1')!.resource.presentedForm).toEqual([
        { contentType: 'application/pdf', url: `Binary/${SHA}`, size: PDF.length, title: 'Report PDF' },
      ]);
    }
  });

  it('given the same PDF sent twice (two messages), then still one row', () => {
    const d = run(
      attachment('P1', 'oru-1', at(9), PDF).stored,
      attachment('P1', 'oru-2', at(10), PDF).stored,
    );
    expect(d.all('attachments').size).toBe(1);
  });

  it('given a preliminary report with a PDF, then nothing presents it (only released reports are shown)', () => {
    const a = attachment('P1', 'oru-p', at(9), PDF);
    const d = run(
      a.stored,
      resulted('P1', 'R1', null, null, 'cbc', 'preliminary', 'oru-p', at(9), [a.observation]),
    );
    expect(d.all('reports').size).toBe(0);
  });
});

describe('portal: report links (RP values: HL7 reference pointer, FHIR presentedForm with a url only)', () => {
  const link = (url: string | null, contentType: string | null, title: string | null, sequence: number) => ({
    ...obs('18748-4', 'CT report', 0, '', null, 'final'),
    code: {
      system: 'http://loinc.org',
      code: '18748-4',
      display: title,
      version: null,
      alternates: [],
      text: null,
    },
    sequence,
    valueType: 'RP',
    valueNumber: null,
    unit: null,
    valueString: url,
    valueCode: contentType
      ? {
          system: 'urn:ietf:bcp:13',
          code: contentType,
          display: null,
          version: null,
          alternates: [],
          text: null,
        }
      : null,
  });

  it('given a final report with a link beside a PDF and a value, then presentedForm lists both in report order; the link as sent (no size, no hash)', () => {
    const a = attachment('P1', 'oru-rp', at(9), PDF);
    const url = 'https://pacs.example/wado?study=1.2.3&type=pdf';
    const d = run(
      a.stored,
      resulted('P1', 'R1', null, null, 'cbc', 'final', 'oru-rp', at(9), [
        link(url, 'application/pdf', 'CT report (PACS)', 1),
        { ...a.observation, sequence: 2 },
        { ...obs('718-7', 'Hemoglobin', 12, 'g/dL', null, 'final'), sequence: 3 },
        link(url, 'application/pdf', 'same link again', 4),
        link('https://docs.example/2', null, null, 5),
      ]),
    );
    const report = d.all('reports').get('R1')!.resource;
    expect(report.presentedForm).toEqual([
      { contentType: 'application/pdf', url, title: 'CT report (PACS)' },
      { contentType: 'application/pdf', url: `Binary/${SHA}`, size: PDF.length, title: 'Report PDF' },
      { url: 'https://docs.example/2' },
    ]);
    // then the documents' Observations carry no value, as the ED one does (the form is the report's)
    const observations = d.all('observations');
    for (const id of ['R1-1', 'R1-2', 'R1-4', 'R1-5']) {
      const o = observations.get(id)!.resource;
      expect([o.valueString, o.valueCodeableConcept, o.valueQuantity]).toEqual([
        undefined,
        undefined,
        undefined,
      ]);
    }
    expect(observations.get('R1-3')!.resource.valueQuantity?.value).toBe(12);
  });

  it('given a preliminary report with a link, then nothing presents it', () => {
    const d = run(
      resulted('P1', 'R1', null, null, 'cbc', 'preliminary', 'oru-rp', at(9), [
        link('https://docs.example/1', 'application/pdf', 'x', 1),
      ]),
    );
    expect(d.all('reports').size).toBe(0);
  });
});
