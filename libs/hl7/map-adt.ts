import type { ClinicalEvent, Code, HumanName, Identifier } from '../events/index.js';
import { encounterClassFor, V2_TABLE } from './codes.js';
import { clinicalEvents, optionalEncounterId } from './map-adt-clinical.js';
import { patientDemographics } from './map-adt-patient.js';
import { loc, refuse, type Seg } from './message.js';
import { instantOf, type MapScope } from './scope.js';

export const ADT_TRIGGERS = [
  'A01',
  'A02',
  'A03',
  'A04',
  'A05',
  'A08',
  'A11',
  'A12',
  'A13',
  'A28',
  'A31',
  'A40',
] as const;
type AdtTrigger = (typeof ADT_TRIGGERS)[number];

function isAdtTrigger(t: string): t is AdtTrigger {
  return (ADT_TRIGGERS as readonly string[]).includes(t);
}

/** The patient every ADT trigger but A40 is about: its PID and the enterprise patient PID-3 names. */
interface AdtPatient {
  pid: Seg;
  patientId: string;
  identifiers: Identifier[];
}

/**
 * ADT → patient and encounter events. Messages that register a patient or
 * start a visit (A01/A04/A05/A28) also emit PatientRegistered with the full
 * PID snapshot (with PD1-4 and NK1), and A08/A31 emit PatientUpdated, so the
 * patient read models get demographics whatever order the patient and
 * encounter topics are read in. Visit-only events (A02/A03/A11/A12/A13) do not
 * repeat the demographics.
 *
 * DG1, AL1 and IN1/IN2 become DiagnosisRecorded, AllergyRecorded and
 * CoverageRecorded after those events for every trigger whose standard
 * structure carries them: ADT_A01 (A01, A04, A08, A13), ADT_A05 (A05, A28,
 * A31) and ADT_A03 (A03). A02 (ADT_A02), A11 (ADT_A09), A12 (ADT_A12) and A40
 * do not map them: their structures have no AL1/IN1, and a cancel restates
 * nothing.
 *
 * Each mapper below reads the message in the order the refusals are checked
 * and the events' metas are made: a meta's place in that order is part of
 * its deterministic event id.
 */
export function mapAdt(scope: MapScope, trigger: string): ClinicalEvent[] {
  if (!isAdtTrigger(trigger)) {
    throw refuse('AR', '201', 'MSH-9.2 trigger event is not supported for ADT', loc(scope.msg.msh, 9, 2));
  }
  if (trigger === 'A40') return mapMerge(scope);
  const pid = scope.requireSegment('PID');
  const patient: AdtPatient = { pid, ...scope.patient(pid) };
  const withClinical = (events: ClinicalEvent[]): ClinicalEvent[] => [
    ...events,
    ...clinicalEvents(scope, { patientId: patient.patientId, encounterId: optionalEncounterId(scope, pid) }),
  ];
  switch (trigger) {
    case 'A01':
    case 'A04':
    case 'A05':
      return withClinical(mapVisitStart(scope, patient, trigger));
    case 'A28':
      return withClinical([demographicsEvent(scope, patient, 'PatientRegistered')]);
    case 'A08':
    case 'A31':
      return withClinical([demographicsEvent(scope, patient, 'PatientUpdated')]);
    case 'A02':
      return [encounterTransferred(scope, patient)];
    case 'A03':
      return withClinical([encounterEnded(scope, patient)]);
    case 'A11':
      return [encounterCancelled(scope, patient)];
    case 'A12':
      return [transferCancelled(scope, patient)];
    case 'A13':
      return withClinical([dischargeCancelled(scope, patient)]);
    default: {
      const unreachable: never = trigger;
      return unreachable;
    }
  }
}

/** The full PID snapshot, as PatientRegistered or PatientUpdated. */
function demographicsEvent(
  scope: MapScope,
  { pid, patientId, identifiers }: AdtPatient,
  type: 'PatientRegistered' | 'PatientUpdated',
): ClinicalEvent {
  const occurredAt = scope.eventTime();
  const data = {
    meta: scope.meta(type, occurredAt, { 'demographics.deceasedAt': scope.time(pid, 29) }),
    patientId,
    demographics: patientDemographics(scope, pid, identifiers),
  };
  return type === 'PatientRegistered' ? { type, data } : { type, data };
}

/**
 * PV1-2 patient class as FHIR Encounter.class (v3 ActCode), the v2 code kept as an alternate
 * coding (R and O both become AMB); null when PV1-2 is empty (only A01/A04/A05 require it).
 */
