import type { ClinicalEvent } from '../events/index.js';
import { encounterClassFor, V2_TABLE } from './codes.js';
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

/**
 * ADT → patient and encounter events. Messages that register a patient or
 * start a visit (A01/A04/A05/A28) also emit PatientRegistered with the full
 * PID snapshot, and A08/A31 emit PatientUpdated, so the patient read models
 * get demographics whatever order the patient and encounter topics are read
 * in. Visit-only events (A02/A03/A11/A12/A13) do not repeat the demographics.
 */
export function mapAdt(scope: MapScope, trigger: string): ClinicalEvent[] {
  if (!isAdtTrigger(trigger)) {
    throw refuse('AR', '201', 'MSH-9.2 trigger event is not supported for ADT', loc(scope.msg.msh, 9, 2));
  }
  if (trigger === 'A40') return mapMerge(scope);
  const pid = scope.requireSegment('PID');
  const { patientId, identifiers } = scope.patient(pid);
  const requirePv1 = (): Seg => scope.requireSegment('PV1');
  const events: ClinicalEvent[] = [];

  const demographics = (type: 'PatientRegistered' | 'PatientUpdated'): void => {
    const occurredAt = scope.eventTime();
    const data = {
      meta: scope.meta(type, occurredAt, { 'demographics.deceasedAt': scope.time(pid, 29) }),
      patientId,
      demographics: scope.demographics(pid, identifiers),
    };
    events.push(type === 'PatientRegistered' ? { type, data } : { type, data });
  };

  switch (trigger) {
    case 'A01':
    case 'A04':
    case 'A05': {
      const visitSeg = requirePv1();
      demographics('PatientRegistered');
      const { visit, encounterId } = scope.requireVisit(visitSeg, pid);
      const pv1_2 = scope.requireField(visitSeg, 2, 1, 'patient class');
      const admitted = scope.time(visitSeg, 44);
      const evn = scope.msg.first('EVN');
      const occurredAt = scope.time(evn, 6) ?? admitted ?? scope.eventTime();
      // A pre-admit (A05) has no admission time until PV1-44 says so.
      const admittedAt = trigger === 'A05' ? admitted : (admitted ?? occurredAt);
      const in1 = scope.msg.first('IN1');
      events.push({
        type: 'EncounterStarted',
        data: {
          meta: scope.meta('EncounterStarted', occurredAt, { admittedAt }),
          patientId,
          encounterId,
          visitNumber: visit,
          encounterClass: encounterClassFor(pv1_2),
          status: trigger === 'A05' ? 'planned' : 'in-progress',
          location: scope.location(visitSeg, 3),
          hospitalService: scope.tableCode(visitSeg, 10, '0069'),
          attendingPractitioner: scope.practitioner(visitSeg, 7),
          admittedAt: instantOf(admittedAt),
          payer: in1 ? in1.get(4, 1) || in1.get(2, 1) || null : null,
        },
      });
      return events;
    }
    case 'A28':
      demographics('PatientRegistered');
      return events;
    case 'A08':
    case 'A31':
      demographics('PatientUpdated');
      return events;
    case 'A02': {
      const visitSeg = requirePv1();
      const { encounterId } = scope.requireVisit(visitSeg, pid);
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
      events.push({
        type: 'EncounterTransferred',
        data: {
          meta: scope.meta('EncounterTransferred', at, { transferredAt: at }),
          patientId,
          encounterId,
          fromLocation: scope.location(visitSeg, 6),
          toLocation,
          transferredAt: at.instant,
        },
      });
      return events;
    }
    case 'A03': {
      const visitSeg = requirePv1();
      const { encounterId } = scope.requireVisit(visitSeg, pid);
      const evn = scope.msg.first('EVN');
      const at = scope.time(visitSeg, 45) ?? scope.time(evn, 6) ?? scope.eventTime();
      events.push({
        type: 'EncounterEnded',
        data: {
          meta: scope.meta('EncounterEnded', at, { endedAt: at }),
          patientId,
          encounterId,
          endedAt: at.instant,
          dischargeDisposition: scope.tableCode(visitSeg, 36, '0112'),
        },
      });
      return events;
    }
    case 'A11': {
      const visitSeg = requirePv1();
      const { encounterId } = scope.requireVisit(visitSeg, pid);
      const at = scope.eventTime();
      events.push({
        type: 'EncounterCancelled',
        data: {
          meta: scope.meta('EncounterCancelled', at),
          patientId,
          encounterId,
          reason: scope.code(scope.msg.first('EVN'), 4, 0, V2_TABLE('0062')),
          cancelledEventType: 'admit',
        },
      });
      return events;
    }
    case 'A12': {
      const visitSeg = requirePv1();
      const { encounterId } = scope.requireVisit(visitSeg, pid);
      const at = scope.eventTime();
      events.push({
        type: 'EncounterTransferCancelled',
        data: {
          meta: scope.meta('EncounterTransferCancelled', at, { cancelledAt: at }),
          patientId,
          encounterId,
          location: scope.location(visitSeg, 3),
          cancelledLocation: scope.location(visitSeg, 6),
          cancelledAt: at.instant,
        },
      });
      return events;
    }
    case 'A13': {
      const visitSeg = requirePv1();
      const { encounterId } = scope.requireVisit(visitSeg, pid);
      const at = scope.eventTime();
      events.push({
        type: 'EncounterDischargeCancelled',
        data: {
          meta: scope.meta('EncounterDischargeCancelled', at, { cancelledAt: at }),
          patientId,
          encounterId,
          location: scope.location(visitSeg, 3),
          cancelledAt: at.instant,
        },
      });
      return events;
    }
    default: {
      const unreachable: never = trigger;
      return unreachable;
    }
  }
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
      data: { meta: scope.meta('PatientsMerged', at), patientId, mergedPatientId, mergedIdentifiers },
    });
  });
  return events;
}
