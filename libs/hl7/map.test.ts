import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  codeOf,
  invalidPaths,
  type ClinicalEvent,
  type EventType,
  type EventTypeMap,
} from '../events/index.js';
import { UCUM, V2_TABLE } from '../terminology/code-systems.js';
import { DEFAULT_IDENTITY_POLICY, patientKeyFor, type IdentityPolicy } from '../identity/index.js';
import { mapHl7Message, messageCorrelationId, parseHeader } from './map.js';
import type { MapContext, MapOutcome } from './types.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/hl7');
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, `${name}.hl7`));

const ctx: MapContext = {
  recordedAt: 1_710_000_000_000,
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: 'hl7.raw.v1/0/42',
  timeZone: 'UTC',
};

function mapFixture(name: string, c: MapContext = ctx): MapOutcome {
  return mapHl7Message(fixture(name), c);
}

function mapped(name: string, c: MapContext = ctx): ClinicalEvent[] {
  const out = mapFixture(name, c);
  if (out.kind !== 'mapped')
    throw new Error(`${name}: refused ${out.refusal.hl7ErrorCode} ${out.refusal.error.message}`);
  return out.events;
}

function only<K extends EventType>(events: ClinicalEvent[], type: K): EventTypeMap[K] {
  const hits = events.filter((e) => e.type === type);
  expect(hits).toHaveLength(1);
  return hits[0]!.data as EventTypeMap[K];
}

function refusal(name: string) {
  const out = mapFixture(name);
  if (out.kind !== 'refused') throw new Error(`${name}: expected a refusal`);
  return out;
}

const MRN = (value: string) => patientKeyFor({ system: 'urn:hl7:authority:HOSP', value, type: 'MR' });
const utc = (iso: string) => Date.parse(iso);

