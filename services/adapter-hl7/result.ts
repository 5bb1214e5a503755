import type { Hl7Edge, HubError } from '../../libs/errors/index.js';
import type { AckError, Disposition } from '../../libs/hl7/ack.js';

/** What became of one message: what its ACKs say. */
export interface Result {
  disposition: Disposition;
  error?: AckError;
  /** The write was not acknowledged in time and may still land: a resend must not write again. */
  pending?: boolean;
}

/** Reason codes for refused input (metric label, dead-letter header). A closed set: no input text. */
export type RejectReason =
  `${HubError['code']}:${string}` | 'frame_oversize' | 'frame_timeout' | 'frame_incomplete';

/** The disposition of a refusal kept as a dead letter: AE is the sender's to fix, AR cannot be processed. */
export function refusedAs(ack: Hl7Edge['ack']): Disposition {
  return ack === 'AE' ? 'content-error' : 'rejected';
}
