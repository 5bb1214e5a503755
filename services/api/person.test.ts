import type { Patient } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { asPerson } from './readers/portal.js';

const mrn = (value: string) => ({
  system: 'urn:oid:2.16.840.1.113883.3.999.1',
  value,
  type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] },
});

const p1: Patient = {
  resourceType: 'Patient',
  id: 'P1',
  identifier: [mrn('MRN-1')],
  name: [{ family: 'Doe' }],
};
const p2: Patient = { resourceType: 'Patient', id: 'P2', identifier: [mrn('MRN-2'), mrn('MRN-1')] };

describe('asPerson: a record presented with the other records of its person', () => {
  it('given no other record, then the resource as it is', () => {
    expect(asPerson(p1, [])).toBe(p1);
  });

  it("given another record, then its own identifiers first, the other's once each, and a seealso link", () => {
    expect(asPerson(p1, [p2])).toEqual({
      ...p1,
      identifier: [mrn('MRN-1'), mrn('MRN-2')],
      link: [{ other: { reference: 'Patient/P2' }, type: 'seealso' }],
    });
  });

  it('given a record that replaces a merged one, then its replaces link stays, before the seealso', () => {
    const survivor: Patient = { ...p1, link: [{ other: { reference: 'Patient/P0' }, type: 'replaces' }] };
    expect(asPerson(survivor, [p2]).link).toEqual([
      { other: { reference: 'Patient/P0' }, type: 'replaces' },
      { other: { reference: 'Patient/P2' }, type: 'seealso' },
    ]);
  });
});
