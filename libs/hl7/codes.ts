import { codeOf, type Code } from '../events/index.js';
import { V2_TABLE } from '../terminology/code-systems.js';

/** Code tables from HL7 v2 values to the hub's (FHIR-aligned) vocabulary. Documented in mapping.md. */

// The coding system table (0396) lives in libs/terminology, shared with the FHIR side.
export { codingSystemFor, V2_TABLE } from '../terminology/code-systems.js';
export const V3_ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

/** PV1-2 patient class (table 0004) → v3 ActCode, as FHIR Encounter.class. */
const ENCOUNTER_CLASS: Readonly<Record<string, { code: string; display: string }>> = {
  I: { code: 'IMP', display: 'inpatient encounter' },
  O: { code: 'AMB', display: 'ambulatory' },
  E: { code: 'EMER', display: 'emergency' },
  P: { code: 'PRENC', display: 'pre-admission' },
  R: { code: 'AMB', display: 'ambulatory' },
  B: { code: 'IMP', display: 'inpatient encounter' },
};

export function encounterClassFor(pv1_2: string): Code {
  const hit = ENCOUNTER_CLASS[pv1_2.toUpperCase()];
  if (hit) return codeOf(V3_ACT_CODE, hit.code, hit.display);
  return codeOf(V2_TABLE('0004'), pv1_2);
}

/** PID-8 administrative sex (table 0001) → FHIR administrative-gender. */
export function genderFor(pid8: string): string | null {
  switch (pid8.toUpperCase()) {
    case '':
      return null;
    case 'M':
      return 'male';
    case 'F':
      return 'female';
    case 'O':
    case 'A':
      return 'other';
    default:
      return 'unknown';
  }
}

/** XPN.7 name type (table 0200) → FHIR name-use. */
export function nameUseFor(xpn7: string): string | null {
  switch (xpn7.toUpperCase()) {
    case 'L':
      return 'official';
    case 'D':
    case 'A':
      return 'usual';
    case 'M':
      return 'maiden';
    case 'N':
      return 'nickname';
    case 'S':
      return 'anonymous';
    case 'BAD':
      return 'old';
    default:
      return null;
  }
}

/** XAD.7 address type (table 0190) → FHIR address-use. */
export function addressUseFor(xad7: string): string | null {
  switch (xad7.toUpperCase()) {
    case 'H':
      return 'home';
    case 'B':
    case 'O':
      return 'work';
    case 'C':
      return 'temp';
    case 'BA':
      return 'old';
    case 'BI':
      return 'billing';
    default:
      return null;
  }
}

/** XAD.7 address type (table 0190) → FHIR address-type (v2-to-FHIR ConceptMap table-hl70190-to-address-type). */
export function addressTypeFor(xad7: string): string | null {
  switch (xad7.toUpperCase()) {
    case 'M':
    case 'SH':
      return 'postal';
    default:
      return null;
  }
}

/** XTN.3 equipment type (table 0202) / XTN.2 use (table 0201) → FHIR ContactPoint system. */
export function telecomSystemFor(xtn2: string, xtn3: string): string {
  const equip = xtn3.toUpperCase();
  if (equip === 'FX') return 'fax';
  if (equip === 'BP') return 'pager';
  if (equip === 'INTERNET' || equip === 'X.400' || xtn2.toUpperCase() === 'NET') return 'email';
  return 'phone';
}

export function telecomUseFor(xtn2: string, xtn3: string, fallback: string): string | null {
  if (xtn3.toUpperCase() === 'CP') return 'mobile';
  switch (xtn2.toUpperCase()) {
    case 'PRN':
    case 'ORN':
    case 'VHN':
      return 'home';
    case 'WPN':
      return 'work';
    case 'EMR':
    case 'ASN':
    case 'NET':
    case 'BPN':
      return null;
    default:
      return fallback;
  }
}

/** OBR-25 / OBX-11 result status (table 0123 / 0085) → hub result status; undefined when it is not a result status. */
export function resultStatusFor(
  code: string,
): 'preliminary' | 'final' | 'corrected' | 'cancelled' | undefined {
  switch (code.toUpperCase()) {
    case 'P':
    case 'R':
    case 'S':
    case 'A':
      return 'preliminary';
    case 'F':
      return 'final';
    case 'C':
      return 'corrected';
    case 'X':
    case 'D':
    case 'W':
      return 'cancelled';
    default:
      return undefined;
  }
}

/** OBR-24 diagnostic service section (table 0074) → order/result category. */
const IMAGING_SECTIONS = new Set([
  'RAD',
  'CT',
  'MR',
  'NMR',
  'NMS',
  'US',
  'RUS',
  'VUS',
  'OUS',
  'CUS',
  'XRC',
  'IMG',
  'MG',
  'DX',
  'CR',
  'XA',
  'PT',
  'NM',
]);
const LAB_SECTIONS = new Set([
  'LAB',
  'CH',
  'HM',
  'MB',
  'MCB',
  'MYC',
  'SR',
  'BLB',
  'CP',
  'SP',
  'CG',
  'VR',
  'TX',
  'IMM',
  'URN',
  'BG',
  'HLA',
  'PAT',
  'OSL',
  'CTH',
]);

export function categoryForSection(obr24: string): 'laboratory' | 'imaging' | 'other' | undefined {
  const s = obr24.trim().toUpperCase();
  if (s === '') return undefined;
  if (IMAGING_SECTIONS.has(s)) return 'imaging';
  if (LAB_SECTIONS.has(s)) return 'laboratory';
  return 'other';
}

/** Priority (TQ1-9, OBR-27.6 / ORC-7.6, table 0027) → FHIR request-priority. */
export function priorityFor(code: string): 'routine' | 'urgent' | 'asap' | 'stat' {
  switch (code.trim().toUpperCase()) {
    case 'S':
      return 'stat';
    case 'A':
      return 'asap';
    case 'P':
    case 'C':
    case 'T':
      return 'urgent';
    default:
      return 'routine';
  }
}

/** ORC-5 order status (table 0038) → FHIR request-status. */
export function orderStatusFor(orc5: string): string {
  switch (orc5.trim().toUpperCase()) {
    case '':
    case 'A':
    case 'IP':
    case 'SC':
      return 'active';
    case 'CM':
      return 'completed';
    case 'CA':
    case 'DC':
    case 'RP':
      return 'revoked';
    case 'HD':
      return 'on-hold';
    case 'ER':
      return 'entered-in-error';
    default:
      return 'unknown';
  }
}
