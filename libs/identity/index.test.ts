import { describe, expect, it } from 'vitest';
import {
  canonicalSystem,
  deprecatedIdentityVariables,
  enterprisePatientId,
  identityPolicyFromEnv,
  identityPolicyFromSite,
  isRegisteredSystem,
  resolveHl7Authority,
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
    // A HubError at the source, so that no caller wraps it by hand.
    expect(() => identityPolicyFromEnv({ HUB_AUTHORITY_ALIASES: 'HOSP' })).toThrow(
      expect.objectContaining({ code: 'HUB_CONFIG_INVALID' }) as Error,
    );
  });
});

describe('registered authorities (site configuration)', () => {
  const MERCY = 'urn:oid:2.16.840.1.113883.3.999';
  const sited: IdentityPolicy = {
    enterpriseSystems: [MERCY],
    authorityAliases: {},
    authorities: [
      { namespaceId: 'MERCY', universalId: '2.16.840.1.113883.3.999', universalIdType: 'ISO', system: MERCY },
      { namespaceId: 'LAB', identifierType: 'FILL', system: 'https://lab.example/orders' },
      {
        universalId: 'https://st-jude.example/mrn',
        universalIdType: 'URI',
        system: 'urn:oid:2.16.840.1.113883.3.998',
      },
    ],
  };

  it('given an authority sent as namespace only, universal id only or both, then all resolve to its system, case-insensitively', () => {
    for (const hd of [
      { namespaceId: 'MERCY' },
      { namespaceId: 'mercy' },
      { universalId: '2.16.840.1.113883.3.999', universalIdType: 'ISO' },
      { universalId: '2.16.840.1.113883.3.999' },
      { namespaceId: 'MERCY', universalId: '2.16.840.1.113883.3.999', universalIdType: 'ISO' },
      { namespaceId: ' Mercy ', universalId: '2.16.840.1.113883.3.999', universalIdType: 'iso' },
    ]) {
      expect(systemForHl7Authority(hd, sited), JSON.stringify(hd)).toBe(MERCY);
    }
    for (const s of [
      'urn:oid:2.16.840.1.113883.3.999',
      'URN:OID:2.16.840.1.113883.3.999',
      'MERCY',
      'urn:hl7:authority:MERCY',
    ])
      expect(canonicalSystem(s, sited), s).toBe(MERCY);
  });

  it('given a URI universal id, then the HL7 and FHIR spellings resolve to the configured system', () => {
    const sys = 'urn:oid:2.16.840.1.113883.3.998';
    expect(
      systemForHl7Authority({ universalId: 'https://st-jude.example/mrn', universalIdType: 'URI' }, sited),
    ).toBe(sys);
    expect(canonicalSystem('https://ST-JUDE.example/mrn', sited)).toBe(sys);
    expect(canonicalSystem(sys, sited)).toBe(sys);
  });

  it('given namespace and universal id naming two different registered authorities, then the universal id wins', () => {
    expect(
      systemForHl7Authority(
        { namespaceId: 'LAB', universalId: '2.16.840.1.113883.3.999', universalIdType: 'ISO' },
        sited,
      ),
    ).toBe(MERCY);
  });

  it('given a registered namespace sent with another universal id, then it is not that authority (deterministic system)', () => {
    expect(
      systemForHl7Authority(
        { namespaceId: 'MERCY', universalId: '2.16.840.1.113883.3.777', universalIdType: 'ISO' },
        sited,
      ),
    ).toBe('urn:oid:2.16.840.1.113883.3.777');
    // An authority registered by namespace only accepts any universal id sent with it.
    expect(
      systemForHl7Authority({ namespaceId: 'LAB', universalId: '1.2.3', universalIdType: 'ISO' }, sited),
    ).toBe('https://lab.example/orders');
  });

  it("given unregistered authorities, then today's deterministic systems are kept and reported as unregistered", () => {
    expect(systemForHl7Authority({ namespaceId: 'OTHER' }, sited)).toBe('urn:hl7:authority:OTHER');
    expect(
      systemForHl7Authority({ namespaceId: 'X', universalId: '1.2.9', universalIdType: 'ISO' }, sited),
    ).toBe('urn:oid:1.2.9');
    expect(canonicalSystem('http://other.example/ids', sited)).toBe('http://other.example/ids');
    expect(resolveHl7Authority({ namespaceId: 'OTHER' }, sited).authority).toBeUndefined();
    expect(isRegisteredSystem('urn:hl7:authority:OTHER', sited)).toBe(false);
    expect(isRegisteredSystem(MERCY.toUpperCase(), sited)).toBe(true);
    expect(isRegisteredSystem('https://lab.example/orders', sited)).toBe(true);
    expect(isRegisteredSystem('urn:oid:1.2.3.4', policy)).toBe(true);
  });

  it('given the same MRN by both HL7 spellings and by FHIR, then there is one enterprise patient id', () => {
    const keys = [
      systemForHl7Authority({ namespaceId: 'MERCY' }, sited),
      systemForHl7Authority(
        { namespaceId: 'MERCY', universalId: '2.16.840.1.113883.3.999', universalIdType: 'ISO' },
        sited,
      ),
      canonicalSystem('urn:oid:2.16.840.1.113883.3.999', sited),
    ].map((system) => enterprisePatientId([{ system, value: 'MRN1', type: 'MR' }], sited));
    expect(new Set(keys).size).toBe(1);
  });
});

