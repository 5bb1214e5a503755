/**
 * The one table from HL7 v2 coding system names (table 0396, sent in CWE/CE/CNE.3, .6 and .12)
 * to code system URIs, so that a LOINC code sent by an HL7 feed and one posted as FHIR compare
 * equal. URIs are those of FHIR R4 "Using Codes in Resources" (terminologies-systems) and the
 * HL7 v2-to-FHIR mapping guide; names with no agreed URI keep a URN built from the name.
 *
 * Events written before this table existed may carry a table-0396 name or an "HL7-nnnn" table
 * name as `system`: presentation layers pass every stored system through {@link canonicalSystem}.
 */
import type { Code } from '../events/generated.js';

export const UCUM = 'http://unitsofmeasure.org';
export const LOINC = 'http://loinc.org';
export const SNOMED_CT = 'http://snomed.info/sct';
/**
 * A concept sent as text only (HL7 CWE with CWE-2/CWE-9 and no code; FHIR CodeableConcept with
 * only text): the text is its code and display, and also `Code.text`. Presentation serves such a
 * value as CodeableConcept.text with no coding.
 */
export const TEXT_SYSTEM = 'urn:hub:text';

/** The text-only concept both adapters record for words without a code (see TEXT_SYSTEM). */
export function textCode(text: string): Code {
  return { system: TEXT_SYSTEM, code: text, display: text, version: null, alternates: [], text };
}

/** The terminology.hl7.org URI of HL7 v2 table nnnn (table 0396 name "HL7nnnn"). */
export const V2_TABLE = (n: string): string => `http://terminology.hl7.org/CodeSystem/v2-${n}`;

/** Table 0396 names (upper case) → URI. Aliases senders use in practice (LOINC, SNOMED) are kept. */
const CODING_SYSTEMS: Readonly<Record<string, string>> = {
  LN: LOINC,
  LOINC,
  SCT: SNOMED_CT,
  // SNM (SNOMED 2) and SNM3 (SNOMED International) predate SNOMED CT; their concept ids were
  // carried into SNOMED CT, and the hub has always compared them equal: kept for stable ids.
  SNM: SNOMED_CT,
  SNM3: SNOMED_CT,
  SNOMED: SNOMED_CT,
  I10: 'http://hl7.org/fhir/sid/icd-10',
  I10C: 'http://hl7.org/fhir/sid/icd-10-cm',
  'I10-CM': 'http://hl7.org/fhir/sid/icd-10-cm',
  I10P: 'http://www.cms.gov/Medicare/Coding/ICD10',
  I9C: 'http://hl7.org/fhir/sid/icd-9-cm',
  I9CDX: 'http://hl7.org/fhir/sid/icd-9-cm',
  I9CP: 'http://hl7.org/fhir/sid/icd-9-cm',
  UCUM,
  C4: 'http://www.ama-assn.org/go/cpt',
  C5: 'http://www.ama-assn.org/go/cpt',
  CPT: 'http://www.ama-assn.org/go/cpt',
  CPTM: 'http://www.ama-assn.org/go/cpt',
  RXNORM: 'http://www.nlm.nih.gov/research/umls/rxnorm',
  NDC: 'http://hl7.org/fhir/sid/ndc',
  CVX: 'http://hl7.org/fhir/sid/cvx',
  MVX: 'http://hl7.org/fhir/sid/mvx',
  NUCCPID: 'http://nucc.org/provider-taxonomy',
  DCM: 'http://dicom.nema.org/resources/ontology/DCM',
  MDC: 'urn:iso:std:iso:11073:10101',
  UML: 'http://www.nlm.nih.gov/research/umls',
  CDCREC: 'urn:oid:2.16.840.1.113883.6.238',
  ISO3166_1: 'urn:iso:std:iso:3166',
  ISO4217: 'urn:iso:std:iso:4217',
};

/** Table 0396 "HL7nnnn" (and the "HL7-nnnn" spelling older events carry): an HL7 v2 table. */
const V2_TABLE_NAME = /^HL7-?(\d{4})$/i;
/** A name that is already a URI (scheme:...) is used as sent. */
const URI = /^[a-z][a-z0-9+.-]*:/i;

/** Whether a table-0396 name says "local to the sender": L, 99zzz (z alphanumeric), or nothing. */
export function isLocalCodingSystemName(name: string): boolean {
  const n = name.trim().toUpperCase();
  return n === '' || n === 'L' || /^99[A-Z0-9]{1,3}$/.test(n);
}

/**
 * Canonical system for a CE/CWE coding system name: well-known names become their URI, HL7
 * tables (HL7nnnn) the terminology.hl7.org URI, a URI stays itself. No name at all means a code
 * local to the sending application (`urn:hl7:local:<app>`); other names, including the local
 * 99zzz and L of table 0396, become `urn:hl7:codesystem:<name>`. Local names are not folded into
 * the sender's URN: result and order ids are derived from codes, and a changed system would make
 * a correction sent after an upgrade a different report.
 */
export function codingSystemFor(name: string, sendingApplication: string): string {
  const n = name.trim();
  if (n === '') return `urn:hl7:local:${sendingApplication || 'unknown'}`;
  const known = CODING_SYSTEMS[n.toUpperCase()];
  if (known) return known;
  const table = V2_TABLE_NAME.exec(n);
  if (table?.[1]) return V2_TABLE(table[1]);
  if (URI.test(n)) return n;
  return `urn:hl7:codesystem:${n}`;
}

/**
 * The URI for a system as stored in an event: URIs unchanged, table-0396 names and "HL7-nnnn"
 * table names (events written before systems were canonicalised) as {@link codingSystemFor}
 * maps them. For readers and presentation, which see stored events of every age.
 */
export function canonicalSystem(system: string): string {
  const s = system.trim();
  if (s === '' || URI.test(s)) return s;
  const known = CODING_SYSTEMS[s.toUpperCase()];
  if (known) return known;
  const table = V2_TABLE_NAME.exec(s);
  if (table?.[1]) return V2_TABLE(table[1]);
  return `urn:hl7:codesystem:${s}`;
}