describe('ADT', () => {
  it('given an A01 admit, when mapped, then PatientRegistered and EncounterStarted carry PID and PV1, and IN1 a coverage', () => {
    const events = mapped('adt-a01-admit');
    expect(events.map((e) => e.type)).toEqual(['PatientRegistered', 'EncounterStarted', 'CoverageRecorded']);
    const reg = only(events, 'PatientRegistered');
    expect(reg.patientId).toBe(MRN('MRN10001'));
    expect(reg.demographics.identifiers).toEqual([
      { system: 'urn:hl7:authority:HOSP', value: 'MRN10001', type: 'MR' },
      { system: 'urn:hl7:authority:SSA', value: '123456789', type: 'SS' },
      { system: 'urn:oid:1.2.840.99999.1', value: 'E77', type: 'PI' },
    ]);
    expect(reg.demographics.names).toEqual([
      { family: 'Testpatient', given: ['Jane', 'Q'], prefix: 'Ms.', suffix: null, use: 'official' },
      { family: 'Miller', given: ['Jane'], prefix: null, suffix: null, use: 'maiden' },
    ]);
    expect(reg.demographics.birthDate).toBe('1980-02-15');
    expect(reg.demographics.administrativeGender).toBe('female');
    expect(reg.demographics.deceased).toBe(false);
    expect(reg.demographics.addresses[0]).toMatchObject({
      lines: ['12 Elm Street', 'Apt 3'],
      city: 'Springfield',
      use: 'home',
    });
    expect(reg.demographics.telecom).toEqual([
      { system: 'phone', value: '+1 217 5551234', use: 'home', part: 'home' },
      { system: 'email', value: 'jane.testpatient@example.org', use: null, part: 'home' },
      { system: 'phone', value: '+1 217 5559876', use: 'work', part: 'work' },
    ]);
    expect(reg.demographics.maritalStatus?.code).toBe('M');
    expect(reg.demographics.language).toEqual({
      system: 'urn:hl7:codesystem:ISO639',
      code: 'eng',
      display: 'English',
      version: null,
      alternates: [],
      text: null,
    });
    // No PID-10/17/22, PD1 or NK1 in this A01: not sent, so a reader keeps what it has.
    expect(reg.demographics.notSent).toEqual(
      expect.arrayContaining(['race', 'ethnicity', 'religion', 'contacts', 'primaryCareProvider']),
    );

    const enc = only(events, 'EncounterStarted');
    expect(enc.patientId).toBe(reg.patientId);
    expect(enc.encounterId).toMatch(/^enc-[0-9a-f-]{36}$/);
    expect(enc.encounterId).not.toContain('V20001');
    expect(enc.visitNumber).toEqual({ system: 'urn:hl7:authority:HOSP', value: 'V20001', type: 'VN' });
    expect(enc.encounterClass).toEqual({
      system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
      code: 'IMP',
      display: 'inpatient encounter',
      version: null,
      // The PV1-2 code as sent travels with the FHIR class (R and O both map to AMB).
      alternates: [
        { system: 'http://terminology.hl7.org/CodeSystem/v2-0004', code: 'I', display: null, version: null },
      ],
      text: null,
    });
    expect(enc.status).toBe('in-progress');
    expect(enc.location).toEqual({ facility: 'GENHOSP', unit: 'WARD4', room: '401', bed: 'B' });
    expect(enc.hospitalService?.code).toBe('MED');
    expect(enc.attendingPractitioner?.name?.family).toBe('Welby');
    expect(enc.admittedAt).toBe(utc('2024-03-01T08:30:00Z'));
    expect(enc.meta.occurredAt).toBe(utc('2024-03-01T08:30:00Z'));
    expect(enc.payer).toBe('Acme Health Insurance');
    // PV1-4, PV1-14, PV1-36 and PV2 are not in this A01.
    expect([enc.admitReason, enc.admitSource, enc.admissionType, enc.dischargeDisposition]).toEqual([
      null,
      null,
      null,
      null,
    ]);
    const cov = only(events, 'CoverageRecorded');
    expect(cov).toMatchObject({
      patientId: reg.patientId,
      encounterId: enc.encounterId,
      payerId: { system: 'urn:hl7:authority:unknown', value: 'INS01' },
      payerName: 'Acme Health Insurance',
      plan: { code: 'PLAN01', display: 'Gold Plan' },
      order: 1,
      memberId: null,
      status: 'active',
    });
    expect(cov.coverageId).toMatch(/^cov-[0-9a-f-]{36}$/);
  });

  it('given the envelope, when mapped, then meta comes from MSH and the context', () => {
    const [first] = mapped('adt-a01-admit');
    expect(first!.data.meta).toMatchObject({
      eventType: 'PatientRegistered',
      recordedAt: ctx.recordedAt,
      source: { system: 'EHR', facility: 'GENHOSP', messageId: 'ADT0001' },
      correlationId: messageCorrelationId({
        sendingApplication: 'EHR',
        sendingFacility: 'GENHOSP',
        controlId: 'ADT0001',
      }),
      causationId: null,
      rawMessageRef: 'hl7.raw.v1/0/42',
    });
    // EVN-6 (event occurred) wins over EVN-2 and MSH-7.
    expect(first!.data.meta.occurredAt).toBe(utc('2024-03-01T08:30:00Z'));
  });

  it('given the same message twice, when mapped, then event ids are identical; a different control id changes them', () => {
    const a = mapped('adt-a01-admit').map((e) => e.data.meta.eventId);
    const b = mapped('adt-a01-admit', {
      ...ctx,
      recordedAt: ctx.recordedAt + 5000,
      rawMessageRef: 'other',
    }).map((e) => e.data.meta.eventId);
    expect(a).toEqual(b);
    expect(new Set(a).size).toBe(a.length);
    const other = mapHl7Message(
      Buffer.from(fixture('adt-a01-admit').toString('latin1').replace('ADT0001', 'ADT9999'), 'latin1'),
      ctx,
    );
    expect(other.kind).toBe('mapped');
    if (other.kind === 'mapped') expect(other.events.map((e) => e.data.meta.eventId)).not.toEqual(a);
  });

  it('given an A04 in v2.3 without offsets from a sender in UTC, when mapped, then times are read in that zone and the class is ambulatory', () => {
    const events = mapped('adt-a04-register');
    const enc = only(events, 'EncounterStarted');
    expect(enc.encounterClass.code).toBe('AMB');
    expect(enc.meta.occurredAt).toBe(utc('2024-03-02T08:00:00Z'));
    expect(only(events, 'PatientRegistered').demographics.names[0]?.suffix).toBe('Jr');
    expect(only(events, 'PatientRegistered').demographics.telecom[0]).toEqual({
      system: 'phone',
      value: '(217)555-0101',
      use: 'home',
      part: 'home',
    });
  });

  it('given an A05 pre-admit, when mapped, then the encounter is planned with the expected admit time', () => {
    const enc = only(mapped('adt-a05-preadmit'), 'EncounterStarted');
    expect(enc.status).toBe('planned');
    expect(enc.encounterClass.code).toBe('PRENC');
    expect(enc.admittedAt).toBe(utc('2024-03-10T07:00:00Z'));
  });

  it('given A08 and A31, when mapped, then PatientUpdated carries the new snapshot with decoded escapes', () => {
    const upd = only(mapped('adt-a08-update'), 'PatientUpdated');
    expect(upd.patientId).toBe(MRN('MRN10001'));
    expect(upd.demographics.addresses[0]?.lines).toEqual(['Corner of Main St & 5th Ave']);
    const a31 = mapped('adt-a31-update-person');
    expect(a31.map((e) => e.type)).toEqual(['PatientUpdated']);
    expect(only(a31, 'PatientUpdated').meta.occurredAt).toBe(utc('2024-03-06T15:00:00Z'));
  });

  it('given an A28, when mapped, then only PatientRegistered is emitted (no visit)', () => {
    expect(mapped('adt-a28-add-person').map((e) => e.type)).toEqual(['PatientRegistered']);
  });

  it('given an A02, when mapped, then EncounterTransferred has from PV1-6 and to PV1-3 on the admitted visit', () => {
    const admit = only(mapped('adt-a01-admit'), 'EncounterStarted');
    const t = only(mapped('adt-a02-transfer'), 'EncounterTransferred');
    expect(t.encounterId).toBe(admit.encounterId);
    expect(t.patientId).toBe(admit.patientId);
    expect(t.fromLocation).toEqual({ facility: 'GENHOSP', unit: 'WARD4', room: '401', bed: 'B' });
    expect(t.toLocation).toEqual({ facility: 'GENHOSP', unit: 'ICU', room: '1', bed: '1' });
    expect(t.transferredAt).toBe(utc('2024-03-02T12:55:00Z'));
    expect(t.encounterClass?.code).toBe('IMP');
    expect(t.hospitalService?.code).toBe('MED');
    expect(t.attendingPractitioner?.id?.value).toBe('1234');
  });

  it('given an A03, when mapped, then EncounterEnded uses PV1-45 and PV1-36', () => {
    const e = only(mapped('adt-a03-discharge'), 'EncounterEnded');
    expect(e.endedAt).toBe(utc('2024-03-05T09:30:00Z'));
    expect(e.dischargeDisposition).toEqual({
      system: 'http://terminology.hl7.org/CodeSystem/v2-0112',
      code: '01',
      display: 'Discharged to home',
      version: null,
      alternates: [],
      text: null,
    });
    // The visit's facts as they stand at discharge (PV1-2/3/7/10).
    expect(e.encounterClass?.code).toBe('IMP');
    expect(e.location).toEqual({ facility: 'GENHOSP', unit: 'ICU', room: '1', bed: '1' });
    expect(e.hospitalService?.code).toBe('MED');
    expect(e.attendingPractitioner?.name?.family).toBe('Welby');
  });

  it('given A11, A12, A13, when mapped, then the matching cancellation events are emitted', () => {
    const a11 = only(mapped('adt-a11-cancel-admit'), 'EncounterCancelled');
    expect(a11.cancelledEventType).toBe('admit');
    expect(a11.encounterId).toBe(only(mapped('adt-a05-preadmit'), 'EncounterStarted').encounterId);
    expect(a11.reason?.code).toBe('03');
    expect(a11.encounterClass?.code).toBe('PRENC');
    const a12 = only(mapped('adt-a12-cancel-transfer'), 'EncounterTransferCancelled');
    expect(a12.location?.unit).toBe('WARD4');
    expect(a12.cancelledLocation?.unit).toBe('ICU');
    expect(a12.cancelledAt).toBe(utc('2024-03-02T14:00:00Z'));
    const a13 = only(mapped('adt-a13-cancel-discharge'), 'EncounterDischargeCancelled');
    expect(a13.location?.unit).toBe('ICU');
    expect(a13.encounterId).toBe(a12.encounterId);
  });

  it('given an A40 with MRG, when mapped, then PatientsMerged names survivor and retired keys', () => {
    const m = only(mapped('adt-a40-merge'), 'PatientsMerged');
    expect(m.patientId).toBe(MRN('MRN10002'));
    expect(m.mergedPatientId).toBe(MRN('MRN10003'));
    expect(m.mergedIdentifiers).toEqual([
      { system: 'urn:hl7:authority:HOSP', value: 'MRN10003', type: 'MR' },
    ]);
    // The retired key is the one A28 registered for that MRN.
    expect(only(mapped('adt-a28-add-person'), 'PatientRegistered').patientId).toBe(m.mergedPatientId);
  });
});

