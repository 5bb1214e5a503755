import { createHash } from 'node:crypto';
import {
  codeOf,
  deterministicEventId,
  noObservationDetail,
  type ClinicalEvent,
  type Demographics,
  type EventMeta,
  type ObservationValue,
} from '../../libs/events/index.js';

/**
 * A scripted hospital day (made-up patients only), and a generator of many
 * such days for replay tests and benchmarks. Times are UTC.
 */
export const DAY = Date.UTC(2026, 2, 2);
export const at = (h: number, m = 0, dayOffset = 0) => DAY + dayOffset * 86_400_000 + (h * 60 + m) * 60_000;

const SOURCES = { adt: 'EHR-ADT', lab: 'LAB-LIS', rad: 'RIS', reg: 'EHR-REG' } as const;

export function meta(system: string, messageId: string, type: string, occurredAt: number): EventMeta {
  return {
    eventId: deterministicEventId([system, 'GENHOSP', messageId, type]),
    eventType: type,
    occurredAt,
    recordedAt: occurredAt + 30_000,
    source: { system, facility: 'GENHOSP', messageId },
    correlationId: messageId,
    causationId: null,
    rawMessageRef: null,
    sourceTimes: [],
  };
}

export function registered(
  pid: string,
  family: string,
  given: string,
  msg: string,
  t: number,
): ClinicalEvent {
  return {
    type: 'PatientRegistered',
    data: {
      meta: meta(SOURCES.reg, msg, 'PatientRegistered', t),
      patientId: pid,
      demographics: {
        identifiers: [{ system: 'urn:oid:2.16.840.1.113883.3.999.1', value: `MRN-${pid}`, type: 'MR' }],
        names: [{ family, given: [given], prefix: null, suffix: null, use: 'official' }],
        birthDate: '1970-05-17',
        administrativeGender: 'female',
        deceased: null,
        deceasedAt: null,
        addresses: [
          {
            lines: ['1 Test Street'],
            city: 'Testville',
            state: 'TS',
            postalCode: '00000',
            country: 'US',
            use: 'home',
            type: null,
          },
        ],
        telecom: [{ system: 'phone', value: '555-0100', use: 'home', part: null }],
        race: [],
        ethnicity: [],
        religion: null,
        contacts: [],
        primaryCareProvider: null,
        maritalStatus: null,
        language: null,
        notSent: [],
        cleared: [],
      },
    },
  };
}

export function merged(survivor: string, retired: string, msg: string, t: number): ClinicalEvent {
  return {
    type: 'PatientsMerged',
    data: {
      meta: meta(SOURCES.reg, msg, 'PatientsMerged', t),
      patientId: survivor,
      mergedPatientId: retired,
      mergedIdentifiers: [
        { system: 'urn:oid:2.16.840.1.113883.3.999.1', value: `MRN-${retired}`, type: 'MR' },
      ],
      mergedNames: [],
      mergedAccountNumber: null,
      mergedVisitNumber: null,
      mergedDemographics: null,
    },
  };
}

const CLASS = {
  inpatient: codeOf('http://terminology.hl7.org/CodeSystem/v3-ActCode', 'IMP', 'inpatient encounter'),
  emergency: codeOf('http://terminology.hl7.org/CodeSystem/v3-ActCode', 'EMER', 'emergency'),
  outpatient: codeOf('http://terminology.hl7.org/CodeSystem/v3-ActCode', 'AMB', 'ambulatory'),
} as const;

export function admitted(
  pid: string,
  eid: string,
  cls: keyof typeof CLASS,
  unit: string,
  msg: string,
  t: number,
  payer: string | null = null,
): ClinicalEvent {
  return {
    type: 'EncounterStarted',
    data: {
      meta: meta(SOURCES.adt, msg, 'EncounterStarted', t),
      patientId: pid,
      encounterId: eid,
      visitNumber: { system: 'urn:genhosp:visit', value: eid, type: 'VN' },
      encounterClass: CLASS[cls],
      status: 'in-progress',
      location: { facility: 'GENHOSP', unit, room: '101', bed: 'A' },
      hospitalService: codeOf('HL7-0069', cls === 'emergency' ? 'EM' : 'MED', null),
      attendingPractitioner: null,
      admittedAt: t,
      payer,
      admitReason: null,
      admitSource: null,
      admissionType: null,
      dischargeDisposition: null,
    },
  };
}

