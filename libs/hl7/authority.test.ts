import type { Encounter, Patient, ServiceRequest } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import type { ClinicalEvent, EventType, EventTypeMap } from '../events/index.js';
import { contentHash, mapResource, type MapContext as FhirMapContext } from '../fhir/mapping.js';
import { identityPolicyFromSite, type IdentityPolicy } from '../identity/index.js';
import { parseSiteConfig } from '../site-config/index.js';
import { mapHl7Message } from './map.js';
import type { MapContext } from './types.js';

/**
 * One authority, one system: the same assigning authority sent as a bare
 * namespace id (v2.3), as namespace + universal id (v2.5.1), as universal id
 * only, or as a FHIR Identifier.system, resolves through the site
 * configuration's `authorities` to one system, so patient ids, encounter ids
 * (PV1-19) and order ids (ORC-2 / OBR-2 / OBR-3) are the same whichever feed
 * sent them. All made-up authorities.
 */
const site = parseSiteConfig(`
defaultTimeZone: UTC
authorities:
  - { namespaceId: MERCY, universalId: 2.16.840.1.113883.3.999, universalIdType: ISO, identifierType: MR, system: "urn:oid:2.16.840.1.113883.3.999" }
  - { namespaceId: MERCYVN, universalId: 2.16.840.1.113883.3.999.2, universalIdType: ISO, identifierType: VN, system: "urn:oid:2.16.840.1.113883.3.999.2" }
  - { namespaceId: MERCYORD, universalId: 2.16.840.1.113883.3.999.3, universalIdType: ISO, identifierType: PLAC, system: "urn:oid:2.16.840.1.113883.3.999.3" }
  - { namespaceId: MERCYLAB, universalId: 2.16.840.1.113883.3.999.4, universalIdType: ISO, identifierType: FILL, system: "urn:oid:2.16.840.1.113883.3.999.4" }
enterpriseSystems: ["urn:oid:2.16.840.1.113883.3.999"]
`);
const policy: IdentityPolicy = identityPolicyFromSite(site, {});
const ctx: MapContext = { recordedAt: 1_710_000_000_000, policy, rawMessageRef: null, timeZone: 'UTC' };

/** The same authority, spelt the three ways HL7 senders spell it (CX-4 / EI-2..4 as HD). */
const spellings = {
  'namespace only (v2.3)': (ns: string, _oid: string) => ({ cx: ns, ei: ns }),
  'namespace + universal id (v2.5.1)': (ns: string, oid: string) => ({
    cx: `${ns}&${oid}&ISO`,
    ei: `${ns}^${oid}^ISO`,
  }),
  'universal id only': (_ns: string, oid: string) => ({ cx: `&${oid}&ISO`, ei: `^${oid}^ISO` }),
} as const;
type Spelling = keyof typeof spellings;
const SPELLINGS = Object.keys(spellings) as Spelling[];

const OID = {
  MERCY: '2.16.840.1.113883.3.999',
  MERCYVN: '2.16.840.1.113883.3.999.2',
  MERCYORD: '2.16.840.1.113883.3.999.3',
  MERCYLAB: '2.16.840.1.113883.3.999.4',
};
const hd = (s: Spelling, ns: keyof typeof OID) => spellings[s](ns, OID[ns]);

function msg(lines: string[]): Buffer {
  return Buffer.from(lines.join('\r'), 'latin1');
}

function events(bytes: Buffer): ClinicalEvent[] {
  const out = mapHl7Message(bytes, ctx);
  if (out.kind !== 'mapped')
    throw new Error(`refused: ${out.refusal.hl7ErrorCode} ${out.refusal.error.message}`);
  return out.events;
}

function only<K extends EventType>(evs: ClinicalEvent[], type: K): EventTypeMap[K] {
  const hits = evs.filter((e) => e.type === type);
  expect(hits).toHaveLength(1);
  return hits[0]!.data as EventTypeMap[K];
}