describe('patient identity', () => {
  it('given the same MRN in different messages and charsets, when mapped, then the patient keys are equal', () => {
    const keys = [
      'adt-a01-admit',
      'adt-a08-update',
      'adt-a03-discharge',
      'orm-o01-new',
      'oru-r01-lab-final',
    ].map((n) => mapped(n)[0]!.data.patientId);
    expect(new Set(keys)).toEqual(new Set([MRN('MRN10001')]));
    expect(mapped('edge-latin1')[0]!.data.patientId).toBe(mapped('edge-utf8')[0]!.data.patientId);
  });

  it('given repeated PID-3 where MR is not first, when mapped, then all are kept and MR is the key', () => {
    const reg = only(mapped('edge-repeated-pid3-policy'), 'PatientRegistered');
    expect(reg.demographics.identifiers.map((i) => i.system)).toEqual([
      'urn:hl7:authority:LABSYS',
      'urn:hl7:authority:HOSP',
    ]);
    expect(reg.patientId).toBe(MRN('MRN10001'));
  });

  it('given a policy aliasing HOSP to an OID, when mapped, then identifiers use the canonical system', () => {
    const policy: IdentityPolicy = {
      enterpriseSystems: ['urn:oid:1.2.3.4'],
      authorityAliases: { HOSP: 'urn:oid:1.2.3.4' },
    };
    const reg = only(mapped('edge-repeated-pid3-policy', { ...ctx, policy }), 'PatientRegistered');
    expect(reg.demographics.identifiers[1]).toEqual({
      system: 'urn:oid:1.2.3.4',
      value: 'MRN10001',
      type: 'MR',
    });
    expect(reg.patientId).toBe(
      patientKeyFor({ system: 'urn:oid:1.2.3.4', value: 'MRN10001', type: null }, policy),
    );
  });
});

