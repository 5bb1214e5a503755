import { createHash } from 'node:crypto';
import type { ClinicalEvent, EventType } from '../events/index.js';
import { V3_ACT_CODE } from './codes.js';
import { ADT_STRUCTURE, encounterMessage, isVisitEvent, VISIT_EVENT_TYPES } from './outbound-adt.js';
import { isOrderEvent, ORDER_EVENT_TYPES, ormBody } from './outbound-orm.js';
import { oruBody } from './outbound-oru.js';
import {
  contextOf,
  evnSegment,
  nk1Segments,
  pd1Segment,
  pidSegment,
  seg,
  versionNumber,
  type Ctx,
  type OutboundOptions,
} from './outbound-segments.js';
import { comps, dtm, esc, escOpt, patientClassOf } from './outbound-types.js';

export { HUB_AUTHORITY, type OutboundOptions } from './outbound-segments.js';

/**
 * Hub events → HL7 v2 messages, for subscribers that take HL7 over MLLP
 * (issue 20; docs/subscriptions.md "HL7 v2 over MLLP out"). The inverse of
 * the inbound mapping (map.ts, mapping.md) where the event carries the
 * facts: a message made here, read back by mapHl7Message, gives the same
 * facts (outbound.test.ts: property tests for A28/A31 and ORU^R01, examples
 * for every visit trigger, A40 and ORM^O01).
 *
 * Pure: MSH-7 and MSH-10 come in with the options; the same event and
 * options always give the same bytes, so a retried delivery is the same
 * message with the same control id.
 */

/** Message code, trigger and structure (MSH-9) of the message an event becomes. */
export interface MessageType {
  code: 'ADT' | 'ORU' | 'ORM';
  trigger: string;
  structure: string;
}

/** Event types that have an outbound message (the others answer null from toHl7v2). */
const WITH_MESSAGE: ReadonlySet<EventType> = new Set<EventType>([
  'PatientRegistered',
  'PatientUpdated',
  ...VISIT_EVENT_TYPES,
  'ResultReported',
  'ResultCorrected',
  ...ORDER_EVENT_TYPES,
]);

/**
 * Whether an event has an HL7 v2 message. Allergies, coverage, diagnoses
 * and attachment content have none yet: a worker skips them
 * without a delivery (they are not failures).
 */
export function hasMessage(e: ClinicalEvent | EventType): boolean {
  return WITH_MESSAGE.has(typeof e === 'string' ? e : e.type);
}

/**
 * MSH-10 from a delivery's idempotency key: at most 20 characters (the
 * v2.5 ST length of MSH-10). A UUID key gives its first 20 hex digits (76
 * bits after the fixed version nibble: no two deliveries a receiver sees
 * share one in practice); any other key the first 20 hex digits of its
 * SHA-256. The same key always gives the same id, so a retry is recognisable.
 */
export function controlIdFor(idempotencyKey: string): string {
  const hex = idempotencyKey.toLowerCase().replaceAll('-', '');
  if (/^[0-9a-f]{32}$/.test(hex)) return hex.slice(0, 20);
  return createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 20);
}

const isInpatient = (c: { code: string; system: string } | null, pv1Class: string): boolean =>
  pv1Class === 'I' || (c !== null && c.system === V3_ACT_CODE && c.code === 'IMP');

