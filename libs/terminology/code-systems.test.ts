import { describe, expect, it } from 'vitest';
import {
  canonicalSystem,
  codingSystemFor,
  isLocalCodingSystemName,
  LOINC,
  SNOMED_CT,
  UCUM,
  V2_TABLE,
} from './code-systems.js';

describe('coding systems (HL7 table 0396 → URI)', () => {
  it('given the table-0396 names of the common terminologies, when mapped, then their FHIR URIs (any case)', () => {
    expect(codingSystemFor('LN', 'LIS')).toBe(LOINC);
    expect(codingSystemFor('ln', 'LIS')).toBe(LOINC);
    expect(codingSystemFor('SCT', 'LIS')).toBe(SNOMED_CT);
    expect(codingSystemFor('UCUM', 'LIS')).toBe(UCUM);
    expect(codingSystemFor('I10C', 'LIS')).toBe('http://hl7.org/fhir/sid/icd-10-cm');
    expect(codingSystemFor('I10', 'LIS')).toBe('http://hl7.org/fhir/sid/icd-10');
    expect(codingSystemFor('CVX', 'LIS')).toBe('http://hl7.org/fhir/sid/cvx');
    expect(codingSystemFor('RXNORM', 'LIS')).toBe('http://www.nlm.nih.gov/research/umls/rxnorm');
    expect(codingSystemFor('CDCREC', 'LIS')).toBe('urn:oid:2.16.840.1.113883.6.238');
  });

  it('given HL7nnnn, when mapped, then the terminology.hl7.org v2 table URI', () => {
    expect(codingSystemFor('HL70078', 'LIS')).toBe('http://terminology.hl7.org/CodeSystem/v2-0078');
    expect(V2_TABLE('0203')).toBe('http://terminology.hl7.org/CodeSystem/v2-0203');
  });

  it('given local names (L, 99zzz) or none, when mapped, then local systems: none is the sending application', () => {
    expect(codingSystemFor('', 'LIS')).toBe('urn:hl7:local:LIS');
    expect(codingSystemFor('', '')).toBe('urn:hl7:local:unknown');
    expect(codingSystemFor('L', 'LIS')).toBe('urn:hl7:codesystem:L');
    expect(codingSystemFor('99LAB', 'LIS')).toBe('urn:hl7:codesystem:99LAB');
    expect(isLocalCodingSystemName('99LAB')).toBe(true);
    expect(isLocalCodingSystemName('L')).toBe(true);
    expect(isLocalCodingSystemName('')).toBe(true);
    expect(isLocalCodingSystemName('LN')).toBe(false);
  });

  it('given a URI as the name, when mapped, then it is kept', () => {
    expect(codingSystemFor('http://example.org/codes', 'LIS')).toBe('http://example.org/codes');
    expect(codingSystemFor('urn:oid:1.2.3', 'LIS')).toBe('urn:oid:1.2.3');
  });

  it('given systems stored by older events (LN, HL7-0078, a URI), when canonicalised, then the URIs new events carry', () => {
    expect(canonicalSystem('LN')).toBe(LOINC);
    expect(canonicalSystem('HL7-0078')).toBe(V2_TABLE('0078'));
    expect(canonicalSystem('HL70078')).toBe(V2_TABLE('0078'));
    expect(canonicalSystem(LOINC)).toBe(LOINC);
    expect(canonicalSystem('urn:hl7:local:LIS')).toBe('urn:hl7:local:LIS');
    expect(canonicalSystem('99LAB')).toBe(codingSystemFor('99LAB', 'any'));
  });
});