describe('orders', () => {
  it('given an ORM NW with two orders, when mapped, then two OrderPlaced with code, category, priority, provider', () => {
    const events = mapped('orm-o01-new');
    expect(events.map((e) => e.type)).toEqual(['OrderPlaced', 'OrderPlaced']);
    const [lab, rad] = events.map((e) => e.data as EventTypeMap['OrderPlaced']);
    expect(lab).toMatchObject({
      placerOrderNumber: { system: 'urn:hl7:authority:CPOE', value: 'PO1001', type: null },
      code: { system: 'http://loinc.org', code: '24323-8', display: 'Comprehensive metabolic panel' },
      category: 'laboratory',
      priority: 'stat',
      orderedAt: utc('2024-03-01T09:55:00Z'),
    });
    expect(lab!.orderingProvider?.id).toEqual({ system: 'urn:hl7:authority:NPI', value: '1234', type: null });
    expect(lab!.encounterId).toBe(only(mapped('adt-a01-admit'), 'EncounterStarted').encounterId);
    expect(rad).toMatchObject({ category: 'imaging', priority: 'routine' });
    expect(lab!.orderId).not.toBe(rad!.orderId);
  });

  it('given ORC-1 CA, SC and XO for the same order, when mapped, then cancel/status events share its order id', () => {
    const placed = mapped('orm-o01-new').map((e) => e.data as EventTypeMap['OrderPlaced']);
    const cancel = only(mapped('orm-o01-cancel'), 'OrderCancelled');
    expect(cancel.orderId).toBe(placed[1]!.orderId);
    expect(cancel.reason?.code).toBe('CLIN');
    expect(cancel.cancelledAt).toBe(utc('2024-03-01T10:59:00Z'));
    const sc = only(mapped('orm-o01-status'), 'OrderStatusChanged');
    expect(sc).toMatchObject({ orderId: placed[0]!.orderId, status: 'active', fillerStatus: 'IP' });
    const xo = only(mapped('orm-o01-change'), 'OrderStatusChanged');
    expect(xo).toMatchObject({ orderId: placed[0]!.orderId, status: 'active', fillerStatus: 'SC' });
  });

  it('given an OML^O21 with TQ1, when mapped, then OrderPlaced takes priority from TQ1-9 and is a lab order', () => {
    const o = only(mapped('oml-o21-new'), 'OrderPlaced');
    expect(o).toMatchObject({ category: 'laboratory', priority: 'asap', code: { code: '58410-2' } });
    expect(o.patientId).toBe(MRN('MRN10002'));
  });
});