export function transferred(
  pid: string,
  eid: string,
  from: string,
  to: string,
  msg: string,
  t: number,
): ClinicalEvent {
  return {
    type: 'EncounterTransferred',
    data: {
      meta: meta(SOURCES.adt, msg, 'EncounterTransferred', t),
      patientId: pid,
      encounterId: eid,
      fromLocation: { facility: 'GENHOSP', unit: from, room: null, bed: null },
      toLocation: { facility: 'GENHOSP', unit: to, room: '7', bed: 'B' },
      transferredAt: t,
      encounterClass: null,
      hospitalService: null,
      attendingPractitioner: null,
    },
  };
}

export function discharged(pid: string, eid: string, msg: string, t: number): ClinicalEvent {
  return {
    type: 'EncounterEnded',
    data: {
      meta: meta(SOURCES.adt, msg, 'EncounterEnded', t),
      patientId: pid,
      encounterId: eid,
      endedAt: t,
      dischargeDisposition: codeOf('HL7-0112', '01', 'home'),
      encounterClass: null,
      hospitalService: null,
      attendingPractitioner: null,
      location: null,
    },
  };
}

export function admissionCancelled(pid: string, eid: string, msg: string, t: number): ClinicalEvent {
  return {
    type: 'EncounterCancelled',
    data: {
      meta: meta(SOURCES.adt, msg, 'EncounterCancelled', t),
      patientId: pid,
      encounterId: eid,
      reason: null,
      cancelledEventType: 'admit',
      encounterClass: null,
    },
  };
}

const TESTS = {
  cbc: codeOf('http://loinc.org', '58410-2', 'CBC panel'),
  xrchest: codeOf('http://loinc.org', '36643-5', 'XR Chest 2 Views'),
  trop: codeOf('http://loinc.org', '89579-7', 'Troponin I hs'),
  lipid: codeOf('http://loinc.org', '57698-3', 'Lipid panel'),
  cmp: codeOf('http://loinc.org', '24323-8', 'CMP'),
  a1c: codeOf('http://loinc.org', '4548-4', 'Hemoglobin A1c'),
  tsh: codeOf('http://loinc.org', '3016-3', 'TSH'),
  bmp: codeOf('http://loinc.org', '51990-0', 'BMP'),
  custom: codeOf('urn:genhosp:local', 'XYZ-1', 'Local send-out test'),
} as const;
export type TestName = keyof typeof TESTS;

export function ordered(
  pid: string,
  oid: string,
  eid: string | null,
  test: TestName,
  priority: string,
  msg: string,
  t: number,
): ClinicalEvent {
  return {
    type: 'OrderPlaced',
    data: {
      meta: meta(SOURCES.adt, msg, 'OrderPlaced', t),
      patientId: pid,
      orderId: oid,
      placerOrderNumber: { system: 'urn:genhosp:placer', value: oid, type: null },
      fillerOrderNumber: null,
      encounterId: eid,
      code: TESTS[test],
      category: test === 'xrchest' ? 'imaging' : 'laboratory',
      priority,
      orderedAt: t,
      orderingProvider: null,
      placerGroupNumber: null,
      specimens: [],
      notes: [],
      reasons: [],
      orderStatus: null,
    },
  };
}

export function orderCancelled(pid: string, oid: string, msg: string, t: number): ClinicalEvent {
  return {
    type: 'OrderCancelled',
    data: {
      meta: meta(SOURCES.adt, msg, 'OrderCancelled', t),
      patientId: pid,
      orderId: oid,
      reason: null,
      cancelledAt: t,
      placerOrderNumber: null,
      fillerOrderNumber: null,
    },
  };
}

export function obs(
  code: string,
  display: string,
  value: number,
  unit: string,
  flag: string | null,
  status: string,
) {
  const o: ObservationValue = {
    sequence: 1,
    code: codeOf('http://loinc.org', code, display),
    valueType: 'NM',
    valueNumber: value,
    valueString: null,
    valueCode: null,
    valueComparator: null,
    unit,
    referenceRange: null,
    interpretation: flag ? codeOf('HL7-0078', flag, null) : null,
    status,
    observedAt: null,
    attachment: null,
    ...noObservationDetail(),
  };
  return o;
}

