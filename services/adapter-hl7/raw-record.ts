import type { IHeaders } from 'kafkajs';
import { deterministicEventId } from '../../libs/events/index.js';
import type { SniffedMsh } from '../../libs/hl7/ack.js';

/**
 * One message as taken in: the bytes (a broken frame's as far as they were
 * kept), what could be read of its MSH, when it arrived and the id its raw
 * copy and events are filed under.
 */
export interface Inbound {
  bytes: Buffer;
  msh: SniffedMsh | null;
  receivedAt: number;
  rawId: string;
}

/** `MSH-3|MSH-4|MSH-10`: the sender's own name for a message (Kafka key when no patient is known). */
export function senderKey(msh: SniffedMsh): string {
  return `${msh.sendingApplication}|${msh.sendingFacility}|${msh.controlId}`;
}

export function rawIdFor(msh: SniffedMsh | null, idGenerator: () => string): string {
  // Deterministic, so a resend and its events point at the same raw id.
  return msh && msh.controlId
    ? deterministicEventId(['hl7-raw', msh.sendingApplication, msh.sendingFacility, msh.controlId])
    : deterministicEventId(['hl7-raw-anon', idGenerator()]);
}

/** The headers of a raw copy and of a dead letter (README, "Raw retention and dead letters"). */
export function rawHeaders(m: Inbound): IHeaders {
  const h: IHeaders = {
    'hl7-raw-id': m.rawId,
    'hl7-received-at': new Date(m.receivedAt).toISOString(),
  };
  if (m.msh) {
    h['hl7-sender'] = `${m.msh.sendingApplication}|${m.msh.sendingFacility}`;
    h['hl7-control-id'] = m.msh.controlId;
    h['hl7-message-type'] = `${m.msh.messageCode}^${m.msh.triggerEvent}`;
    h['hl7-charset'] = m.msh.declaredCharset;
  }
  return h;
}