describe('results', () => {
  it('given a preliminary lab ORU, when mapped, then ResultReported has every OBX value type', () => {
    const r = only(mapped('oru-r01-lab-prelim'), 'ResultReported');
    expect(r.status).toBe('preliminary');
    expect(r.category).toBe('laboratory');
    expect(r.orderId).toBe((mapped('orm-o01-new')[0]!.data as EventTypeMap['OrderPlaced']).orderId);
    expect(r.effectiveAt).toBe(utc('2024-03-01T10:30:00Z'));
    expect(r.issuedAt).toBe(utc('2024-03-01T11:00:00Z'));
    expect(r.performer?.name).toMatchObject({ family: 'Path', given: ['Paula'] });
    const [nm, lt, ratio, cwe, st] = r.observations;
    expect(nm).toMatchObject({
      valueType: 'NM',
      valueNumber: 182,
      unit: 'mg/dL',
      referenceRange: '70-99',
      status: 'preliminary',
    });
    expect(nm!.interpretation?.code).toBe('H');
    expect(nm!.interpretations).toEqual([codeOf(V2_TABLE('0078'), 'H')]);
    expect(nm!.observedAt).toBe(utc('2024-03-01T10:30:00Z'));
    // OBX-6 mg/dL^mg/dL^UCUM: the text as sent and the UCUM coding; OBX-7 70-99 as numeric bounds
    expect(nm).toMatchObject({
      unitCode: codeOf(UCUM, 'mg/dL', 'mg/dL'),
      referenceLow: 70,
      referenceHigh: 99,
    });
    // OBX-6 without a system: a unit code local to the sender, never UCUM
    expect(lt!.unitCode).toEqual(codeOf('urn:hl7:local:LIS', 'mg/dL'));
    expect(lt).toMatchObject({ valueType: 'SN', valueComparator: '<', valueNumber: 0.5 });
    expect(ratio).toMatchObject({ valueType: 'SN', valueNumber: 1, valueString: '1:128' });
    expect(cwe!.valueCode).toEqual(
      codeOf('http://snomed.info/sct', '278149003', 'Blood group A Rh(D) positive'),
    );
    expect(st).toMatchObject({ valueType: 'ST', valueString: 'Yellow' });
    // the NTE after OBX 5 annotates that observation; it is no longer folded into the report text
    expect(st!.notes).toEqual([
      { text: 'Specimen slightly hemolyzed.', source: 'L', type: null, authoredAt: null },
    ]);
    expect(r.notes).toEqual([]);
    expect(r.reportText).toBeNull();
    // the order numbers the report is based on (ORC-2 / ORC-3)
    expect(r.placerOrderNumber).toEqual({ system: 'urn:hl7:authority:CPOE', value: 'PO1001', type: null });
    expect(r.fillerOrderNumber).toEqual({ system: 'urn:hl7:authority:LIS', value: 'F5001', type: null });
    // every line has its own stable id
    expect(new Set(r.observations.map((o) => o.observationId)).size).toBe(5);
  });

  it('given preliminary, final and corrected reports of one order, when mapped, then the result id is shared and C is ResultCorrected', () => {
    const p = only(mapped('oru-r01-lab-prelim'), 'ResultReported');
    const f = only(mapped('oru-r01-lab-final'), 'ResultReported');
    const c = only(mapped('oru-r01-lab-corrected'), 'ResultCorrected');
    expect(f.status).toBe('final');
    expect(c.status).toBe('corrected');
    expect(new Set([p.resultId, f.resultId, c.resultId]).size).toBe(1);
    expect(c.observations[0]).toMatchObject({ valueNumber: 128, status: 'corrected' });
    // the corrected glucose says which value it replaces: the same observation id
    expect(c.observations[0]!.observationId).toBe(p.observations[0]!.observationId);
    expect(new Set([p.meta.eventId, f.meta.eventId, c.meta.eventId]).size).toBe(3);
  });

  it('given a radiology ORU with TX lines and FT breaks, when mapped, then report text is multi-line and category imaging', () => {
    const r = only(mapped('oru-r01-radiology'), 'ResultReported');
    expect(r.category).toBe('imaging');
    expect(r.observations.map((o) => o.valueType)).toEqual(['TX', 'TX', 'FT']);
    expect(r.observations[1]!.valueString).toBe(
      'FINDINGS: Heart size normal.\nLungs are clear. No effusion.',
    );
    expect(r.reportText).toBe(
      [
        'EXAM: Chest, 2 views.',
        'FINDINGS: Heart size normal.',
        'Lungs are clear. No effusion.',
        'IMPRESSION:',
        '1. No acute cardiopulmonary process.',
        '2. Follow-up not required.',
      ].join('\n'),
    );
    // the NTE after the impression is that observation's note, not report text
    expect(r.observations[2]!.notes.map((n) => n.text)).toEqual(['Dictated by Dr Ray; transcribed.']);
    // two TX lines with the same code and sub-id are still two observations
    expect(r.observations.map((o) => o.subId)).toEqual(['1', '1', '2']);
    expect(new Set(r.observations.map((o) => o.observationId)).size).toBe(3);
  });
});