export function resulted(
  pid: string,
  rid: string,
  oid: string | null,
  eid: string | null,
  test: TestName,
  status: 'preliminary' | 'final' | 'corrected',
  msg: string,
  t: number,
  observations: ObservationValue[],
  reportText: string | null = null,
): ClinicalEvent {
  const common = {
    meta: meta(
      test === 'xrchest' ? SOURCES.rad : SOURCES.lab,
      msg,
      status === 'corrected' ? 'ResultCorrected' : 'ResultReported',
      t,
    ),
    patientId: pid,
    resultId: rid,
    orderId: oid,
    encounterId: eid,
    code: TESTS[test],
    category: test === 'xrchest' ? 'imaging' : 'laboratory',
    status,
    effectiveAt: t - 600_000,
    issuedAt: t,
    observations,
    reportText,
    performer: null,
    notes: [],
    specimens: [],
    placerOrderNumber: null,
    fillerOrderNumber: null,
    orderCode: null,
  };
  return status === 'corrected'
    ? { type: 'ResultCorrected', data: { ...common, correctionReason: 'recalibrated analyser' } }
    : { type: 'ResultReported', data: common };
}

/**
 * The scripted day, in the order the sources sent it. Ids: P = patient,
 * E = encounter, O = order, R = result.
 */
export function hospitalDay(): ClinicalEvent[] {
  const hgb = (v: number, st: string) => obs('718-7', 'Hemoglobin', v, 'g/dL', 'L', st);
  return [
    registered('P1', 'Alpha', 'Ann', 'reg-1', at(7, 0)),
    registered('P2', 'Bravo', 'Ben', 'reg-2', at(7, 5)),
    registered('P3', 'Charlie', 'Cat', 'reg-3', at(7, 10)),
    registered('P4', 'Charlie', 'Catherine', 'reg-4', at(7, 15)),
    // P1: inpatient, transferred to ICU, discharged next morning.
    admitted('P1', 'E1', 'inpatient', '4WEST', 'adt-1', at(8, 0), 'ACME Health'),
    ordered('P1', 'O1', 'E1', 'cbc', 'stat', 'orm-1', at(8, 30)),
    resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'preliminary', 'oru-1', at(9, 0), [hgb(9.8, 'preliminary')]),
    ordered('P1', 'O2', 'E1', 'xrchest', 'routine', 'orm-2', at(9, 0)),
    resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'final', 'oru-2', at(9, 20), [hgb(10.1, 'final')]),
    // P2: ED visit; a result arrives before its order (the LIS was faster than the order feed).
    admitted('P2', 'E2', 'emergency', 'ED', 'adt-2', at(9, 0), 'Medicare'),
    resulted('P2', 'R3', 'O3', 'E2', 'trop', 'final', 'oru-3', at(10, 5), [
      obs('89579-7', 'Troponin I', 4, 'ng/L', 'N', 'final'),
    ]),
    ordered('P2', 'O3', 'E2', 'trop', 'stat', 'orm-3', at(9, 10)),
    ordered('P2', 'O6', 'E2', 'lipid', 'routine', 'orm-6', at(9, 15)),
    orderCancelled('P2', 'O6', 'orm-6c', at(9, 40)),
    ordered('P2', 'O9', 'E2', 'bmp', 'routine', 'orm-9', at(9, 20)),
    resulted('P2', 'R12', 'O9', 'E2', 'bmp', 'preliminary', 'oru-12', at(10, 30), [
      obs('2951-2', 'Sodium', 139, 'mmol/L', null, 'preliminary'),
    ]),
    resulted('P2', 'R9', 'O-UNKNOWN', 'E2', 'cmp', 'final', 'oru-9', at(11, 0), [
      obs('2160-0', 'Creatinine', 1.9, 'mg/dL', 'H', 'final'),
    ]),
    // P3: an admission entered in error and cancelled, with an order on it.
    admitted('P3', 'E3', 'inpatient', '5EAST', 'adt-3', at(11, 0)),
    ordered('P3', 'O7', 'E3', 'cmp', 'routine', 'orm-7', at(11, 10)),
    resulted('P1', 'R1', 'O1', 'E1', 'cbc', 'corrected', 'oru-1c', at(11, 0), [hgb(10.4, 'corrected')]),
    admissionCancelled('P3', 'E3', 'adt-3c', at(11, 30)),
    // P4 (a duplicate record of P3): clinic visit, later merged into P3.
    admitted('P4', 'E4', 'outpatient', 'CLINIC', 'adt-4', at(12, 0), 'BlueCross'),
    ordered('P4', 'O4', 'E4', 'a1c', 'routine', 'orm-4', at(12, 10)),
    resulted(
      'P1',
      'R2',
      'O2',
      'E1',
      'xrchest',
      'final',
      'oru-r2',
      at(12, 0),
      [],
      'No acute cardiopulmonary process.',
    ),
    resulted('P4', 'R4', 'O4', 'E4', 'a1c', 'final', 'oru-4', at(13, 0), [
      obs('4548-4', 'HbA1c', 7.9, '%', 'H', 'final'),
    ]),
    discharged('P2', 'E2', 'adt-2d', at(13, 30)),
    merged('P3', 'P4', 'mrg-1', at(13, 45)),
    // After the merge the sender still uses the retired id: it must land on P3.
    ordered('P4', 'O5', 'E4', 'tsh', 'routine', 'orm-5', at(14, 0)),
    transferred('P1', 'E1', '4WEST', 'ICU', 'adt-1t', at(14, 0)),
    discharged('P4', 'E4', 'adt-4d', at(15, 0)),
    // P5: the admission arrives before the registration.
    admitted('P5', 'E5', 'inpatient', '3NORTH', 'adt-5', at(16, 0), null),
    registered('P5', 'Echo', 'Eve', 'reg-5', at(16, 5)),
    ordered('P5', 'O8', 'E5', 'custom', 'routine', 'orm-8', at(16, 30)),
    discharged('P1', 'E1', 'adt-1d', at(10, 0, 1)),
  ];
}

