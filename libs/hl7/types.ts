import type { HubError } from '../errors/index.js';
import type { ClinicalEvent } from '../events/index.js';
import type { IdentityPolicy } from '../identity/index.js';

/**
 * The seam between the MLLP edge (framing, ACKs, Kafka) and the pure HL7 v2
 * mapping. The edge hands over the bytes of one frame; the mapper answers
 * with events or with a refusal that the edge turns into AE/AR.
 */

/** What MSH says about a message: enough to build an ACK and to de-duplicate a resend. */
export interface MessageHeader {
  fieldSeparator: string;
  encodingCharacters: string;
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  /** MSH-10; empty when missing (which is refused with AR). */
  controlId: string;
  /** MSH-9.1 / MSH-9.2 / MSH-9.3, e.g. ADT / A01 / ADT_A01. */
  messageCode: string;
  triggerEvent: string;
  messageStructure: string;
  /** MSH-11 processing id (P, T, D). */
  processingId: string;
  /** MSH-12. */
  version: string;
  /** MSH-15 / MSH-16: enhanced-mode acknowledgement requests (AL, NE, ER, SU), empty in original mode. */
  acceptAckType: string;
  applicationAckType: string;
  /** MSH-18 as declared, normalised to an iconv-lite name (e.g. 'utf8', 'latin1', 'ascii'). */
  charset: string;
}

/** Where in the message a content error is (ERR-2, HL7 v2.5 ERL). */
export interface ErrorLocation {
  segment: string;
  /** 1-based repetition of the segment in the message. */
  segmentSequence: number;
  field?: number;
  component?: number;
}

export interface Hl7Refusal {
  /** AE: content error the sender can fix; AR: cannot be processed (unparseable, unsupported, no MSH-10). */
  ack: 'AE' | 'AR';
  /** HL7 table 0357 error code: 100 segment sequence, 101 required field missing, 102 data type error, 103 table value not found, 200 unsupported message type, 201 unsupported event code, 203 unsupported version id, 207 application internal error. */
  hl7ErrorCode: string;
  /** Code + PHI-free message (field paths, never values). */
  error: HubError;
  location?: ErrorLocation;
}

export type MapOutcome =
  | { kind: 'mapped'; header: MessageHeader; events: ClinicalEvent[] }
  | { kind: 'refused'; header: MessageHeader | null; refusal: Hl7Refusal };

export interface MapContext {
  /** Ingest time (EventMeta.recordedAt), from the injected clock. */
  recordedAt: number;
  policy: IdentityPolicy;
  /** Pointer to the raw message kept for re-mapping (EventMeta.rawMessageRef). */
  rawMessageRef: string | null;
  /**
   * IANA zone of the sender (e.g. America/New_York), chosen by the adapter from the site
   * configuration (the sender's own zone by MSH-3/MSH-4, else defaultTimeZone). HL7 v2 times
   * without an offset are the sender's local time and are read in this zone.
   */
  timeZone: string;
}