describe('encodings and escapes', () => {
  it('given ISO-8859-1 bytes declared 8859/1 and UTF-8 declared UNICODE UTF-8, when mapped, then both decode to the same text', () => {
    const latin = only(mapped('edge-latin1'), 'PatientRegistered');
    const utf = only(mapped('edge-utf8'), 'PatientRegistered');
    expect(latin.demographics.names[0]).toMatchObject({ family: 'Müller', given: ['Zoë'] });
    expect(latin.demographics).toEqual(utf.demographics);
    expect(parseHeader(fixture('edge-latin1'))?.charset).toBe('latin1');
    expect(parseHeader(fixture('edge-utf8'))?.charset).toBe('utf8');
  });

  it('given \\n and \\r\\n terminators, when mapped, then the events equal those of \\r', () => {
    const lf = mapped('edge-lf-terminators');
    const crlf = mapped('edge-crlf-terminators');
    expect(lf.map((e) => e.data.patientId)).toEqual(crlf.map((e) => e.data.patientId));
    expect(only(lf, 'PatientRegistered').demographics.names[0]?.family).toBe('Linefeed');
  });

  it('given escape sequences, when mapped, then \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\ \\.br\\ are decoded', () => {
    const r = only(mapped('edge-escapes'), 'ResultReported');
    expect(r.observations[0]!.valueString).toBe('A|B ^ C&D ~ E\\F AB');
    expect(r.observations[1]!.valueString).toBe('Line one\nLine two bold normal');
    expect(r.observations[1]!.notes[0]!.text).toBe('Unterminated \\F escape kept');
  });

  it('given non-default delimiters in MSH-2, when mapped, then they and the escape character are honoured', () => {
    const reg = only(mapped('edge-custom-delimiters'), 'PatientRegistered');
    expect(reg.demographics.identifiers).toHaveLength(2);
    expect(reg.demographics.names[0]).toMatchObject({ family: 'Delimiter', given: ['Dora$', 'Dee'] });
    expect(parseHeader(fixture('edge-custom-delimiters'))).toMatchObject({
      fieldSeparator: '#',
      encodingCharacters: '$*!%',
    });
  });

  it('given an unknown Z-segment, when mapped, then it is ignored', () => {
    expect(mapFixture('adt-a01-admit').kind).toBe('mapped');
  });
});

