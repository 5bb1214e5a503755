import { local, utc, type Case } from './spec.js';

/**
 * The conformance corpus: one HL7 v2 message per case (messages/*.hl7, CR
 * segment separators, made-up patients), sent in this order over one MLLP
 * socket to an adapter configured with site.yaml. Expectations come from HL7
 * v2 chapter 2 and issue 15, not from what the code happens to do.
 *
 * Senders (site.yaml): EHR^MERCY v2.3 (bare namespaces, New York),
 * LAB^MERCYLAB v2.5.1 (namespace + OID, New York), RIS^NORTH v2.4 (OID only,
 * Chicago), PORTALFEED^WEST v2.7 (explicit offsets; zone Los Angeles),
 * EHR^MERCYHEART v2.6 (UTF-8, namespace + OID, default zone New York).
 *
 * Winter 2026 offsets: New York −05:00, Chicago −06:00, Los Angeles −08:00.
 * DST 2026 in the US: starts 8 March 02:00 (02:00–02:59 does not exist),
 * ends 1 November 02:00 (01:00–01:59 happens twice). A nonexistent local time
 * is read with the offset before the transition and an ambiguous one as its
 * first occurrence (RFC 5545 §3.3.5, java.time and Temporal "compatible").
 */

export const SYSTEMS = {
  mrn: 'urn:oid:2.16.840.1.113883.3.999',
  visit: 'urn:oid:2.16.840.1.113883.3.999.2',
  placer: 'urn:oid:2.16.840.1.113883.3.999.3',
  filler: 'urn:oid:2.16.840.1.113883.3.999.4',
  northPlacer: 'https://north.example.org/orders',
} as const;

/**
 * Patients whose MRN is from the MERCY authority: their enterprise id is the
 * documented key of (configured system, MRN), whichever spelling of the
 * authority a feed used.
 */
export const PATIENTS: Record<string, { system: string; value: string }> = {
  AVERY: { system: SYSTEMS.mrn, value: 'M10001' },
  BRUNO: { system: SYSTEMS.mrn, value: 'M10002' },
  CELESTE: { system: SYSTEMS.mrn, value: 'M10003' },
  DMITRI: { system: SYSTEMS.mrn, value: 'M10004' },
  ELODIE: { system: SYSTEMS.mrn, value: 'M10005' },
  FARIDA: { system: SYSTEMS.mrn, value: 'M10006' },
  GUSTAV: { system: SYSTEMS.mrn, value: 'M10007' },
  IRINA: { system: SYSTEMS.mrn, value: 'M10009' },
  JONAH: { system: SYSTEMS.mrn, value: 'MRN10010' },
  KIRA: { system: SYSTEMS.mrn, value: 'M10011' },
  LUCA: { system: SYSTEMS.mrn, value: 'M10012' },
  MIRA: { system: SYSTEMS.mrn, value: 'M10013' },
  NOAH: { system: SYSTEMS.mrn, value: 'M10014' },
  OTTO: { system: SYSTEMS.mrn, value: 'M10015' },
  PRIYA: { system: SYSTEMS.mrn, value: 'M10016' },
  MARIA: { system: SYSTEMS.mrn, value: 'M10018' },
};

/** The 5 MB, 40 KB and 17 MiB payloads (payloads.ts), pinned. */
export const PDF = {
  big: {
    size: 3_750_000,
    sha256: '252568a88ab9bf3f7500146a7dd55407c68a30a641219ee302a47520523c03c4',
    contentType: 'application/pdf',
  },
  small: {
    size: 40_000,
    sha256: '9a325b3a46a642c7dad66102960d74f3acc2d992275efd18f61a72524d2ad441',
    contentType: 'application/pdf',
  },
} as const;

const AE = (code: string, location: string | string[]) => ({ code: 'AE' as const, err: { code, location } });
const NY = (
  field: string | RegExp,
  precision: 'second' | 'minute' | 'hour' | 'day' | 'millisecond' = 'second',
) => ({
  field,
  precision,
  offsetMinutes: -300,
  zoned: true,
});
/** The HL7 delete marker as it would appear inside JSON if it were ever stored as a value. */
const QUOTES = '"\\"\\""';
const telecomHome = /^telecom(\.home)?$/;

