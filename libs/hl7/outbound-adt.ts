import type { ClinicalEvent } from '../events/index.js';
import {
  evnSegment,
  fields,
  hubPatientCx,
  patientById,
  pv1Segment,
  seg,
  type Ctx,
} from './outbound-segments.js';
import { cwe, cx, idOf, patientClassOf, reps, xpn } from './outbound-types.js';

/**
 * ADT for visit and merge events: the inverse of map-adt.ts for A01-A05,
 * A11-A13 and A40. See outbound.ts.
 */

/** HL7 table 0354: the message structure (MSH-9.3) of each ADT trigger sent. */
export const ADT_STRUCTURE = {
  A01: 'ADT_A01',
  A02: 'ADT_A02',
  A03: 'ADT_A03',
  A04: 'ADT_A01',
  A05: 'ADT_A05',
  A11: 'ADT_A09',
  A12: 'ADT_A12',
  A13: 'ADT_A01',
  A28: 'ADT_A05',
  A31: 'ADT_A05',
  A40: 'ADT_A39',
} as const;

/** The events this file makes messages for. */
export const VISIT_EVENT_TYPES = [
  'PatientsMerged',
  'EncounterStarted',
  'EncounterTransferred',
  'EncounterEnded',
  'EncounterCancelled',
  'EncounterTransferCancelled',
  'EncounterDischargeCancelled',
] as const;
export type VisitEvent = Extract<ClinicalEvent, { type: (typeof VISIT_EVENT_TYPES)[number] }>;

export function isVisitEvent(ev: ClinicalEvent): ev is VisitEvent {
  return (VISIT_EVENT_TYPES as readonly string[]).includes(ev.type);
}

/**
 * EVN, PID (the hub id, with the stored demographics when the caller gave
 * them), then PV1 (or MRG for a merge) from the event. Times go where the
 * inbound reads them: EVN-6 the occurrence (A02 transfer time, A12/A13
 * cancellation time), PV1-44 admission, PV1-45 discharge.
 */
export function encounterMessage(c: Ctx, visit: VisitEvent, trigger: string): string[] {
  const head = (reason = '', at?: { ms: number; field: string }) => [
    evnSegment(c, trigger, reason, at),
    ...patientById(c, visit.data.patientId),
  ];
  switch (visit.type) {
    case 'PatientsMerged': {
      const d = visit.data;
      const prior = [...d.mergedIdentifiers.map((i) => cx(i, c.o.policy)), hubPatientCx(d.mergedPatientId)];
      const mrg = seg(
        'MRG',
        fields([
          [1, reps(prior)],
          [3, d.mergedAccountNumber ? cx(d.mergedAccountNumber, c.o.policy) : ''],
          [5, d.mergedVisitNumber ? cx(d.mergedVisitNumber, c.o.policy) : ''],
          [7, reps(d.mergedNames.map(xpn))],
        ]),
      );
      return [...head(), mrg];
    }
    case 'EncounterStarted': {
      const d = visit.data;
      const pv2 = d.admitReason ? [seg('PV2', fields([[3, cwe(d.admitReason, c.v27)]]))] : [];
      const pv1 = pv1Segment(c, {
        encounterId: d.encounterId,
        patientClass: patientClassOf(d.encounterClass),
        visit: d.visitNumber,
        location: d.location,
        admissionType: d.admissionType,
        attending: d.attendingPractitioner,
        service: d.hospitalService,
        admitSource: d.admitSource,
        disposition: d.dischargeDisposition,
        admittedAt: c.time(d.admittedAt, 'admittedAt'),
      });
      return [...head(), pv1, ...pv2];
    }
    case 'EncounterTransferred': {
      const d = visit.data;
      return [
        ...head('', { ms: d.transferredAt, field: 'transferredAt' }),
        pv1Segment(c, {
          encounterId: d.encounterId,
          patientClass: patientClassOf(d.encounterClass),
          location: d.toLocation,
          priorLocation: d.fromLocation,
          attending: d.attendingPractitioner,
          service: d.hospitalService,
        }),
      ];
    }
    case 'EncounterEnded': {
      const d = visit.data;
      return [
        ...head(),
        pv1Segment(c, {
          encounterId: d.encounterId,
          patientClass: patientClassOf(d.encounterClass),
          location: d.location,
          attending: d.attendingPractitioner,
          service: d.hospitalService,
          disposition: d.dischargeDisposition,
          dischargedAt: c.time(d.endedAt, 'endedAt'),
        }),
      ];
    }
    case 'EncounterCancelled': {
      const d = visit.data;
      const pv1 = pv1Segment(c, {
        encounterId: d.encounterId,
        patientClass: patientClassOf(d.encounterClass),
      });
      return [...head(idOf(d.reason)), pv1];
    }
    case 'EncounterTransferCancelled': {
      const d = visit.data;
      return [
        ...head('', { ms: d.cancelledAt, field: 'cancelledAt' }),
        pv1Segment(c, {
          encounterId: d.encounterId,
          patientClass: '',
          location: d.location,
          priorLocation: d.cancelledLocation,
        }),
      ];
    }
    case 'EncounterDischargeCancelled': {
      const d = visit.data;
      const at = { ms: d.cancelledAt, field: 'cancelledAt' };
      return [
        ...head('', at),
        pv1Segment(c, { encounterId: d.encounterId, patientClass: '', location: d.location }),
      ];
    }
    default: {
      const unreachable: never = visit;
      return unreachable;
    }
  }
}
