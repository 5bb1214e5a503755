import { describe, expect, it } from 'vitest';
import {
  enterprisePatientId,
  identityPolicyFromEnv,
  patientKeyFor,
  systemForHl7Authority,
  type IdentityPolicy,
} from './index.js';

const policy: IdentityPolicy = {
  enterpriseSystems: ['urn:oid:1.2.3.4'],
  authorityAliases: { HOSP: 'urn:oid:1.2.3.4' },
};

describe('enterprise patient id', () => {
  it('given the same MRN by HL7 authority and by FHIR system, when keyed, then both get one key', () => {
    const hl7System = systemForHl7Authority({ namespaceId: 'HOSP' }, policy);
    const fromHl7 = enterprisePatientId([{ system: hl7System, value: 'MRN1', type: 'MR' }], policy);
    const fromFhir = enterprisePatientId([{ system: 'urn:oid:1.2.3.4', value: 'MRN1', type: null }], policy);
    expect(fromHl7).toBeDefined();
    expect(fromHl7).toBe(fromFhir);
  });

  it('given several identifiers, when one is from an enterprise system, then it wins over order', () => {
    const key = enterprisePatientId(
      [
        { system: 'urn:oid:9.9', value: 'X', type: 'MR' },
        { system: 'HOSP', value: 'MRN1', type: 'PI' },
      ],
      policy,
    );
    expect(key).toBe(patientKeyFor({ system: 'urn:oid:1.2.3.4', value: 'MRN1', type: null }));
  });

  it('never contains the identifier value', () => {
    const key = patientKeyFor({ system: 'urn:oid:1.2.3.4', value: 'MRN987654', type: 'MR' });
    expect(key).toMatch(/^pat-[0-9a-f-]{36}$/);
    expect(key).not.toContain('987654');
  });

  it('given no usable identifier, then there is no key', () => {
    expect(enterprisePatientId([{ system: 'x', value: '  ', type: null }])).toBeUndefined();
  });

  it('maps HL7 authorities: ISO OIDs to urn:oid, URIs kept, bare namespaces namespaced', () => {
    expect(systemForHl7Authority({ namespaceId: 'LAB', universalId: '1.2.9', universalIdType: 'ISO' })).toBe(
      'urn:oid:1.2.9',
    );
    expect(systemForHl7Authority({ universalId: 'http://h.example/mrn', universalIdType: 'URI' })).toBe(
      'http://h.example/mrn',
    );
    expect(systemForHl7Authority({ namespaceId: 'LAB' })).toBe('urn:hl7:authority:LAB');
  });

  it('reads the policy from the environment and refuses a malformed alias', () => {
    expect(identityPolicyFromEnv({ HUB_AUTHORITY_ALIASES: 'HOSP=urn:oid:1, LAB=urn:oid:2' })).toEqual({
      enterpriseSystems: [],
      authorityAliases: { HOSP: 'urn:oid:1', LAB: 'urn:oid:2' },
    });
    expect(() => identityPolicyFromEnv({ HUB_AUTHORITY_ALIASES: 'HOSP' })).toThrow(/HUB_AUTHORITY_ALIASES/);
  });
});