export const CASES: Case[] = [
  // ───────────────────────────── R0 baseline ─────────────────────────────
  {
    id: 'R0-01',
    rule: 'R0',
    what: 'v2.7 A28 with explicit offsets registers a person, no encounter',
    file: 'R0-01-a28-add-person-v27.hl7',
    controlId: 'CONF-R0-01',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientRegistered',
        patient: 'KIRA',
        data: {
          meta: { occurredAt: utc('2026-02-09T22:30:00Z') },
          demographics: {
            identifiers: [{ system: SYSTEMS.mrn, value: 'M10011', type: 'MR' }],
            names: [{ family: 'Lindqvist', given: ['Kira'] }],
            birthDate: '1991-03-02',
          },
        },
        sourceTimes: [{ field: 'meta.occurredAt', precision: 'second', offsetMinutes: -480, zoned: false }],
      },
    ],
    readModel: [
      {
        what: 'portal Patient',
        fhir: '/fhir/Patient/{patient:KIRA}',
        match: { resourceType: 'Patient', name: [{ family: 'Lindqvist' }], birthDate: '1991-03-02' },
      },
    ],
  },
  {
    id: 'R0-02',
    rule: 'R0',
    what: 'an unsupported message type (MFN^M02) is rejected AR 200 at MSH-9',
    file: 'R0-02-unsupported-message-type.hl7',
    controlId: 'CONF-R0-02',
    ack: { code: 'AR', err: { code: '200', location: 'MSH^1^9' } },
    events: [],
    deadLettered: true,
  },
  {
    id: 'R0-03',
    rule: 'R0',
    what: 'version 2.1 is rejected AR 203 at MSH-12',
    file: 'R0-03-unsupported-version-2-1.hl7',
    controlId: 'CONF-R0-03',
    ack: { code: 'AR', err: { code: '203', location: 'MSH^1^12' } },
    events: [],
    deadLettered: true,
  },
  {
    id: 'R0-04',
    rule: 'R0',
    what: 'a resend of R0-01 (same MSH-10) is acknowledged AA and adds nothing to the log',
    file: 'R0-01-a28-add-person-v27.hl7',
    controlId: 'CONF-R0-01',
    ack: { code: 'AA' },
    // The log still holds exactly R0-01's one event for this control id.
    events: [{ type: 'PatientRegistered', patient: 'KIRA' }],
  },
  {
    id: 'R0-05',
    rule: 'R0',
    what: 'v2.3 A01 admits an inpatient: patient, encounter and a billing account',
    file: 'R0-05-adt-a01-admit-v23.hl7',
    controlId: 'CONF-R0-05',
    ack: { code: 'AA' },
    events: [
      { type: 'PatientRegistered', patient: 'KIRA' },
      {
        type: 'EncounterStarted',
        patient: 'KIRA',
        encounter: 'KIRA-V1',
        data: {
          admittedAt: utc('2026-02-10T11:15:00Z'),
          visitNumber: { system: SYSTEMS.visit, value: 'V20011' },
          encounterClass: { code: 'IMP' },
        },
      },
    ],
    readModel: [
      {
        what: 'billing account open',
        sql: `select patient_id, status, encounter_class from {billing}.accounts where encounter_id = '{encounter:KIRA-V1}'`,
        rows: [{ patient_id: '{patient:KIRA}', status: 'open', encounter_class: 'inpatient' }],
      },
    ],
  },
  {
    id: 'R0-06',
    rule: 'R0',
    what: 'A11 cancels the admission: account cancelled, encounter no longer on the portal',
    file: 'R0-06-adt-a11-cancel-admit-v23.hl7',
    controlId: 'CONF-R0-06',
    ack: { code: 'AA' },
    events: [{ type: 'EncounterCancelled', patient: 'KIRA', encounter: 'KIRA-V1' }],
    readModel: [
      {
        what: 'billing account cancelled',
        sql: `select status from {billing}.accounts where encounter_id = '{encounter:KIRA-V1}'`,
        rows: [{ status: 'cancelled' }],
      },
      {
        what: 'portal record without the encounter',
        sql: `select count(*)::int as n from {portal}.patient_record where resource_id = '{encounter:KIRA-V1}'`,
        rows: [{ n: 0 }],
      },
    ],
  },

  // ──────────────────── R1 one authority, one system ────────────────────
  {
    id: 'R1-01',
    rule: 'R1',
    what: 'v2.3 A01 with bare namespace MERCY / MERCYVN records the configured systems',
    file: 'R1-01-adt-a01-namespace-only-v23.hl7',
    controlId: 'CONF-R1-01',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientRegistered',
        patient: 'AVERY',
        data: { demographics: { identifiers: [{ system: SYSTEMS.mrn, value: 'M10001', type: 'MR' }] } },
      },
      {
        type: 'EncounterStarted',
        patient: 'AVERY',
        encounter: 'AVERY-V1',
        data: {
          visitNumber: { system: SYSTEMS.visit, value: 'V20001' },
          admittedAt: utc('2026-02-10T12:30:00Z'),
          payer: 'Acme Health',
        },
      },
      {
        // IN1 (insurance): the coverage the billing read model needs, as its own fact.
        type: 'CoverageRecorded',
        patient: 'AVERY',
        data: {
          order: 1,
          payerId: { value: 'INS01' },
          payerName: 'Acme Health',
          plan: { code: 'GOLD01', display: 'Gold Plan' },
          status: 'active',
        },
      },
    ],
    readModel: [
      {
        what: 'billing account for the visit',
        sql: `select patient_id, status, payer from {billing}.accounts where encounter_id = '{encounter:AVERY-V1}'`,
        rows: [{ patient_id: '{patient:AVERY}', status: 'open', payer: 'Acme Health' }],
      },
    ],
  },
  {
    id: 'R1-02',
    rule: 'R1',
    what: 'v2.3 ORM with namespace-only placer MERCYORD lands on the same patient and visit',
    file: 'R1-02-orm-namespace-only-v23.hl7',
    controlId: 'CONF-R1-02',
    ack: { code: 'AA' },
    events: [
      {
        type: 'OrderPlaced',
        patient: 'AVERY',
        encounter: 'AVERY-V1',
        order: 'PO30001',
        data: {
          placerOrderNumber: { system: SYSTEMS.placer, value: 'PO30001' },
          orderedAt: utc('2026-02-10T13:15:00Z'),
          code: { code: '24323-8' },
        },
      },
    ],
    readModel: [
      {
        what: 'billing charge pending',
        sql: `select patient_id, status, cpt from {billing}.charges where line_id = '{order:PO30001}'`,
        rows: [{ patient_id: '{patient:AVERY}', status: 'pending', cpt: '80053' }],
      },
    ],
  },
  {
    id: 'R1-03',
    rule: 'R1',
    what: 'v2.5.1 ORU with namespace+OID ids: same patient, visit and order; on the portal record',
    file: 'R1-03-oru-namespace-and-oid-v251.hl7',
    controlId: 'CONF-R1-03',
    ack: { code: 'AA' },
    events: [
      {
        type: 'ResultReported',
        patient: 'AVERY',
        encounter: 'AVERY-V1',
        order: 'PO30001',
        result: 'AVERY-CMP',
        data: {
          status: 'final',
          issuedAt: utc('2026-02-10T14:30:00Z'),
          effectiveAt: utc('2026-02-10T13:30:00Z'),
        },
      },
    ],
    readModel: [
      {
        what: 'portal DiagnosticReport search through the API',
        fhir: '/fhir/DiagnosticReport?patient={patient:AVERY}',
        total: 1,
        contains: [
          {
            id: '{result:AVERY-CMP}',
            status: 'final',
            subject: { reference: 'Patient/{patient:AVERY}' },
            basedOn: [{ reference: 'ServiceRequest/{order:PO30001}' }],
            encounter: { reference: 'Encounter/{encounter:AVERY-V1}' },
          },
        ],
      },
      {
        what: 'portal ServiceRequest search through the API',
        fhir: '/fhir/ServiceRequest?patient={patient:AVERY}',
        contains: [{ id: '{order:PO30001}' }],
      },
      {
        what: 'one patient for M10001 in the portal',
        sql: `select count(*)::int as n from {portal}.patients where resource->'identifier' @> '[{"value":"M10001"}]'`,
        rows: [{ n: 1 }],
      },
      {
        what: 'billing charge billable',
        sql: `select status from {billing}.charges where line_id = '{order:PO30001}'`,
        rows: [{ status: 'billable' }],
      },
      {
        what: 'analytics turnaround order → result across feeds: 75 min',
        sql: `select orders, p50_minutes::float as m from {analytics}.v_turnaround where code = '24323-8'`,
        rows: [{ orders: 1, m: 75 }],
      },
    ],
  },
  {
    id: 'R1-04',
    rule: 'R1',
    what: 'v2.4 ORM with OID-only PID-3, PV1-19 and ORC-2 resolves to the same systems',
    file: 'R1-04-orm-oid-only-v24.hl7',
    controlId: 'CONF-R1-04',
    ack: { code: 'AA' },
    events: [
      {
        type: 'OrderPlaced',
        patient: 'AVERY',
        encounter: 'AVERY-V1',
        order: 'PO30002',
        data: {
          placerOrderNumber: { system: SYSTEMS.placer, value: 'PO30002' },
          orderedAt: utc('2026-02-10T15:00:00Z'),
        },
      },
    ],
  },
  {
    id: 'R1-05',
    rule: 'R1',
    what: 'v2.4 ORU mixing spellings links to the OID-only order; the portal shows both reports',
    file: 'R1-05-oru-imaging-mixed-spellings-v24.hl7',
    controlId: 'CONF-R1-05',
    ack: { code: 'AA' },
    events: [
      {
        type: 'ResultReported',
        patient: 'AVERY',
        encounter: 'AVERY-V1',
        order: 'PO30002',
        result: 'AVERY-XR',
        data: { category: 'imaging', issuedAt: utc('2026-02-10T16:30:00Z') },
      },
    ],
    readModel: [
      {
        what: 'both reports on the one patient',
        fhir: '/fhir/DiagnosticReport?patient={patient:AVERY}',
        total: 2,
        contains: [
          { id: '{result:AVERY-CMP}' },
          { id: '{result:AVERY-XR}', basedOn: [{ reference: 'ServiceRequest/{order:PO30002}' }] },
        ],
      },
      {
        what: 'the patient carries one MRN identifier',
        fhir: '/fhir/Patient/{patient:AVERY}',
        match: { identifier: [{ system: SYSTEMS.mrn, value: 'M10001' }] },
        lengths: { identifier: 1 },
      },
    ],
  },
  {
    id: 'R1-06',
    rule: 'R1',
    what: 'the configured enterprise authority wins over an earlier MR from another authority',
    file: 'R1-06-enterprise-authority-not-first-v26.hl7',
    controlId: 'CONF-R1-06',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientRegistered',
        patient: 'LUCA',
        data: {
          demographics: { identifiers: [{ value: 'X555' }, { system: SYSTEMS.mrn, value: 'M10012' }] },
        },
      },
      { type: 'EncounterStarted', patient: 'LUCA', data: { visitNumber: { system: SYSTEMS.visit } } },
    ],
  },
  {
    id: 'R1-07',
    rule: 'R1',
    what: 'an unregistered authority (WESTCLINIC) is accepted with a deterministic system and counted',
    file: 'R1-07-unregistered-authority-v27.hl7',
    controlId: 'CONF-R1-07',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientRegistered',
        patient: 'HOLLIS',
        data: { demographics: { identifiers: [{ value: 'W777' }] } },
      },
      { type: 'EncounterStarted', patient: 'HOLLIS', encounter: 'HOLLIS-V1' },
    ],
    readModel: [
      {
        what: 'analytics data-quality view lists WESTCLINIC and no registered authority',
        sql: `select bool_or(system ilike '%WESTCLINIC%') as listed,
                     count(*) filter (where system like 'urn:oid:2.16.840.1.113883.3.999%' or system like 'https://north.example.org/%')::int as registered
                from {analytics}.v_unregistered_authorities`,
        rows: [{ listed: true, registered: 0 }],
      },
    ],
  },
  {
    id: 'R1-08',
    rule: 'R1',
    what: 'the same unregistered authority again gives the same enterprise patient',
    file: 'R1-08-unregistered-authority-again-v27.hl7',
    controlId: 'CONF-R1-08',
    ack: { code: 'AA' },
    events: [{ type: 'PatientUpdated', patient: 'HOLLIS' }],
  },
  {
    id: 'R1-09',
    rule: 'R1',
    what: 'v2.6 A03 with namespace+OID visit number ends the encounter the v2.3 A01 started',
    file: 'R1-09-adt-a03-visit-number-namespace-and-oid-v26.hl7',
    controlId: 'CONF-R1-09',
    ack: { code: 'AA' },
    events: [
      {
        type: 'EncounterEnded',
        patient: 'AVERY',
        encounter: 'AVERY-V1',
        data: { endedAt: utc('2026-02-11T15:30:00Z') },
      },
    ],
    readModel: [
      {
        what: 'portal Encounter finished',
        fhir: '/fhir/Encounter?patient={patient:AVERY}',
        contains: [
          {
            id: '{encounter:AVERY-V1}',
            status: 'finished',
            subject: { reference: 'Patient/{patient:AVERY}' },
          },
        ],
      },
      {
        what: 'billing account discharged',
        sql: `select status from {billing}.accounts where encounter_id = '{encounter:AVERY-V1}'`,
        rows: [{ status: 'discharged' }],
      },
    ],
  },
  {
    id: 'R1-10',
    rule: 'R1',
    what: 'v2.4 ORM with a namespace-only placer whose authority is a URI (NORTHORD)',
    file: 'R1-10-orm-uri-authority-namespace-only-v24.hl7',
    controlId: 'CONF-R1-10',
    ack: { code: 'AA' },
    events: [
      {
        type: 'OrderPlaced',
        patient: 'GUSTAV',
        order: 'PO70001',
        data: {
          placerOrderNumber: { system: SYSTEMS.northPlacer, value: 'PO70001' },
          orderedAt: utc('2026-02-10T15:15:00Z'),
        },
      },
    ],
  },
  {
    id: 'R1-11',
    rule: 'R1',
    what: 'v2.7 ORU with the URI universal id only links to that order',
    file: 'R1-11-oru-uri-authority-universal-id-only-v27.hl7',
    controlId: 'CONF-R1-11',
    ack: { code: 'AA' },
    events: [
      {
        type: 'ResultReported',
        patient: 'GUSTAV',
        order: 'PO70001',
        data: { issuedAt: utc('2026-02-10T17:15:00Z') },
      },
    ],
    readModel: [
      {
        what: 'portal report based on the order',
        fhir: '/fhir/DiagnosticReport?patient={patient:GUSTAV}',
        total: 1,
        contains: [{ basedOn: [{ reference: 'ServiceRequest/{order:PO70001}' }] }],
      },
    ],
  },
  {
    id: 'R1-12',
    rule: 'R1',
    what: 'a correction with namespace-only filler / OID-only placer supersedes the same report',
    file: 'R1-12-oru-correction-filler-namespace-only-v251.hl7',
    controlId: 'CONF-R1-12',
    ack: { code: 'AA' },
    events: [
      {
        type: 'ResultCorrected',
        patient: 'AVERY',
        encounter: 'AVERY-V1',
        order: 'PO30001',
        result: 'AVERY-CMP',
        data: { status: 'corrected' },
      },
    ],
    readModel: [
      {
        what: 'portal shows the corrected report, still two reports',
        fhir: '/fhir/DiagnosticReport?patient={patient:AVERY}',
        total: 2,
        contains: [{ id: '{result:AVERY-CMP}', status: 'corrected' }],
      },
    ],
  },

  // ──────────────────── R2 local time is the sender's ────────────────────
  {
    id: 'R2-01',
    rule: 'R2',
    what: '08:00 local from a UTC−05:00 sender is 13:00Z on the event and 08:00−05:00 on the portal',
    file: 'R2-01-admit-0800-local-new-york-v23.hl7',
    controlId: 'CONF-R2-01',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientRegistered',
        patient: 'BRUNO',
        data: { meta: { occurredAt: utc('2026-02-10T13:00:00Z') } },
        sourceTimes: [NY('meta.occurredAt')],
      },
      {
        type: 'EncounterStarted',
        patient: 'BRUNO',
        encounter: 'BRUNO-V1',
        data: { admittedAt: utc('2026-02-10T13:00:00Z'), meta: { occurredAt: utc('2026-02-10T13:00:00Z') } },
        sourceTimes: [NY('admittedAt'), NY('meta.occurredAt')],
      },
    ],
    readModel: [
      {
        what: 'portal Encounter.period.start in the sender’s local time',
        fhir: '/fhir/Encounter?patient={patient:BRUNO}',
        contains: [{ id: '{encounter:BRUNO-V1}', period: { start: local('2026-02-10T08:00:00-05:00') } }],
      },
      {
        what: 'analytics admission instant',
        sql: `select admitted_at from {analytics}.encounters where encounter_id = '{encounter:BRUNO-V1}'`,
        rows: [{ admitted_at: '2026-02-10T13:00:00.000Z' }],
      },
    ],
  },
  {
    id: 'R2-02',
    rule: 'R2',
    what: '08:30 local from a Chicago sender (UTC−06:00) is 14:30Z',
    file: 'R2-02-order-local-chicago-v24.hl7',
    controlId: 'CONF-R2-02',
    ack: { code: 'AA' },
    events: [
      {
        type: 'OrderPlaced',
        patient: 'BRUNO',
        encounter: 'BRUNO-V1',
        order: 'PO30003',
        data: { orderedAt: utc('2026-02-10T14:30:00Z') },
        sourceTimes: [{ field: 'orderedAt', precision: 'second', offsetMinutes: -360, zoned: true }],
      },
    ],
  },
  {
    id: 'R2-03',
    rule: 'R2',
    what: 'an explicit −05:00 wins over the sender’s Los Angeles zone; turnaround is 15 min',
    file: 'R2-03-result-explicit-offset-wins-v27.hl7',
    controlId: 'CONF-R2-03',
    ack: { code: 'AA' },
    events: [
      {
        type: 'ResultReported',
        patient: 'BRUNO',
        order: 'PO30003',
        data: { issuedAt: utc('2026-02-10T14:45:00Z'), effectiveAt: utc('2026-02-10T14:00:00Z') },
        sourceTimes: [{ field: 'issuedAt', precision: 'second', offsetMinutes: -300, zoned: false }],
      },
    ],
    readModel: [
      {
        what: 'analytics turnaround (Chicago order → offset result)',
        sql: `select orders, p50_minutes::float as m from {analytics}.v_turnaround where code = '4548-4'`,
        rows: [{ orders: 1, m: 15 }],
      },
    ],
  },
  {
    id: 'R2-04',
    rule: 'R2',
    what: 'DST gap: 02:30 on 8 March (does not exist in New York) is read with −05:00 → 07:30Z',
    file: 'R2-04-dst-gap-spring-forward-v23.hl7',
    controlId: 'CONF-R2-04',
    ack: { code: 'AA' },
    events: [
      { type: 'PatientRegistered', patient: 'MIRA' },
      {
        type: 'EncounterStarted',
        patient: 'MIRA',
        data: { admittedAt: utc('2026-03-08T07:30:00Z') },
        // 02:30−05:00 and 03:30−04:00 are the same instant: either offset may be recorded.
        sourceTimes: [{ field: 'admittedAt', precision: 'second', offsetMinutes: [-300, -240], zoned: true }],
      },
    ],
  },
  {
    id: 'R2-05',
    rule: 'R2',
    what: 'DST overlap: 01:30 on 1 November (twice in New York) is the first, −04:00 → 05:30Z',
    file: 'R2-05-dst-overlap-fall-back-v23.hl7',
    controlId: 'CONF-R2-05',
    ack: { code: 'AA' },
    events: [
      { type: 'PatientRegistered', patient: 'NOAH' },
      {
        type: 'EncounterStarted',
        patient: 'NOAH',
        data: { admittedAt: utc('2026-11-01T05:30:00Z') },
        sourceTimes: [{ field: 'admittedAt', precision: 'second', offsetMinutes: -240, zoned: true }],
      },
    ],
  },
  {
    id: 'R2-06',
    rule: 'R2',
    what: 'summer time: 08:00 in Chicago in July is −05:00 → 13:00Z (a zone, not a fixed offset)',
    file: 'R2-06-summer-time-chicago-v24.hl7',
    controlId: 'CONF-R2-06',
    ack: { code: 'AA' },
    events: [
      {
        type: 'OrderPlaced',
        patient: 'BRUNO',
        data: { orderedAt: utc('2026-07-15T13:00:00Z') },
        sourceTimes: [{ field: 'orderedAt', precision: 'second', offsetMinutes: -300, zoned: true }],
      },
    ],
  },
  {
    id: 'R2-07',
    rule: 'R2',
    what: 'hour precision (PV1-44 = 2026021008) is 13:00Z with precision hour',
    file: 'R2-07-hour-precision-v23.hl7',
    controlId: 'CONF-R2-07',
    ack: { code: 'AA' },
    events: [
      { type: 'PatientRegistered', patient: 'OTTO' },
      {
        type: 'EncounterStarted',
        patient: 'OTTO',
        data: { admittedAt: utc('2026-02-10T13:00:00Z') },
        sourceTimes: [NY('admittedAt', 'hour')],
      },
    ],
  },
  {
    id: 'R2-08',
    rule: 'R2',
    what: 'minute precision with an explicit −07:00 from a Los Angeles sender is 15:00Z',
    file: 'R2-08-minute-precision-explicit-offset-v27.hl7',
    controlId: 'CONF-R2-08',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientRegistered',
        patient: 'PRIYA',
        data: { meta: { occurredAt: utc('2026-02-10T15:05:00Z') } },
      },
      {
        type: 'EncounterStarted',
        patient: 'PRIYA',
        data: { admittedAt: utc('2026-02-10T15:00:00Z') },
        sourceTimes: [{ field: 'admittedAt', precision: 'minute', offsetMinutes: -420, zoned: false }],
      },
    ],
  },
  {
    id: 'R2-09',
    rule: 'R2',
    what: 'day precision (OBR-7 = 20260210) is local midnight 05:00Z with precision day',
    file: 'R2-09-day-precision-v251.hl7',
    controlId: 'CONF-R2-09',
    ack: { code: 'AA' },
    events: [
      {
        type: 'ResultReported',
        patient: 'BRUNO',
        data: { effectiveAt: utc('2026-02-10T05:00:00Z'), issuedAt: utc('2026-02-10T16:00:00Z') },
        sourceTimes: [NY('effectiveAt', 'day'), NY('issuedAt')],
      },
    ],
  },
  {
    id: 'R2-10',
    rule: 'R2',
    what: 'fractional seconds from an unlisted sender use the default zone: 13:15:00.123Z',
    file: 'R2-10-fractional-seconds-default-zone-v26.hl7',
    controlId: 'CONF-R2-10',
    ack: { code: 'AA' },
    events: [
      {
        type: 'ResultReported',
        patient: 'BRUNO',
        data: {
          issuedAt: utc('2026-02-10T13:20:00Z'),
          observations: [{ observedAt: utc('2026-02-10T13:15:00.123Z') }],
        },
        sourceTimes: [NY(/(^|\.)observations\[0\]\.observedAt$/, 'millisecond')],
      },
    ],
  },
  {
    id: 'R2-11',
    rule: 'R2',
    what: 'an explicit +00:00 from a Chicago sender stays 15:00Z (offset 0, not zoned)',
    file: 'R2-11-explicit-utc-from-chicago-sender-v24.hl7',
    controlId: 'CONF-R2-11',
    ack: { code: 'AA' },
    events: [
      {
        type: 'OrderPlaced',
        patient: 'BRUNO',
        data: { orderedAt: utc('2026-02-10T15:00:00Z') },
        sourceTimes: [{ field: 'orderedAt', precision: 'second', offsetMinutes: 0, zoned: false }],
      },
    ],
  },
  {
    id: 'R2-12',
    rule: 'R2',
    what: 'discharge 10:00 local next day: length of stay 26 h, period.end 10:00−05:00',
    file: 'R2-12-discharge-length-of-stay-v23.hl7',
    controlId: 'CONF-R2-12',
    ack: { code: 'AA' },
    events: [
      {
        type: 'EncounterEnded',
        patient: 'BRUNO',
        encounter: 'BRUNO-V1',
        data: { endedAt: utc('2026-02-11T15:00:00Z') },
        sourceTimes: [NY('endedAt')],
      },
    ],
    readModel: [
      {
        what: 'portal Encounter period in local time',
        fhir: '/fhir/Encounter?patient={patient:BRUNO}',
        contains: [
          {
            id: '{encounter:BRUNO-V1}',
            status: 'finished',
            period: { start: local('2026-02-10T08:00:00-05:00'), end: local('2026-02-11T10:00:00-05:00') },
          },
        ],
      },
      {
        what: 'analytics length of stay',
        sql: `select extract(epoch from discharged_at - admitted_at)::int / 3600 as hours from {analytics}.encounters where encounter_id = '{encounter:BRUNO-V1}'`,
        rows: [{ hours: 26 }],
      },
    ],
  },
  {
    id: 'R2-13',
    rule: 'R2',
    what: 'an impossible hour (25:00) is AE 102 at PV1-44, nothing published',
    file: 'R2-13-impossible-hour-v23.hl7',
    controlId: 'CONF-R2-13',
    ack: AE('102', 'PV1^1^44'),
    events: [],
    deadLettered: true,
  },

  // ───────────────── R3 not sent ≠ deleted; lists replace ─────────────────
  {
    id: 'R3-01',
    rule: 'R3',
    what: 'registration with address, two contact points, marital status and language',
    file: 'R3-01-register-full-demographics-v23.hl7',
    controlId: 'CONF-R3-01',
    ack: { code: 'AA' },
    events: [
      { type: 'PatientRegistered', patient: 'CELESTE' },
      { type: 'EncounterStarted', patient: 'CELESTE' },
    ],
    readModel: [
      {
        what: 'portal Patient complete',
        fhir: '/fhir/Patient/{patient:CELESTE}',
        match: {
          birthDate: '1988-05-23',
          address: [{ line: ['14 Larkspur Lane'], city: 'Springfield' }],
          // FHIR's value set first, the v2 table code as sent kept beside it (v2-to-FHIR table 0002).
          maritalStatus: {
            coding: [
              { system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' },
              { system: 'http://terminology.hl7.org/CodeSystem/v2-0002', code: 'M' },
            ],
          },
          communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] } }],
        },
        lengths: { telecom: 2, address: 1 },
      },
    ],
  },
  {
    id: 'R3-02',
    rule: 'R3',
    what: 'A08 with PID-11/13/15/16 empty (not sent) keeps the stored values',
    file: 'R3-02-a08-fields-not-sent-v26.hl7',
    controlId: 'CONF-R3-02',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientUpdated',
        patient: 'CELESTE',
        notSent: ['addresses', telecomHome, 'maritalStatus', 'language'],
        notCleared: ['addresses', 'telecom', 'telecom.home', 'maritalStatus', 'language'],
      },
    ],
    readModel: [
      {
        what: 'portal Patient unchanged',
        fhir: '/fhir/Patient/{patient:CELESTE}',
        match: {
          address: [{ line: ['14 Larkspur Lane'] }],
          // FHIR's value set first, the v2 table code as sent kept beside it (v2-to-FHIR table 0002).
          maritalStatus: {
            coding: [
              { system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' },
              { system: 'http://terminology.hl7.org/CodeSystem/v2-0002', code: 'M' },
            ],
          },
          communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] } }],
        },
        lengths: { telecom: 2, address: 1 },
      },
    ],
  },
  {
    id: 'R3-03',
    rule: 'R3',
    what: 'A08 with PID-13 = "" and PID-16 = "" deletes them; "" is stored nowhere',
    file: 'R3-03-a08-delete-with-double-quotes-v26.hl7',
    controlId: 'CONF-R3-03',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientUpdated',
        patient: 'CELESTE',
        cleared: [telecomHome, 'maritalStatus'],
        notSent: ['addresses'],
        data: { demographics: { telecom: [], maritalStatus: null } },
        jsonExcludes: [QUOTES],
      },
    ],
    readModel: [
      {
        what: 'portal Patient without phone/e-mail and marital status, address kept',
        fhir: '/fhir/Patient/{patient:CELESTE}',
        match: { address: [{ line: ['14 Larkspur Lane'] }] },
        empty: ['telecom', 'maritalStatus'],
        excludes: [QUOTES],
      },
    ],
  },
  {
    id: 'R3-04',
    rule: 'R3',
    what: 'A08 with two PID-11 repetitions replaces the whole address list',
    file: 'R3-04-a08-repeating-field-replaces-v26.hl7',
    controlId: 'CONF-R3-04',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientUpdated',
        patient: 'CELESTE',
        notNotSent: ['addresses'],
        data: {
          demographics: {
            addresses: [
              { lines: ['1 Quarry Road'], city: 'Dover' },
              { lines: ['PO Box 77'], city: 'Dover' },
            ],
          },
        },
      },
    ],
    readModel: [
      {
        what: 'portal Patient has exactly the two new addresses',
        fhir: '/fhir/Patient/{patient:CELESTE}',
        match: { address: [{ line: ['1 Quarry Road'] }, { line: ['PO Box 77'], postalCode: '19903' }] },
        lengths: { address: 2 },
        empty: ['telecom'],
      },
    ],
  },
  {
    id: 'R3-05',
    rule: 'R3',
    what: 'A08 sending PID-13 again after the delete stores exactly the new phone',
    file: 'R3-05-a08-field-sent-again-after-delete-v26.hl7',
    controlId: 'CONF-R3-05',
    ack: { code: 'AA' },
    events: [{ type: 'PatientUpdated', patient: 'CELESTE', notSent: ['addresses'] }],
    readModel: [
      {
        what: 'portal Patient: one phone, addresses untouched',
        fhir: '/fhir/Patient/{patient:CELESTE}',
        match: { telecom: [{ system: 'phone' }] },
        lengths: { telecom: 1, address: 2 },
      },
    ],
  },
  {
    id: 'R3-06',
    rule: 'R3',
    what: 'v2.3 A08 with PID-7 = "" deletes the birth date',
    file: 'R3-06-a08-delete-birth-date-v23.hl7',
    controlId: 'CONF-R3-06',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientUpdated',
        patient: 'CELESTE',
        cleared: ['birthDate'],
        data: { demographics: { birthDate: null } },
        jsonExcludes: [QUOTES],
      },
    ],
    readModel: [
      {
        what: 'portal Patient without birthDate, gender kept',
        fhir: '/fhir/Patient/{patient:CELESTE}',
        match: { gender: 'female' },
        empty: ['birthDate'],
        lengths: { telecom: 1, address: 2 },
      },
    ],
  },
  {
    id: 'R3-07',
    rule: 'R3',
    what: 'an A01 with empty PID fields keeps the stored ones; PV1-7 = "" is no attending',
    file: 'R3-07-a01-empty-pid-keeps-and-quoted-attending-v23.hl7',
    controlId: 'CONF-R3-07',
    ack: { code: 'AA' },
    events: [
      { type: 'PatientRegistered', patient: 'CELESTE', notSent: [telecomHome, 'addresses'] },
      {
        type: 'EncounterStarted',
        patient: 'CELESTE',
        encounter: 'CELESTE-V2',
        data: { attendingPractitioner: null },
        jsonExcludes: [QUOTES],
      },
    ],
    readModel: [
      {
        what: 'portal Patient still has the phone and both addresses',
        fhir: '/fhir/Patient/{patient:CELESTE}',
        lengths: { telecom: 1, address: 2 },
      },
    ],
  },
  {
    id: 'R3-08',
    rule: 'R3',
    what: 'ORM with ORC-12 = "" has no ordering provider, and "" is not stored',
    file: 'R3-08-orm-quoted-ordering-provider-v23.hl7',
    controlId: 'CONF-R3-08',
    ack: { code: 'AA' },
    events: [
      {
        type: 'OrderPlaced',
        patient: 'CELESTE',
        encounter: 'CELESTE-V2',
        order: 'PO30010',
        data: { orderingProvider: null },
        jsonExcludes: [QUOTES],
      },
    ],
    readModel: [
      {
        what: 'billing charge pending for the lipid panel',
        sql: `select status, cpt from {billing}.charges where line_id = '{order:PO30010}'`,
        rows: [{ status: 'pending', cpt: '80061' }],
      },
      {
        what: 'portal ServiceRequest without a requester',
        fhir: '/fhir/ServiceRequest?patient={patient:CELESTE}',
        contains: [{ id: '{order:PO30010}' }],
        excludes: [QUOTES],
      },
    ],
  },
  {
    id: 'R3-09',
    rule: 'R3',
    what: 'v2.7 A31 replaces the name and deletes the language (PID-15 = "")',
    file: 'R3-09-a31-name-replaced-language-deleted-v27.hl7',
    controlId: 'CONF-R3-09',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientUpdated',
        patient: 'CELESTE',
        cleared: ['language'],
        data: { demographics: { names: [{ family: 'Ombrage-Vance', given: ['Celeste'] }] } },
      },
    ],
    readModel: [
      {
        what: 'portal Patient renamed, no language, contacts kept',
        fhir: '/fhir/Patient/{patient:CELESTE}',
        match: { name: [{ family: 'Ombrage-Vance' }] },
        lengths: { name: 1, telecom: 1, address: 2 },
        empty: ['communication', 'birthDate'],
      },
    ],
  },

  // ─────────────── R4 truncated or malformed is not a result ───────────────
  {
    id: 'R4-01',
    rule: 'R4',
    what: 'a complete message without the final segment terminator is accepted',
    file: 'R4-01-complete-without-final-terminator-v23.hl7',
    controlId: 'CONF-R4-01',
    ack: { code: 'AA' },
    events: [
      { type: 'PatientRegistered', patient: 'DMITRI' },
      { type: 'EncounterStarted', patient: 'DMITRI' },
    ],
  },
  {
    id: 'R4-02',
    rule: 'R4',
    what: 'ORU cut inside OBX-5 (no OBX-11, no terminator) is AE 101 at OBX-11, nothing published',
    file: 'R4-02-oru-truncated-inside-obx-v251.hl7',
    controlId: 'CONF-R4-02',
    ack: AE('101', 'OBX^2^11'),
    events: [],
    deadLettered: true,
    readModel: [
      {
        what: 'no report or observation on the portal',
        sql: `select (select count(*) from {portal}.reports where patient_id = '{patient:DMITRI}')::int as reports,
                     (select count(*) from {portal}.observations where patient_id = '{patient:DMITRI}')::int as observations`,
        rows: [{ reports: 0, observations: 0 }],
      },
      {
        what: 'no result in analytics',
        sql: `select count(*)::int as n from {analytics}.results where patient_id = '{patient:DMITRI}'`,
        rows: [{ n: 0 }],
      },
    ],
  },
  {
    id: 'R4-03',
    rule: 'R4',
    what: 'a last OBX without its required OBX-11, terminator present, is AE 101 at OBX-11',
    file: 'R4-03-oru-last-obx-short-with-terminator-v251.hl7',
    controlId: 'CONF-R4-03',
    ack: AE('101', 'OBX^1^11'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R4-04',
    rule: 'R4',
    what: 'ORM cut inside OBR before OBR-4 is AE 101 at OBR-4',
    file: 'R4-04-orm-truncated-inside-obr-v23.hl7',
    controlId: 'CONF-R4-04',
    ack: AE('101', 'OBR^1^4'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R4-05',
    rule: 'R4',
    what: 'ADT^A01 without its required PV1 segment is AE 100',
    file: 'R4-05-a01-missing-pv1-v23.hl7',
    controlId: 'CONF-R4-05',
    ack: AE('100', 'PV1'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R4-06',
    rule: 'R4',
    what: 'ADT^A08 without its required EVN segment is AE 100',
    file: 'R4-06-a08-missing-evn-v26.hl7',
    controlId: 'CONF-R4-06',
    ack: AE('100', 'EVN'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R4-07',
    rule: 'R4',
    what: 'ORU^R01 without OBR is AE 100',
    file: 'R4-07-oru-missing-obr-v251.hl7',
    controlId: 'CONF-R4-07',
    ack: AE('100', ['OBR', 'OBX']),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R4-08',
    rule: 'R4',
    what: 'ADT^A01 with PV1 before PID (segment out of order) is AE 100',
    file: 'R4-08-a01-pv1-before-pid-v23.hl7',
    controlId: 'CONF-R4-08',
    ack: AE('100', ['PID', 'PV1']),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R4-09',
    rule: 'R4',
    what: 'ORU^R01 with OBX before OBR (segment out of order) is AE 100',
    file: 'R4-09-oru-obx-before-obr-v251.hl7',
    controlId: 'CONF-R4-09',
    ack: AE('100', ['OBX', 'OBR']),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R4-10',
    rule: 'R4',
    what: 'a second PID in ADT^A08 (not repeatable) is AE 100',
    file: 'R4-10-a08-second-pid-not-allowed-v26.hl7',
    controlId: 'CONF-R4-10',
    ack: AE('100', 'PID^2'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R4-11',
    rule: 'R4',
    what: 'an NM value "12..5" is AE 102 at OBX-5',
    file: 'R4-11-oru-numeric-value-malformed-v251.hl7',
    controlId: 'CONF-R4-11',
    ack: AE('102', 'OBX^1^5'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R4-12',
    rule: 'R4',
    what: 'a complete v2.7 ORU with the truncation character in MSH-2 is accepted; the only report',
    file: 'R4-12-v27-truncation-character-complete-v27.hl7',
    controlId: 'CONF-R4-12',
    ack: { code: 'AA' },
    events: [
      {
        type: 'ResultReported',
        patient: 'DMITRI',
        data: { status: 'final', observations: [{ valueNumber: 12.4 }] },
      },
    ],
    readModel: [
      {
        what: 'DMITRI has exactly this one report: the refused ones left nothing',
        fhir: '/fhir/DiagnosticReport?patient={patient:DMITRI}',
        total: 1,
        contains: [{ code: { coding: [{ code: '5902-2' }] } }],
      },
    ],
  },
  {
    id: 'R4-13',
    rule: 'R4',
    what: 'a Z-segment at the end of a message is allowed',
    file: 'R4-13-z-segment-at-end-v26.hl7',
    controlId: 'CONF-R4-13',
    ack: { code: 'AA' },
    events: [{ type: 'PatientUpdated', patient: 'DMITRI' }],
  },
  {
    id: 'R4-14',
    rule: 'R4',
    what: 'an empty PID-3 is AE 101 at PID-3',
    file: 'R4-14-pid3-empty-v251.hl7',
    controlId: 'CONF-R4-14',
    ack: AE('101', 'PID^1^3'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R4-15',
    rule: 'R4',
    what: 'a missing PID-5 (patient name, required) is AE 101 at PID-5',
    file: 'R4-15-pid5-missing-v27.hl7',
    controlId: 'CONF-R4-15',
    ack: AE('101', 'PID^1^5'),
    events: [],
    deadLettered: true,
  },

  // ───────────────────────── R5 real reports are big ─────────────────────────
  {
    id: 'R5-01',
    rule: 'R5',
    what: 'a 5 MB ORU with a base64 PDF is accepted and read back byte-identical',
    file: 'R5-01-oru-5mb-base64-pdf-v251.hl7',
    controlId: 'CONF-R5-01',
    fill: { PDF_5MB: 'PDF_5MB' },
    ack: { code: 'AA' },
    events: [
      {
        type: 'ResultReported',
        patient: 'FARIDA',
        result: 'FARIDA-PATH',
        data: { observations: [{ valueType: 'ED', attachment: PDF.big }] },
        maxJsonBytes: 64 * 1024,
      },
      { type: 'AttachmentStored', patient: 'FARIDA', data: PDF.big },
    ],
    readModel: [
      {
        what: 'portal DiagnosticReport.presentedForm, bytes through the API',
        fhir: '/fhir/DiagnosticReport?patient={patient:FARIDA}',
        contains: [{ id: '{result:FARIDA-PATH}', presentedForm: [{ contentType: 'application/pdf' }] }],
        presentedForm: PDF.big,
      },
    ],
  },
  {
    id: 'R5-02',
    rule: 'R5',
    what: 'a 40 KB PDF in the MIME form ^application^pdf^Base64^ is read back byte-identical',
    file: 'R5-02-oru-small-pdf-mime-form-v27.hl7',
    controlId: 'CONF-R5-02',
    fill: { PDF_40KB: 'PDF_40KB' },
    ack: { code: 'AA' },
    events: [
      {
        type: 'ResultReported',
        patient: 'FARIDA',
        result: 'FARIDA-IMG',
        data: { observations: [{ attachment: PDF.small }] },
      },
      { type: 'AttachmentStored', patient: 'FARIDA', data: PDF.small },
    ],
    readModel: [
      {
        what: 'portal DiagnosticReport.presentedForm, bytes through the API',
        fhir: '/fhir/DiagnosticReport?patient={patient:FARIDA}',
        contains: [{ id: '{result:FARIDA-IMG}' }],
        presentedForm: PDF.small,
      },
    ],
  },
  {
    id: 'R5-03',
    rule: 'R5',
    what: 'an 18 MB message (over the 16 MiB default frame limit) is rejected AR, nothing published',
    file: 'R5-03-oru-over-16-mib-v251.hl7',
    controlId: 'CONF-R5-03',
    fill: { PDF_17MIB: 'PDF_17MIB' },
    ack: { code: 'AR' },
    events: [],
    deadLettered: true,
  },
  {
    id: 'R5-04',
    rule: 'R5',
    what: 'ED data that is not base64 is AE 102 at OBX-5',
    file: 'R5-04-oru-ed-not-base64-v251.hl7',
    controlId: 'CONF-R5-04',
    ack: AE('102', 'OBX^1^5'),
    events: [],
    deadLettered: true,
  },

  // ─────────────────── R6 an identifier is what it looks like ───────────────────
  {
    id: 'R6-01',
    rule: 'R6',
    what: 'a clean MRN registers the patient',
    file: 'R6-01-register-clean-mrn-v26.hl7',
    controlId: 'CONF-R6-01',
    ack: { code: 'AA' },
    events: [
      { type: 'PatientRegistered', patient: 'JONAH' },
      { type: 'EncounterStarted', patient: 'JONAH' },
    ],
  },
  {
    id: 'R6-02',
    rule: 'R6',
    what: 'surrounding blanks are trimmed: the same patient, value MRN10010',
    file: 'R6-02-mrn-surrounding-spaces-trimmed-v26.hl7',
    controlId: 'CONF-R6-02',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientUpdated',
        patient: 'JONAH',
        data: { demographics: { identifiers: [{ system: SYSTEMS.mrn, value: 'MRN10010' }] } },
      },
    ],
  },
  {
    id: 'R6-03',
    rule: 'R6',
    what: 'a zero-width space in the MRN is AE 102 at PID-3',
    file: 'R6-03-mrn-zero-width-space-v26.hl7',
    controlId: 'CONF-R6-03',
    ack: AE('102', 'PID^1^3'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R6-04',
    rule: 'R6',
    what: 'a bidi override (U+202E) in the MRN is AE 102 at PID-3',
    file: 'R6-04-mrn-bidi-override-v26.hl7',
    controlId: 'CONF-R6-04',
    ack: AE('102', 'PID^1^3'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R6-05',
    rule: 'R6',
    what: 'full-width digits in the MRN are AE 102 at PID-3',
    file: 'R6-05-mrn-full-width-digits-v26.hl7',
    controlId: 'CONF-R6-05',
    ack: AE('102', 'PID^1^3'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R6-06',
    rule: 'R6',
    what: 'a Cyrillic М among Latin letters (UTS #39 mixed-script confusable) is AE 102 at PID-3',
    file: 'R6-06-mrn-cyrillic-look-alike-v26.hl7',
    controlId: 'CONF-R6-06',
    ack: AE('102', 'PID^1^3'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R6-07',
    rule: 'R6',
    what: 'a control character (BEL) in the MRN is AE 102 at PID-3',
    file: 'R6-07-mrn-control-character-v26.hl7',
    controlId: 'CONF-R6-07',
    ack: AE('102', 'PID^1^3'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R6-08',
    rule: 'R6',
    what: 'a zero-width joiner in the visit number of an A01 is AE 102 at PV1-19',
    file: 'R6-08-visit-number-zero-width-joiner-a01-v26.hl7',
    controlId: 'CONF-R6-08',
    ack: AE('102', 'PV1^1^19'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R6-09',
    rule: 'R6',
    what: 'full-width digits in the placer order number are AE 102 at ORC-2',
    file: 'R6-09-placer-number-full-width-v23.hl7',
    controlId: 'CONF-R6-09',
    ack: AE('102', 'ORC^1^2'),
    events: [],
    deadLettered: true,
  },
  {
    id: 'R6-13',
    rule: 'R6',
    what: 'invalid UTF-8 in the MRN of a message declared UTF-8 is refused 102, nothing stored',
    file: 'R6-13-mrn-invalid-utf8-v26.hl7',
    controlId: 'CONF-R6-13',
    ack: { code: ['AE', 'AR'], err: { code: '102', location: ['PID^1^3', 'MSH^1^18'] } },
    events: [],
    deadLettered: true,
  },
  {
    id: 'R6-10',
    rule: 'R6',
    what: 'a name sent with combining accents is stored NFC (Marchetti-Brûlé, Élodie)',
    file: 'R6-10-name-decomposed-accents-stored-nfc-v26.hl7',
    controlId: 'CONF-R6-10',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientRegistered',
        patient: 'ELODIE',
        data: { demographics: { names: [{ family: 'Marchetti-Br\u00FBl\u00E9', given: ['\u00C9lodie'] }] } },
      },
      { type: 'EncounterStarted', patient: 'ELODIE' },
    ],
    readModel: [
      {
        what: 'portal Patient name in NFC',
        fhir: '/fhir/Patient/{patient:ELODIE}',
        match: { name: [{ family: 'Marchetti-Br\u00FBl\u00E9', given: ['\u00C9lodie'] }] },
      },
    ],
  },
  {
    id: 'R6-11',
    rule: 'R6',
    what: 'a Cyrillic name keeps its characters (hygiene is for identifiers, not names)',
    file: 'R6-11-name-cyrillic-kept-v26.hl7',
    controlId: 'CONF-R6-11',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientRegistered',
        patient: 'IRINA',
        data: { demographics: { names: [{ family: 'Воскресенская', given: ['Ирина'] }] } },
      },
      { type: 'EncounterStarted', patient: 'IRINA' },
    ],
    readModel: [
      {
        what: 'portal Patient name',
        fhir: '/fhir/Patient/{patient:IRINA}',
        match: { name: [{ family: 'Воскресенская', given: ['Ирина'] }] },
      },
    ],
  },
  {
    id: 'R6-12',
    rule: 'R6',
    what: 'a v2.3 ISO-8859-1 name (Nuñez, María) is stored as Unicode',
    file: 'R6-12-name-latin1-charset-v23.hl7',
    controlId: 'CONF-R6-12',
    ack: { code: 'AA' },
    events: [
      {
        type: 'PatientRegistered',
        patient: 'MARIA',
        data: { demographics: { names: [{ family: 'Nu\u00F1ez', given: ['Mar\u00EDa'] }] } },
      },
      { type: 'EncounterStarted', patient: 'MARIA' },
    ],
  },
];