function patientClass(visitSeg: Seg): Code | null {
  const sent = visitSeg.get(2);
  if (sent === '') return null;
  const cls = encounterClassFor(sent);
  if (cls.system === V2_TABLE('0004')) return cls;
  return { ...cls, alternates: [{ system: V2_TABLE('0004'), code: sent, display: null, version: null }] };
}

/** The visit PV1 names (PV1-19, else PID-18): AE 101 when PV1 or the visit number is missing. */
function visitOf(scope: MapScope, pid: Seg): { visitSeg: Seg; encounterId: string } {
  const visitSeg = scope.requireSegment('PV1');
  const { encounterId } = scope.requireVisit(visitSeg, pid);
  return { visitSeg, encounterId };
}

/** A01/A04/A05: the patient's demographics, then EncounterStarted (planned for a pre-admit). */
function mapVisitStart(
  scope: MapScope,
  patient: AdtPatient,
  trigger: 'A01' | 'A04' | 'A05',
): ClinicalEvent[] {
  // PV1 is checked before the demographics are read: when both are wrong, the missing PV1 is the refusal the sender gets.
  const visitSeg = scope.requireSegment('PV1');
  const registered = demographicsEvent(scope, patient, 'PatientRegistered');
  const { visit, encounterId } = scope.requireVisit(visitSeg, patient.pid);
  const pv1_2 = scope.requireField(visitSeg, 2, 1, 'patient class');
  const admitted = scope.time(visitSeg, 44);
  const evn = scope.msg.first('EVN');
  const occurredAt = scope.time(evn, 6) ?? admitted ?? scope.eventTime();
  // A pre-admit (A05) has no admission time until PV1-44 says so.
  const admittedAt = trigger === 'A05' ? admitted : (admitted ?? occurredAt);
  const in1 = scope.msg.first('IN1');
  const started: ClinicalEvent = {
    type: 'EncounterStarted',
    data: {
      meta: scope.meta('EncounterStarted', occurredAt, { admittedAt }),
      patientId: patient.patientId,
      encounterId,
      visitNumber: visit,
      encounterClass: patientClass(visitSeg) ?? encounterClassFor(pv1_2),
      status: trigger === 'A05' ? 'planned' : 'in-progress',
      location: scope.location(visitSeg, 3),
      hospitalService: scope.tableCode(visitSeg, 10, '0069'),
      attendingPractitioner: scope.practitioner(visitSeg, 7),
      admittedAt: instantOf(admittedAt),
      payer: in1 ? in1.get(4, 1) || in1.get(2, 1) || null : null,
      admitReason: scope.codeOrText(scope.msg.first('PV2'), 3),
      admitSource: scope.tableCode(visitSeg, 14, '0023'),
      admissionType: scope.tableCode(visitSeg, 4, '0007'),
      dischargeDisposition: scope.tableCode(visitSeg, 36, '0112'),
    },
  };
  return [registered, started];
}

/** A02: the new location (PV1-3, required) and the one left (PV1-6). */
function encounterTransferred(scope: MapScope, { pid, patientId }: AdtPatient): ClinicalEvent {
  const { visitSeg, encounterId } = visitOf(scope, pid);
  const toLocation = scope.location(visitSeg, 3);
  if (!toLocation) {
    throw refuse(
      'AE',
      '101',
      'required field PV1-3 (assigned patient location) is missing',
      loc(visitSeg, 3),
    );
  }
  const at = scope.eventTime();
  return {
    type: 'EncounterTransferred',
    data: {
      meta: scope.meta('EncounterTransferred', at, { transferredAt: at }),
      patientId,
      encounterId,
      fromLocation: scope.location(visitSeg, 6),
      toLocation,
      transferredAt: at.instant,
      encounterClass: patientClass(visitSeg),
      hospitalService: scope.tableCode(visitSeg, 10, '0069'),
      attendingPractitioner: scope.practitioner(visitSeg, 7),
    },
  };
}

/** A03: ended at the discharge time (PV1-45), else when the event occurred. */
function encounterEnded(scope: MapScope, { pid, patientId }: AdtPatient): ClinicalEvent {
  const { visitSeg, encounterId } = visitOf(scope, pid);
  const evn = scope.msg.first('EVN');
  const at = scope.time(visitSeg, 45) ?? scope.time(evn, 6) ?? scope.eventTime();
  return {
    type: 'EncounterEnded',
    data: {
      meta: scope.meta('EncounterEnded', at, { endedAt: at }),
      patientId,
      encounterId,
      endedAt: at.instant,
      dischargeDisposition: scope.tableCode(visitSeg, 36, '0112'),
      encounterClass: patientClass(visitSeg),
      hospitalService: scope.tableCode(visitSeg, 10, '0069'),
      attendingPractitioner: scope.practitioner(visitSeg, 7),
      location: scope.location(visitSeg, 3),
    },
  };
}

