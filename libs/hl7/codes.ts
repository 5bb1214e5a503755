import type { Code } from '../events/index.js';

/** Code tables from HL7 v2 values to the hub's (FHIR-aligned) vocabulary. Documented in mapping.md. */

export const V2_TABLE = (n: string): string => `http://terminology.hl7.org/CodeSystem/v2-${n}`;
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
  if (hit)
    return {
      system: V3_ACT_CODE,
      code: hit.code,
      display: hit.display,
      version: null,
      alternates: [],
      text: null,
    };
  return { system: V2_TABLE('0004'), code: pv1_2, display: null, version: null, alternates: [], text: null };
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

/** Coding system names used in CE/CWE.3 → canonical URIs, so HL7 and FHIR codes compare equal. */
const CODING_SYSTEMS: Readonly<Record<string, string>> = {
  LN: 'http://loinc.org',
  LOINC: 'http://loinc.org',
  SCT: 'http://snomed.info/sct',
  SNM: 'http://snomed.info/sct',
  SNOMED: 'http://snomed.info/sct',
  I10: 'http://hl7.org/fhir/sid/icd-10',
  'I10-CM': 'http://hl7.org/fhir/sid/icd-10-cm',
  I9C: 'http://hl7.org/fhir/sid/icd-9-cm',
  UCUM: 'http://unitsofmeasure.org',
  CPT: 'http://www.ama-assn.org/go/cpt',
  C4: 'http://www.ama-assn.org/go/cpt',
  RXNORM: 'http://www.nlm.nih.gov/research/umls/rxnorm',
};

/**
 * Canonical system for a CE/CWE coding system name: well-known names become
 * their URI, HL7 tables (HL7nnnn) the terminology.hl7.org URI, anything else
 * (local codes) `urn:hl7:codesystem:<name>`; no name at all means a code
 * local to the sending application.
 */
export function codingSystemFor(name: string, sendingApplication: string): string {
  const n = name.trim();
  if (n === '') return `urn:hl7:local:${sendingApplication || 'unknown'}`;
  const known = CODING_SYSTEMS[n.toUpperCase()];
  if (known) return known;
  const table = /^HL7(\d{4})$/i.exec(n);
  if (table?.[1]) return V2_TABLE(table[1]);
  if (/^[a-z][a-z0-9+.-]*:/i.test(n)) return n;
  return `urn:hl7:codesystem:${n}`;
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