describe('refusals', () => {
  const cases: [string, 'AE' | 'AR', string, object | undefined][] = [
    ['bad-no-pid3', 'AE', '101', { segment: 'PID', segmentSequence: 1, field: 3 }],
    ['bad-no-obr4', 'AE', '101', { segment: 'OBR', segmentSequence: 1, field: 4 }],
    // A required segment that is missing is a segment sequence error (table 0357: 100).
    ['bad-no-pv1', 'AE', '100', { segment: 'PV1', segmentSequence: 1 }],
    ['bad-no-pv1-19', 'AE', '101', { segment: 'PV1', segmentSequence: 1, field: 19 }],
    ['bad-a40-no-mrg', 'AE', '100', { segment: 'MRG', segmentSequence: 1 }],
    ['bad-date', 'AE', '102', { segment: 'PID', segmentSequence: 1, field: 7 }],
    ['bad-number', 'AE', '102', { segment: 'OBX', segmentSequence: 1, field: 5 }],
    ['bad-order-control', 'AE', '103', { segment: 'ORC', segmentSequence: 1, field: 1 }],
    ['bad-no-msh10', 'AR', '101', { segment: 'MSH', segmentSequence: 1, field: 10 }],
    ['bad-unsupported-type', 'AR', '200', { segment: 'MSH', segmentSequence: 1, field: 9, component: 1 }],
    ['bad-unsupported-trigger', 'AR', '201', { segment: 'MSH', segmentSequence: 1, field: 9, component: 2 }],
    ['bad-unsupported-version', 'AR', '203', { segment: 'MSH', segmentSequence: 1, field: 12 }],
    ['bad-charset', 'AR', '102', { segment: 'MSH', segmentSequence: 1, field: 18 }],
    ['bad-unparseable', 'AR', '100', undefined],
  ];
  it.each(cases)('given %s, when mapped, then %s %s at the location', (name, ack, code, location) => {
    const out = refusal(name);
    expect(out.refusal.ack).toBe(ack);
    expect(out.refusal.hl7ErrorCode).toBe(code);
    expect(out.refusal.location).toEqual(location);
    expect(out.refusal.error.code).toBe('HUB_INPUT_INVALID');
  });

  it('given a content error, when refused, then the header is still there for the ACK', () => {
    expect(refusal('bad-no-pid3').header).toMatchObject({
      controlId: 'BAD0001',
      messageCode: 'ADT',
      triggerEvent: 'A04',
    });
    expect(refusal('bad-no-msh10').header).toMatchObject({ controlId: '', version: '2.5.1' });
    expect(refusal('bad-unparseable').header).toBeNull();
  });

  it('given refusals, when their messages are read, then they name fields and never values', () => {
    const phi = ['Testpatient', 'Jane', 'MRN10001', '19801345', '1O2', 'Nobody', 'EBCDIC', 'A60', 'SIU'];
    for (const [name] of cases) {
      const { error } = refusal(name).refusal;
      for (const v of phi) expect(`${error.message} ${JSON.stringify(error.details)}`).not.toContain(v);
    }
  });
});

describe('every mapped fixture', () => {
  it('given the corpus, when mapped, then every event matches its Avro contract', () => {
    const names = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.hl7') && !f.startsWith('bad-'))
      .map((f) => f.slice(0, -'.hl7'.length));
    expect(names.length).toBeGreaterThan(20);
    for (const name of names) {
      for (const e of mapped(name)) expect(invalidPaths(e.type, e.data)).toEqual([]);
    }
  });
});

