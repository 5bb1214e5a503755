import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { evolveAll } from '../../libs/projections/testing.js';
import { at, attachment, obs, resulted } from '../../test/support/hospital-day.js';
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