/** The message an event becomes, or null when it has none. */
export function messageTypeOf(ev: ClinicalEvent): MessageType | null {
  const adt = (trigger: keyof typeof ADT_STRUCTURE): MessageType => ({
    code: 'ADT',
    trigger,
    structure: ADT_STRUCTURE[trigger],
  });
  switch (ev.type) {
    case 'PatientRegistered':
      return adt('A28');
    case 'PatientUpdated':
      return adt('A31');
    case 'PatientsMerged':
      return adt('A40');
    case 'EncounterStarted': {
      const d = ev.data;
      if (d.status === 'planned') return adt('A05');
      return adt(isInpatient(d.encounterClass, patientClassOf(d.encounterClass)) ? 'A01' : 'A04');
    }
    case 'EncounterTransferred':
      return adt('A02');
    case 'EncounterEnded':
      return adt('A03');
    case 'EncounterCancelled':
      // "What was cancelled": an undone transfer or discharge is A12 / A13, as the inbound reads them.
      return adt(
        ev.data.cancelledEventType === 'transfer'
          ? 'A12'
          : ev.data.cancelledEventType === 'discharge'
            ? 'A13'
            : 'A11',
      );
    case 'EncounterTransferCancelled':
      return adt('A12');
    case 'EncounterDischargeCancelled':
      return adt('A13');
    case 'ResultReported':
    case 'ResultCorrected':
      return { code: 'ORU', trigger: 'R01', structure: 'ORU_R01' };
    case 'OrderPlaced':
    case 'OrderCancelled':
    case 'OrderStatusChanged':
      return { code: 'ORM', trigger: 'O01', structure: 'ORM_O01' };
    // Master patient index decisions would be ADT^A24/A37 (link/unlink patient information): not sent yet.
    case 'AllergyRecorded':
    case 'CoverageRecorded':
    case 'DiagnosisRecorded':
    case 'AttachmentStored':
    case 'PatientLinkProposed':
    case 'PatientsLinked':
    case 'PatientsUnlinked':
    case 'PatientLinkRejected':
      return null;
  }
}

/**
 * The HL7 v2 message for an event (segments joined by CR, no MLLP frame),
 * or null when the event type has none (see hasMessage).
 */
export function toHl7v2(ev: ClinicalEvent, o: OutboundOptions): string | null {
  const type = messageTypeOf(ev);
  if (!type) return null;
  const c = contextOf(o, ev.data.meta);
  let body: string[];
  if (ev.type === 'PatientRegistered' || ev.type === 'PatientUpdated') {
    const update = ev.type === 'PatientUpdated';
    const d = ev.data.demographics;
    body = [
      evnSegment(c, type.trigger),
      pidSegment(c, ev.data.patientId, d, update),
      ...pd1Segment(c, d, update),
      ...nk1Segments(c, d, update),
      // ADT_A05 requires PV1; with no visit the standard asks for PV1-2 N (not applicable).
      seg('PV1', ['1', 'N']),
    ];
  } else if (ev.type === 'ResultReported') {
    body = oruBody(c, ev.data, null);
  } else if (ev.type === 'ResultCorrected') {
    body = oruBody(c, ev.data, { reason: ev.data.correctionReason });
  } else if (isOrderEvent(ev)) {
    body = ormBody(c, ev);
  } else if (isVisitEvent(ev)) {
    body = encounterMessage(c, ev, type.trigger);
  } else {
    return null;
  }
  const text = body.join('\r');
  return `${msh(c, type, !isAscii(text) || !isAscii(mshText(o)))}\r${text}`;
}

/** Whether text is 7-bit (then MSH-18 is left empty). */
const isAscii = (s: string): boolean => Buffer.byteLength(s, 'utf8') === s.length;

function msh(c: Ctx, t: MessageType, nonAscii: boolean): string {
  const o = c.o;
  const type =
    versionNumber(o.version) >= 2.3 && o.version !== '2.3'
      ? [t.code, t.trigger, t.structure]
      : [t.code, t.trigger];
  // MSH-1 is the separator itself: the segment starts "MSH|^~\&" and MSH-3 is the next field.
  return seg('MSH', [
    '^~\\&',
    esc(o.sendingApplication),
    esc(o.sendingFacility),
    escOpt(o.receivingApplication),
    escOpt(o.receivingFacility),
    dtm(o.now),
    '',
    comps(...type),
    esc(o.controlId),
    o.processingId ?? 'P',
    esc(o.version),
    '',
    '',
    '',
    '',
    '',
    // MSH-18 only when the text needs it: a pure-ASCII message is readable by every receiver as is.
    nonAscii ? 'UNICODE UTF-8' : '',
  ]);
}

const mshText = (o: OutboundOptions) =>
  `${o.sendingApplication}${o.sendingFacility}${o.receivingApplication ?? ''}${o.receivingFacility ?? ''}`;
