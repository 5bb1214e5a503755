/**
 * Made-up HL7 v2 messages for the adapter's tests and benchmark. Every
 * patient here is invented; the canary values let tests assert that no
 * PHI reaches logs.
 */
import type { ClinicalEvent } from '../../libs/events/index.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { DEFAULT_IDENTITY_POLICY } from '../../libs/identity/index.js';

export const CANARY_FAMILY = 'Zzqcanary';
export const CANARY_MRN = 'MRN-CANARY-4471';

export interface Hl7Fixture {
  name: string;
  text: string;
}

export function adtA01(
  controlId: string,
  mrn = CANARY_MRN,
  opts: { msh15?: string; msh16?: string } = {},
): string {
  const enh =
    opts.msh15 !== undefined || opts.msh16 !== undefined ? `|||${opts.msh15 ?? ''}|${opts.msh16 ?? ''}` : '';
  return [
    `MSH|^~\\&|EHR^1.2.840.1^ISO|GENHOSP|HUB|HUBFAC|20260101120000||ADT^A01^ADT_A01|${controlId}|P|2.5.1${enh}`,
    'EVN|A01|20260101120000',
    `PID|1||${mrn}^^^HOSP^MR~998877^^^STATE^SS||${CANARY_FAMILY}^Jane^Q||19800101|F|||1 Main St^^Springfield^IL^62701`,
    `PV1|1|I|W1^101^A^GENHOSP||||1234^Welby^Marcus|||MED|||||||||V-${controlId}^^^HOSP^VN|||||||||||||||||||||||||20260101115500`,
    'ZXT|custom|segment',
  ].join('\r');
}

/** PID-3 missing: a content error (AE, ERR at PID-3). */
export function adtMissingPid3(controlId: string): string {
  return [
    `MSH|^~\\&|EHR|GENHOSP|HUB|HUBFAC|20260101120000||ADT^A08^ADT_A01|${controlId}|P|2.5.1`,
    'EVN|A08|20260101120000',
    `PID|1||||${CANARY_FAMILY}^Jane||19800101|F`,
    'PV1|1|I',
  ].join('\r');
}

/** An unsupported message type: AR with 200. */
export function unsupportedType(controlId: string): string {
  return `MSH|^~\\&|EHR|GENHOSP|HUB|HUBFAC|20260101120000||QRY^Q01|${controlId}|P|2.5.1\rQRD|x`;
}

export function oruR01(controlId: string, mrn = CANARY_MRN): string {
  return [
    `MSH|^~\\&|LAB|GENHOSP|HUB|HUBFAC|20260101130000||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    `PID|1||${mrn}^^^HOSP^MR||${CANARY_FAMILY}^Jane||19800101|F`,
    `OBR|1|PL-${controlId}^EHR|FL-${controlId}^LAB|24331-1^Lipid panel^LN|||20260101123000|||||||||||||||20260101125900|||F`,
    'OBX|1|NM|2093-3^Cholesterol^LN||196|mg/dL|<200||||F|||20260101125900',
    'OBX|2|ST|2571-8^Triglyceride^LN||normal||||||F',
    'NTE|1||Fasting sample',
  ].join('\r');
}

export function ormO01(controlId: string, mrn = CANARY_MRN): string {
  return [
    `MSH|^~\\&|CPOE|GENHOSP|HUB|HUBFAC|20260101110000||ORM^O01^ORM_O01|${controlId}|P|2.4`,
    `PID|1||${mrn}^^^HOSP^MR||${CANARY_FAMILY}^Jane||19800101|F`,
    `ORC|NW|PL-${controlId}^CPOE||||||||||1234^Welby^Marcus`,
    `OBR|1|PL-${controlId}^CPOE||24331-1^Lipid panel^LN|||20260101110000`,
  ].join('\r');
}

const MAP_CONTEXT = {
  recordedAt: Date.UTC(2026, 0, 2),
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: null,
  timeZone: 'UTC',
};

/** The events the hub's inbound mapper makes of a message (for outbound tests). */
export function hl7Events(text: string): ClinicalEvent[] {
  const out = mapHl7Message(Buffer.from(text), MAP_CONTEXT);
  if (out.kind !== 'mapped') throw new Error('fixture refused');
  return out.events;
}