describe('edge rules', () => {
  const msg = (...segs: string[]) => Buffer.from(segs.join('\r'), 'utf8');
  const MSH = (type: string, extra = '') =>
    `MSH|^~\\&|EHR|GENHOSP|HUB|HUB|20240301101500+0100||${type}|X1|P|2.5.1${extra}`;
  const refused = (b: Buffer, c: MapContext = ctx) => {
    const out = mapHl7Message(b, c);
    if (out.kind !== 'refused') throw new Error('expected a refusal');
    return out.refusal;
  };

  it('given an A40 whose MRG names the surviving patient, when mapped, then AE 102 at MRG-1', () => {
    const r = refused(
      msg(MSH('ADT^A40'), 'EVN|A40|20240301101500+0100', 'PID|1||M1^^^HOSP^MR||Doe^Jo', 'MRG|M1^^^HOSP^MR'),
    );
    expect(r).toMatchObject({ ack: 'AE', hl7ErrorCode: '102', location: { segment: 'MRG', field: 1 } });
  });

  it('given an A01 without PV1-2, when mapped, then AE 101 at PV1-2', () => {
    const r = refused(
      msg(
        MSH('ADT^A01'),
        'EVN|A01|20240301101500+0100',
        'PID|1||M1^^^HOSP^MR||Doe^Jo',
        `PV1|1||W^1^1${'|'.repeat(16)}V1^^^HOSP^VN`,
      ),
    );
    expect(r).toMatchObject({ ack: 'AE', hl7ErrorCode: '101', location: { segment: 'PV1', field: 2 } });
  });

  it('given no MSH-7 and no EVN time (v2.3: both optional), when a time is needed, then AE 101 at MSH-7', () => {
    const b = msg(
      'MSH|^~\\&|EHR|GENHOSP|HUB|HUB|||ADT^A28|X1|P|2.3',
      'EVN|A28',
      'PID|1||M1^^^HOSP^MR||Doe^Jo',
      'PV1|1|N',
    );
    expect(refused(b)).toMatchObject({
      ack: 'AE',
      hl7ErrorCode: '101',
      location: { segment: 'MSH', field: 7 },
    });
  });

  it('given an ORU with empty OBR-25, when mapped, then the status is derived from OBX-11', () => {
    const out = mapHl7Message(
      msg(
        MSH('ORU^R01'),
        'PID|1||M1^^^HOSP^MR||Doe^Jo',
        'OBR|1||F1|C1^Panel^L',
        'OBX|1|NM|A^A^L||1||||||F',
        'OBX|2|NM|B^B^L||2||||||F',
      ),
      ctx,
    );
    expect(
      out.kind === 'mapped' && out.events[0]?.type === 'ResultReported' && out.events[0].data.status,
    ).toBe('final');
  });

  it('given an ORU for two patients, when mapped, then each report is keyed by its own PID', () => {
    const out = mapHl7Message(
      msg(
        MSH('ORU^R01'),
        'PID|1||M1^^^HOSP^MR||Doe^Jo',
        'OBR|1||F1|C1^Panel^L|||||||||||||||||||||F',
        'OBX|1|NM|A^A^L||1||||||F',
        'PID|2||M2^^^HOSP^MR||Roe^Al',
        'OBR|1||F2|C1^Panel^L|||||||||||||||||||||P',
        'OBX|1|NM|A^A^L||2||||||P',
      ),
      ctx,
    );
    if (out.kind !== 'mapped') throw new Error('expected mapped');
    expect(out.events.map((e) => e.data.patientId)).toEqual([MRN('M1'), MRN('M2')]);
  });

  it('given an SN with a bad comparator, when mapped, then AE 102 at OBX-5.1', () => {
    const r = refused(
      msg(
        MSH('ORU^R01'),
        'PID|1||M1^^^HOSP^MR||Doe^Jo',
        'OBR|1||F1|C1^P^L|||||||||||||||||||||F',
        'OBX|1|SN|A^A^L||>>^5||||||F',
      ),
    );
    expect(r).toMatchObject({
      ack: 'AE',
      hl7ErrorCode: '102',
      location: { segment: 'OBX', field: 5, component: 1 },
    });
  });

  it('given a v2.7 MSH-2 with the truncation character, when mapped, then it is accepted', () => {
    const b = Buffer.from(
      [
        'MSH|^~\\&#|EHR|GENHOSP|HUB|HUB|20240301101500||ADT^A28|X1|P|2.7',
        'EVN|A28|20240301101500',
        'PID|1||M1^^^HOSP^MR||Doe^Jo',
        'PV1|1|N',
      ].join('\r'),
    );
    const out = mapHl7Message(b, ctx);
    expect(out.kind).toBe('mapped');
    expect(out.header?.encodingCharacters).toBe('^~\\&#');
  });

  it('given anything that throws inside the mapper, when mapped, then AR 207 with the header and no PHI', () => {
    const exploding = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('boom with Testpatient inside');
        },
      },
    );
    const out = mapHl7Message(fixture('adt-a28-add-person'), {
      ...ctx,
      policy: { enterpriseSystems: [], authorityAliases: exploding },
    });
    if (out.kind !== 'refused') throw new Error('expected a refusal');
    expect(out.refusal).toMatchObject({ ack: 'AR', hl7ErrorCode: '207' });
    expect(out.header?.controlId).toBe('ADT0005');
    expect(out.refusal.error.message).not.toContain('Testpatient');
    expect(out.refusal.error.cause).toBeUndefined();
  });
});