function admit(s: Spelling, version: string): Buffer {
  return msg([
    `MSH|^~\\&|EHR|MERCY|HUB|HUB|20240301101500||ADT^A01^ADT_A01|ADT-${version}|P|${version}`,
    'EVN|A01|20240301101500',
    `PID|1||MRN1^^^${hd(s, 'MERCY').cx}^MR||Testpatient^Jane||19800215|F`,
    `PV1|1|I|WARD4^401^B||||||||||||||||V100^^^${hd(s, 'MERCYVN').cx}^VN`,
  ]);
}

function order(s: Spelling, version: string): Buffer {
  const placer = `PO1^${hd(s, 'MERCYORD').ei}`;
  return msg([
    `MSH|^~\\&|CPOE|MERCY|HUB|HUB|20240301110000||ORM^O01^ORM_O01|ORM-${version}|P|${version}`,
    `PID|1||MRN1^^^${hd(s, 'MERCY').cx}^MR||Testpatient^Jane||19800215|F`,
    `PV1|1|I|WARD4^401^B||||||||||||||||V100^^^${hd(s, 'MERCYVN').cx}^VN`,
    `ORC|NW|${placer}|||SC||^^^^^R||20240301105500`,
    `OBR|1|${placer}||24323-8^Comprehensive metabolic panel^LN|||20240301105500`,
  ]);
}

/** A result that names its order only by the filler number (OBR-3): no ORC, OBR-2 empty. */
function fillerResult(s: Spelling, version: string): Buffer {
  return msg([
    `MSH|^~\\&|LIS|MERCY|HUB|HUB|20240301130000||ORU^R01^ORU_R01|ORU-${version}|P|${version}`,
    `PID|1||MRN1^^^${hd(s, 'MERCY').cx}^MR||Testpatient^Jane||19800215|F`,
    `PV1|1|I|WARD4^401^B||||||||||||||||V100^^^${hd(s, 'MERCYVN').cx}^VN`,
    `OBR|1||F500^${hd(s, 'MERCYLAB').ei}|24323-8^Comprehensive metabolic panel^LN|||20240301113000|||||||||||||||20240301130000||CH|F`,
    'OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|70-99|N|||F',
  ]);
}

const distinct = <T>(xs: T[]) => [...new Set(xs)];

describe('one authority, one system (HL7 v2)', () => {
  it('given the same MRN and visit number in every spelling of their authorities, then one patient and one encounter', () => {
    const admits = SPELLINGS.map((s, i) =>
      only(events(admit(s, i === 0 ? '2.3' : '2.5.1')), 'EncounterStarted'),
    );
    const regs = SPELLINGS.map((s) => only(events(admit(s, '2.5.1')), 'PatientRegistered'));
    expect(distinct(admits.map((a) => a.patientId))).toHaveLength(1);
    expect(distinct(admits.map((a) => a.encounterId))).toHaveLength(1);
    expect(distinct(regs.map((r) => r.patientId))).toEqual([admits[0]!.patientId]);
    for (const r of regs) {
      expect(r.demographics.identifiers).toEqual([
        { system: 'urn:oid:2.16.840.1.113883.3.999', value: 'MRN1', type: 'MR' },
      ]);
    }
    for (const a of admits) {
      expect(a.visitNumber).toEqual({
        system: 'urn:oid:2.16.840.1.113883.3.999.2',
        value: 'V100',
        type: 'VN',
      });
    }
  });

  it('given the same placer order number (ORC-2 / OBR-2) in every spelling, then one order on that patient and visit', () => {
    const placed = SPELLINGS.map((s, i) => only(events(order(s, i === 0 ? '2.3' : '2.5.1')), 'OrderPlaced'));
    expect(distinct(placed.map((o) => o.orderId))).toHaveLength(1);
    expect(distinct(placed.map((o) => o.patientId))).toHaveLength(1);
    expect(distinct(placed.map((o) => o.encounterId))).toHaveLength(1);
    for (const o of placed) {
      expect(o.placerOrderNumber).toEqual({
        system: 'urn:oid:2.16.840.1.113883.3.999.3',
        value: 'PO1',
        type: null,
      });
    }
    const admitted = only(events(admit('namespace only (v2.3)', '2.3')), 'EncounterStarted');
    expect(placed[0]!.patientId).toBe(admitted.patientId);
    expect(placed[0]!.encounterId).toBe(admitted.encounterId);
  });

  it('given the same filler order number (OBR-3) in every spelling, then one order id and one result', () => {
    const results = SPELLINGS.map((s, i) =>
      only(events(fillerResult(s, i === 0 ? '2.3' : '2.5.1')), 'ResultReported'),
    );
    expect(distinct(results.map((r) => r.orderId))).toHaveLength(1);
    expect(results[0]!.orderId).not.toBeNull();
    expect(distinct(results.map((r) => r.resultId))).toHaveLength(1);
    expect(distinct(results.map((r) => r.patientId))).toHaveLength(1);
    expect(distinct(results.map((r) => r.encounterId))).toHaveLength(1);
  });

  it('given an authority the site did not register, then it keeps its deterministic system (and is not merged)', () => {
    const other = only(
      events(
        msg([
          'MSH|^~\\&|EHR|MERCY|HUB|HUB|20240301101500||ADT^A28^ADT_A05|ADT-X|P|2.5.1',
          'EVN|A28|20240301101500',
          'PID|1||MRN1^^^STJUDE^MR||Testpatient^Jane||19800215|F',
          'PV1|1|N',
        ]),
      ),
      'PatientRegistered',
    );
    expect(other.demographics.identifiers[0]!.system).toBe('urn:hl7:authority:STJUDE');
    const mercy = only(events(admit('namespace only (v2.3)', '2.3')), 'PatientRegistered');
    expect(other.patientId).not.toBe(mercy.patientId);
  });
});