describe('identityPolicyFromSite', () => {
  const site = {
    authorities: [{ namespaceId: 'MERCY', system: 'urn:oid:2.16.840.1.113883.3.999' }],
    enterpriseSystems: ['urn:oid:2.16.840.1.113883.3.999'],
  };

  it('given only the site configuration, then its authorities and enterprise systems make the policy', () => {
    expect(identityPolicyFromSite(site, {})).toEqual({
      enterpriseSystems: ['urn:oid:2.16.840.1.113883.3.999'],
      authorityAliases: {},
      authorities: site.authorities,
    });
    expect(deprecatedIdentityVariables({})).toEqual([]);
  });

  it('given the deprecated variables too, then they are merged in behind the file and reported', () => {
    const env = {
      HUB_ENTERPRISE_ID_SYSTEMS: 'urn:oid:2.16.840.1.113883.3.999, urn:oid:1.2.3',
      HUB_AUTHORITY_ALIASES: 'MERCY=urn:oid:9.9.9,HOSP=urn:oid:1.2.3',
    };
    const p = identityPolicyFromSite(site, env);
    expect(p.enterpriseSystems).toEqual(['urn:oid:2.16.840.1.113883.3.999', 'urn:oid:1.2.3']);
    // The file wins where both name an authority; the alias still serves what the file does not name.
    expect(systemForHl7Authority({ namespaceId: 'MERCY' }, p)).toBe('urn:oid:2.16.840.1.113883.3.999');
    expect(systemForHl7Authority({ namespaceId: 'HOSP' }, p)).toBe('urn:oid:1.2.3');
    expect(isRegisteredSystem('urn:oid:1.2.3', p)).toBe(true);
    expect(deprecatedIdentityVariables(env)).toEqual(['HUB_AUTHORITY_ALIASES', 'HUB_ENTERPRISE_ID_SYSTEMS']);
  });

  it('given a malformed alias list, then HUB_CONFIG_INVALID', () => {
    expect(() => identityPolicyFromSite(site, { HUB_AUTHORITY_ALIASES: 'HOSP' })).toThrow(
      /HUB_AUTHORITY_ALIASES/,
    );
    expect(() => identityPolicyFromSite(site, { HUB_AUTHORITY_ALIASES: 'HOSP=' })).toThrow(
      expect.objectContaining({ code: 'HUB_CONFIG_INVALID' }) as Error,
    );
  });
});
