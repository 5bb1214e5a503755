import type { IdentityPolicy } from '../identity/index.js';
import type { SniffedMsh } from './ack.js';
import type { MapContext, MapOutcome } from './types.js';

/**
 * What the adapter and `hub hl7 remap` share when they map a raw message:
 * the same mapper signature and the same context (sender's zone, raw
 * reference), so a re-map reads a message exactly as it was first read.
 */
export type Hl7Mapper = (bytes: Buffer, ctx: MapContext) => MapOutcome;

/**
 * The IANA zone of a sender (MSH-3.1 application, MSH-4.1 facility), from the
 * site configuration (libs/site-config senderTimeZones): HL7 v2 times without
 * an offset are the sender's local time.
 */
export type SenderTimeZones = (sendingApplication: string, sendingFacility: string) => string;

/** The first component of an HD field (MSH-3, MSH-4), split on the message's own delimiter. */
export function firstComponent(field: string, msh: SniffedMsh): string {
  return field.split(msh.encodingCharacters.charAt(0))[0] ?? '';
}

/**
 * The zone a message's times without an offset are read in: its sender's
 * (MSH-3.1, MSH-4.1). An unreadable MSH still gets one (the default), as the
 * mapper refuses such a message anyway.
 */
export function senderZone(msh: SniffedMsh | null, timeZoneFor: SenderTimeZones): string {
  return timeZoneFor(
    msh ? firstComponent(msh.sendingApplication, msh) : '',
    msh ? firstComponent(msh.sendingFacility, msh) : '',
  );
}

/** The context one raw message is mapped in; its events point back at `<rawTopic>/<rawId>`. */
export function rawMapContext(o: {
  msh: SniffedMsh | null;
  recordedAt: number;
  policy: IdentityPolicy;
  timeZoneFor: SenderTimeZones;
  rawTopic: string;
  rawId: string;
}): MapContext {
  return {
    recordedAt: o.recordedAt,
    policy: o.policy,
    rawMessageRef: `${o.rawTopic}/${o.rawId}`,
    timeZone: senderZone(o.msh, o.timeZoneFor),
  };
}