describe('one authority, one system (HL7 v2 and FHIR)', () => {
  const fctx: FhirMapContext = {
    policy,
    recordedAt: 1_710_000_000_000,
    source: { system: 'fhir-test', facility: null, messageId: null },
    correlationId: null,
    requestKey: null,
  };

  function fhirEvents(resource: Patient | Encounter | ServiceRequest, subjectKey?: string): ClinicalEvent[] {
    const r = mapResource(
      { resource, id: 'r1', version: 1, contentHash: contentHash(resource), previous: null, subjectKey },
      fctx,
    );
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.events;
  }

  it('given the MRN, visit number and placer number as FHIR identifiers with urn:oid systems, then the same ids as over HL7', () => {
    const hl7Admit = only(events(admit('namespace only (v2.3)', '2.3')), 'EncounterStarted');
    const hl7Order = only(events(order('namespace only (v2.3)', '2.3')), 'OrderPlaced');

    const patient = only(
      fhirEvents({
        resourceType: 'Patient',
        identifier: [{ system: 'urn:oid:2.16.840.1.113883.3.999', value: 'MRN1' }],
        name: [{ family: 'Testpatient', given: ['Jane'] }],
      }),
      'PatientRegistered',
    );
    expect(patient.patientId).toBe(hl7Admit.patientId);
    // No Identifier.type sent: the registered identifierType is recorded, as for HL7 CX-5.
    expect(patient.demographics.identifiers).toEqual([
      { system: 'urn:oid:2.16.840.1.113883.3.999', value: 'MRN1', type: 'MR' },
    ]);

    const encounter = only(
      fhirEvents(
        {
          resourceType: 'Encounter',
          status: 'in-progress',
          class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
          identifier: [{ system: 'urn:oid:2.16.840.1.113883.3.999.2', value: 'V100' }],
          subject: { reference: 'Patient/r1' },
          period: { start: '2024-03-01T10:15:00Z' },
        },
        patient.patientId,
      ),
      'EncounterStarted',
    );
    expect(encounter.encounterId).toBe(hl7Admit.encounterId);

    const request = only(
      fhirEvents(
        {
          resourceType: 'ServiceRequest',
          status: 'active',
          intent: 'order',
          identifier: [{ system: 'URN:OID:2.16.840.1.113883.3.999.3', value: 'PO1' }],
          code: { coding: [{ system: 'http://loinc.org', code: '24323-8' }] },
          subject: { reference: 'Patient/r1' },
        },
        patient.patientId,
      ),
      'OrderPlaced',
    );
    expect(request.orderId).toBe(hl7Order.orderId);
  });
});
