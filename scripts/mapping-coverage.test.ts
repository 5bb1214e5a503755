import { describe, expect, it } from 'vitest';
import {
  classify,
  coverage,
  fhirElementsIn,
  fieldNumbers,
  hl7FieldsIn,
  segmentCoverage,
} from './mapping-coverage.js';

describe('mapping coverage of our own corpora', () => {
  it('given the HL7 corpus and FHIR fixtures, then every field they send is listed in a mapping table', () => {
    const { hl7, fhir } = coverage();
    const unlisted = [...hl7, ...fhir].filter(([, v]) => v === 'unlisted').map(([k]) => k);
    expect(unlisted).toEqual([]);
    // The corpus exercises the new segments: they must be mapped, not merely listed.
    for (const id of [
      'OBX-4',
      'OBX-6',
      'OBX-8',
      'NTE-3',
      'SPM-4',
      'DG1-3',
      'AL1-3',
      'IN1-3',
      'NK1-2',
      'PV2-3',
    ]) {
      expect(hl7.get(id), id).toBe('mapped');
    }
  });

  it('given a coverage cell, then field numbers are read and explanations ignored', () => {
    expect(
      fieldNumbers('1 (set id: position only); 2, 4, 19 (SSN, DG1-3.3 names it); 10–12, 34 (job)'),
    ).toEqual([1, 2, 4, 19, 10, 11, 12, 34]);
    const rows = ['| PV1     | 2, 3 | 1 (set id); 5 (preadmit number) |'];
    expect(segmentCoverage(rows).get('PV1-5')).toBe('deliberately not');
    expect(classify('PV1-3', rows)).toBe('mapped');
    expect(classify('PV1-40', rows)).toBe('unlisted');
  });

  it('given a message and a bundle, then only valued fields and present elements count', () => {
    expect([...hl7FieldsIn('MSH|^~\\&|LAB||||20240101||ORU^R01|1|P|2.5\rOBX|1||X^Y^LN||\r')].sort()).toEqual(
      ['MSH-1', 'MSH-2', 'MSH-3', 'MSH-7', 'MSH-9', 'MSH-10', 'MSH-11', 'MSH-12', 'OBX-1', 'OBX-3'].sort(),
    );
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Observation', valueQuantity: { value: 1, unit: 'mg' } } }],
    };
    expect([...fhirElementsIn(bundle)].sort()).toEqual(
      [
        'Bundle.type',
        'Observation.valueQuantity',
        'Observation.valueQuantity.unit',
        'Observation.valueQuantity.value',
      ].sort(),
    );
  });
});