/** The topic (catalog aggregate) an event belongs to. */
export function aggregateOf(
  e: ClinicalEvent,
): 'patient' | 'encounter' | 'order' | 'result' | 'attachment' | 'identity' {
  switch (e.type) {
    case 'PatientRegistered':
    case 'PatientUpdated':
    case 'PatientsMerged':
    case 'AllergyRecorded':
    case 'CoverageRecorded':
      return 'patient';
    case 'EncounterStarted':
    case 'EncounterTransferred':
    case 'EncounterEnded':
    case 'EncounterCancelled':
    case 'EncounterTransferCancelled':
    case 'EncounterDischargeCancelled':
    case 'DiagnosisRecorded':
      return 'encounter';
    case 'OrderPlaced':
    case 'OrderCancelled':
    case 'OrderStatusChanged':
      return 'order';
    case 'ResultReported':
    case 'ResultCorrected':
      return 'result';
    case 'AttachmentStored':
      return 'attachment';
    case 'PatientLinkProposed':
    case 'PatientsLinked':
    case 'PatientsUnlinked':
    case 'PatientLinkRejected':
      return 'identity';
  }
}

/** A small deterministic PRNG (mulberry32), so generated days are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Roughly `n` events of synthetic hospital activity: per patient a
 * registration, a visit with transfer/discharge, orders with preliminary,
 * final and sometimes corrected results; a few cancellations and merges.
 */