/** A11: the admit is cancelled, with the EVN-4 reason. */
function encounterCancelled(scope: MapScope, { pid, patientId }: AdtPatient): ClinicalEvent {
  const { visitSeg, encounterId } = visitOf(scope, pid);
  const at = scope.eventTime();
  return {
    type: 'EncounterCancelled',
    data: {
      meta: scope.meta('EncounterCancelled', at),
      patientId,
      encounterId,
      reason: scope.code(scope.msg.first('EVN'), 4, 0, V2_TABLE('0062')),
      cancelledEventType: 'admit',
      encounterClass: patientClass(visitSeg),
    },
  };
}

/** A12: the transfer is cancelled; the patient is back at PV1-3, not at PV1-6. */
function transferCancelled(scope: MapScope, { pid, patientId }: AdtPatient): ClinicalEvent {
  const { visitSeg, encounterId } = visitOf(scope, pid);
  const at = scope.eventTime();
  return {
    type: 'EncounterTransferCancelled',
    data: {
      meta: scope.meta('EncounterTransferCancelled', at, { cancelledAt: at }),
      patientId,
      encounterId,
      location: scope.location(visitSeg, 3),
      cancelledLocation: scope.location(visitSeg, 6),
      cancelledAt: at.instant,
    },
  };
}

/** A13: the discharge is cancelled; the patient is at PV1-3 again. */
function dischargeCancelled(scope: MapScope, { pid, patientId }: AdtPatient): ClinicalEvent {
  const { visitSeg, encounterId } = visitOf(scope, pid);
  const at = scope.eventTime();
  return {
    type: 'EncounterDischargeCancelled',
    data: {
      meta: scope.meta('EncounterDischargeCancelled', at, { cancelledAt: at }),
      patientId,
      encounterId,
      location: scope.location(visitSeg, 3),
      cancelledAt: at.instant,
    },
  };
}

/**
 * A40: one PatientsMerged per PID/MRG pair. MRG-1 (prior patient
 * identifiers) names the retired record; the surviving one is PID-3.
 */
function mapMerge(scope: MapScope): ClinicalEvent[] {
  // One pass pairs each PID with the first MRG before the next PID: a frame
  // full of PID/MRG pairs must stay linear, not scan the message per PID.
  const pairs: { pid: Seg; mrg: Seg | undefined }[] = [];
  for (const s of scope.msg.segments) {
    if (s.name === 'PID') pairs.push({ pid: s, mrg: undefined });
    else if (s.name === 'MRG') {
      const last = pairs[pairs.length - 1];
      if (last && !last.mrg) last.mrg = s;
    }
  }
  if (pairs.length === 0)
    throw refuse('AE', '101', 'required segment PID is missing', { segment: 'PID', segmentSequence: 1 });
  const at = scope.eventTime();
  const events: ClinicalEvent[] = [];
  pairs.forEach(({ pid, mrg }, i) => {
    if (!mrg) {
      throw refuse('AE', '101', `required segment MRG is missing after PID #${pid.sequence}`, {
        segment: 'MRG',
        segmentSequence: i + 1,
      });
    }
    const { patientId } = scope.patient(pid);
    const mergedIdentifiers = scope.cxList(mrg, 1);
    if (mergedIdentifiers.length === 0) {
      throw refuse(
        'AE',
        '101',
        'required field MRG-1 (prior patient identifier list) is missing',
        loc(mrg, 1),
      );
    }
    const mergedPatientId = scope.mergedPatientId(mergedIdentifiers);
    if (mergedPatientId === patientId) {
      throw refuse('AE', '102', 'MRG-1 resolves to the same enterprise patient as PID-3', loc(mrg, 1));
    }
    events.push({
      type: 'PatientsMerged',
      data: {
        meta: scope.meta('PatientsMerged', at),
        patientId,
        mergedPatientId,
        mergedIdentifiers,
        mergedNames: mergedNames(scope, mrg),
        mergedAccountNumber: scope.cx(mrg, 3),
        mergedVisitNumber: scope.cx(mrg, 5),
        // HL7 sends no snapshot of the retired record beyond MRG-7; FHIR merges may.
        mergedDemographics: null,
      },
    });
  });
  return events;
}

/** MRG-7 prior patient name, every repetition. */
function mergedNames(scope: MapScope, mrg: Seg): HumanName[] {
  const out: HumanName[] = [];
  for (let r = 0; r < mrg.repetitionCount(7); r++) {
    const n = scope.name(mrg, 7, r);
    if (n) out.push(n);
  }
  return out;
}