export function syntheticEvents(n: number, seed = 42): ClinicalEvent[] {
  const r = rng(seed);
  const out: ClinicalEvent[] = [];
  const units = ['4WEST', '5EAST', 'ICU', 'ED', 'CLINIC', '3NORTH'];
  const tests: TestName[] = ['cbc', 'xrchest', 'trop', 'lipid', 'cmp', 'a1c', 'tsh', 'bmp'];
  for (let i = 0; out.length < n; i++) {
    const pid = `S${seed}-P${i}`;
    const day = Math.floor(r() * 90);
    const t0 = at(6 + Math.floor(r() * 12), Math.floor(r() * 60), day);
    out.push(registered(pid, `Synth${i}`, 'Test', `s-reg-${i}`, t0));
    const eid = `S${seed}-E${i}`;
    const cls = r() < 0.5 ? 'inpatient' : r() < 0.5 ? 'emergency' : 'outpatient';
    const unit = cls === 'emergency' ? 'ED' : units[Math.floor(r() * units.length)]!;
    out.push(admitted(pid, eid, cls, unit, `s-adt-${i}`, t0 + 600_000, r() < 0.7 ? 'ACME Health' : null));
    const nOrders = 1 + Math.floor(r() * 3);
    for (let k = 0; k < nOrders; k++) {
      const oid = `S${seed}-O${i}-${k}`;
      const rid = `S${seed}-R${i}-${k}`;
      const test = tests[Math.floor(r() * tests.length)]!;
      const to = t0 + 1_200_000 + k * 60_000;
      out.push(ordered(pid, oid, eid, test, r() < 0.2 ? 'stat' : 'routine', `s-orm-${i}-${k}`, to));
      if (r() < 0.05) {
        out.push(orderCancelled(pid, oid, `s-ormc-${i}-${k}`, to + 300_000));
        continue;
      }
      const v = 5 + r() * 10;
      const flag = v > 13 ? 'H' : v < 7 ? 'L' : 'N';
      out.push(
        resulted(pid, rid, oid, eid, test, 'preliminary', `s-oru-p-${i}-${k}`, to + 1_800_000, [
          obs('718-7', 'Hgb', v, 'g/dL', flag, 'preliminary'),
        ]),
      );
      out.push(
        resulted(
          pid,
          rid,
          oid,
          eid,
          test,
          'final',
          `s-oru-f-${i}-${k}`,
          to + 3_600_000 + Math.floor(r() * 7_200_000),
          [obs('718-7', 'Hgb', v, 'g/dL', flag, 'final')],
        ),
      );
      if (r() < 0.1)
        out.push(
          resulted(pid, rid, oid, eid, test, 'corrected', `s-oru-c-${i}-${k}`, to + 14_400_000, [
            obs('718-7', 'Hgb', v + 0.3, 'g/dL', flag, 'corrected'),
          ]),
        );
    }
    if (r() < 0.3) out.push(transferred(pid, eid, unit, 'ICU', `s-tr-${i}`, t0 + 7_200_000));
    if (r() < 0.03) out.push(admissionCancelled(pid, eid, `s-can-${i}`, t0 + 7_300_000));
    else if (r() < 0.9)
      out.push(discharged(pid, eid, `s-dis-${i}`, t0 + 3_600_000 * (2 + Math.floor(r() * 100))));
    if (i > 0 && r() < 0.02) out.push(merged(pid, `S${seed}-P${i - 1}`, `s-mrg-${i}`, t0 + 8_000_000));
  }
  return out;
}

export function transferCancelled(
  pid: string,
  eid: string,
  backTo: string,
  msg: string,
  t: number,
): ClinicalEvent {
  return {
    type: 'EncounterTransferCancelled',
    data: {
      meta: meta(SOURCES.adt, msg, 'EncounterTransferCancelled', t),
      patientId: pid,
      encounterId: eid,
      location: { facility: 'GENHOSP', unit: backTo, room: null, bed: null },
      cancelledLocation: null,
      cancelledAt: t,
    },
  };
}

export function dischargeCancelled(pid: string, eid: string, msg: string, t: number): ClinicalEvent {
  return {
    type: 'EncounterDischargeCancelled',
    data: {
      meta: meta(SOURCES.adt, msg, 'EncounterDischargeCancelled', t),
      patientId: pid,
      encounterId: eid,
      location: null,
      cancelledAt: t,
    },
  };
}

/**
 * An HL7-style partial update of a patient registered with `registered()`: `change` replaces
 * fields of that snapshot, and its notSent / cleared name the fields left out or deleted.
 */
export function demographicsUpdated(
  pid: string,
  msg: string,
  t: number,
  change: Partial<Demographics>,
): ClinicalEvent {
  const r = registered(pid, 'Unused', 'Unused', msg, t);
  if (r.type !== 'PatientRegistered') throw new Error('unreachable');
  return {
    type: 'PatientUpdated',
    data: {
      ...r.data,
      meta: meta(SOURCES.reg, msg, 'PatientUpdated', t),
      demographics: { ...r.data.demographics, ...change },
    },
  };
}

/**
 * An attachment (e.g. a PDF report) as the HL7 adapter lifts it out of an ED
 * observation: the AttachmentStored event, and the observation of a report
 * that refers to it.
 */
export function attachment(
  pid: string,
  msg: string,
  t: number,
  data: Buffer,
  contentType = 'application/pdf',
  title = 'Report PDF',
): { stored: ClinicalEvent; observation: ObservationValue } {
  const sha256 = createHash('sha256').update(data).digest('hex');
  return {
    stored: {
      type: 'AttachmentStored',
      data: {
        meta: {
          ...meta(SOURCES.lab, msg, 'AttachmentStored', t),
          eventId: deterministicEventId(['attachment', pid, sha256]),
        },
        patientId: pid,
        sha256,
        size: data.length,
        contentType,
        data,
      },
    },
    observation: {
      ...obs('11502-2', title, 0, '', null, 'final'),
      valueType: 'ED',
      valueNumber: null,
      unit: null,
      attachment: { sha256, size: data.length, contentType, title },
    },
  };
}
