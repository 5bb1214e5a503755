import type { CodeableConcept, Coding as FhirCoding } from '@medplum/fhirtypes';
import type { Code, Coding } from '../events/generated.js';
import { codingsOf } from '../events/values.js';
import { canonicalSystem, TEXT_SYSTEM, V2_TABLE } from './code-systems.js';

/**
 * The one maintained v2 ↔ FHIR value-set table, as the HL7 v2-to-FHIR mapping guide's
 * ConceptMaps (v2 tables 0001, 0002, 0004, 0005, 0007, 0023, 0052, 0063, 0069, 0078, 0112,
 * 0127, 0128, 0131, 0189, 0203, 0296). Events keep codes as the sender sent them (the v2 table
 * code, canonical system URI); readers that present FHIR translate here, so a table fix
 * changes every reader at once and a replay re-presents old events with it.
 *
 * Two facts per table:
 * - `codes`: the codes of the v2 table's own CodeSystem in terminology.hl7.org, as the FHIR
 *   R4 validator knows it (HAPI hapi-fhir-validation-resources-r4, v2-tables.xml). A coding
 *   in a v2 table system with a code outside it is an error
 *   ("unknown code"), so such a coding is not presented; its code stays in `text`.
 *   Undefined: the table has no code list there (user-defined without suggested values).
 * - `to`: the FHIR concept each v2 code maps to (the guide's ConceptMap), presented first.
 *
 * Pure data and pure functions: no I/O.
 */

export const V3 = (name: string): string => `http://terminology.hl7.org/CodeSystem/v3-${name}`;
export const BCP47 = 'urn:ietf:bcp:47';
export const CDC_RACE_ETHNICITY = 'urn:oid:2.16.840.1.113883.6.238';
export const ADMINISTRATIVE_GENDER = 'http://hl7.org/fhir/administrative-gender';
export const DIAGNOSIS_ROLE = 'http://terminology.hl7.org/CodeSystem/diagnosis-role';
export const ALLERGY_CLINICAL = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical';
export const ALLERGY_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification';

/** The v2 tables this module maps; the string is the table number as in `v2-nnnn`. */
export type V2TableId =
  | '0001'
  | '0002'
  | '0004'
  | '0005'
  | '0007'
  | '0023'
  | '0052'
  | '0063'
  | '0069'
  | '0074'
  | '0078'
  | '0112'
  | '0127'
  | '0128'
  | '0131'
  | '0189'
  | '0203'
  | '0296';

interface Target {
  system: string;
  code: string;
  display?: string;
}

interface TableMap {
  /** Codes of the table's terminology.hl7.org CodeSystem (undefined: none known, any code kept). */
  codes?: ReadonlySet<string>;
  /** v2 code (as sent, case-sensitive) → FHIR coding. */
  to: Readonly<Record<string, Target>>;
}

const set = (codes: string): ReadonlySet<string> => new Set(codes.split(' '));

/** Same code in a FHIR system, for tables whose codes the FHIR value set reuses. */
function same(system: string, codes: ReadonlySet<string>, displays: Record<string, string> = {}) {
  const out: Record<string, Target> = {};
  for (const c of codes) out[c] = { system, code: c, ...(displays[c] ? { display: displays[c] } : {}) };
  return out;
}

const t = (system: string, code: string, display?: string): Target => ({
  system,
  code,
  ...(display ? { display } : {}),
});

/** v3 ObservationInterpretation (FHIR R4 4.0.1): table 0078 codes map to the same code. */
const INTERPRETATION_CODES = set(
  '< > A AA AC B CAR D DET E EX EXP H HH HM HU HX I IE IND L LL LU LX MS N NCL ND NEG NR NS OBX POS QCF R RR S SDD SYN-R SYN-S TOX U UNE VS W WR',
);
/** Table 0078 as terminology.hl7.org has it for R4 (fewer codes than the v3 system). */
const V2_0078_CODES = set(
  '< > A AA AC B D DET H HH HM HU I IE IND L LL LU MS N ND NEG NR NS null OBX POS QCF R RR S SDD SYN-R SYN-S TOX U VS W WR',
);
const INTERPRETATION_DISPLAY: Record<string, string> = {
  '<': 'Off scale low',
  '>': 'Off scale high',
  A: 'Abnormal',
  AA: 'Critical abnormal',
  H: 'High',
  HH: 'Critical high',
  L: 'Low',
  LL: 'Critical low',
  N: 'Normal',
  NEG: 'Negative',
  POS: 'Positive',
  DET: 'Detected',
  ND: 'Not detected',
  IND: 'Indeterminate',
  S: 'Susceptible',
  R: 'Resistant',
  I: 'Intermediate',
};

const MARITAL = V3('MaritalStatus');
const NULL_FLAVOR = V3('NullFlavor');
const ROLE_CODE = V3('RoleCode');
const ACT_CODE = V3('ActCode');

/** ISO 639-2 (bibliographic and terminology) three-letter codes → the BCP-47 (ISO 639-1) tag. */
const ISO639_2: Readonly<Record<string, string>> = {
  ENG: 'en',
  SPA: 'es',
  FRE: 'fr',
  FRA: 'fr',
  GER: 'de',
  DEU: 'de',
  ITA: 'it',
  POR: 'pt',
  DUT: 'nl',
  NLD: 'nl',
  CHI: 'zh',
  ZHO: 'zh',
  JPN: 'ja',
  KOR: 'ko',
  VIE: 'vi',
  RUS: 'ru',
  ARA: 'ar',
  HIN: 'hi',
  BEN: 'bn',
  URD: 'ur',
  PAN: 'pa',
  GUJ: 'gu',
  TAM: 'ta',
  TEL: 'te',
  POL: 'pl',
  UKR: 'uk',
  GRE: 'el',
  ELL: 'el',
  TUR: 'tr',
  PER: 'fa',
  FAS: 'fa',
  HEB: 'he',
  TGL: 'tl',
  HAT: 'ht',
  SWE: 'sv',
  NOR: 'no',
  DAN: 'da',
  FIN: 'fi',
  CZE: 'cs',
  CES: 'cs',
  SLO: 'sk',
  SLK: 'sk',
  HUN: 'hu',
  RUM: 'ro',
  RON: 'ro',
  BUL: 'bg',
  SCR: 'hr',
  HRV: 'hr',
  SRP: 'sr',
  ALB: 'sq',
  SQI: 'sq',
  ARM: 'hy',
  HYE: 'hy',
  SOM: 'so',
  AMH: 'am',
  SWA: 'sw',
  THA: 'th',
  LAO: 'lo',
  KHM: 'km',
  BUR: 'my',
  MYA: 'my',
  IND: 'id',
  MAY: 'ms',
  MSA: 'ms',
  YID: 'yi',
  IRI: 'ga',
  GLE: 'ga',
  WEL: 'cy',
  CYM: 'cy',
  CAT: 'ca',
  BAQ: 'eu',
  EUS: 'eu',
  GLG: 'gl',
  ICE: 'is',
  ISL: 'is',
  LIT: 'lt',
  LAV: 'lv',
  EST: 'et',
  NEP: 'ne',
  PUS: 'ps',
  KUR: 'ku',
  YOR: 'yo',
  IBO: 'ig',
  HAU: 'ha',
  ZUL: 'zu',
  XHO: 'xh',
  AFR: 'af',
  MAO: 'mi',
  MRI: 'mi',
  SMO: 'sm',
  TON: 'to',
  LAT: 'la',
  SGN: 'sgn',
};

const TABLES: Readonly<Record<V2TableId, TableMap>> = {
  // Administrative sex → administrative-gender (guide ConceptMap table 0001).
  '0001': {
    codes: set('A F M N O U'),
    to: {
      F: t(ADMINISTRATIVE_GENDER, 'female', 'Female'),
      M: t(ADMINISTRATIVE_GENDER, 'male', 'Male'),
      O: t(ADMINISTRATIVE_GENDER, 'other', 'Other'),
      A: t(ADMINISTRATIVE_GENDER, 'other', 'Other'),
      N: t(ADMINISTRATIVE_GENDER, 'unknown', 'Unknown'),
      U: t(ADMINISTRATIVE_GENDER, 'unknown', 'Unknown'),
    },
  },
  // Marital status → v3 MaritalStatus (unknown / other as v3 NullFlavor, as the value set does).
  '0002': {
    codes: set('A B C D E G I M N O P R S T U W'),
    to: {
      A: t(MARITAL, 'L', 'Legally Separated'),
      B: t(MARITAL, 'U', 'unmarried'),
      C: t(MARITAL, 'T', 'Domestic partner'),
      D: t(MARITAL, 'D', 'Divorced'),
      E: t(MARITAL, 'L', 'Legally Separated'),
      G: t(MARITAL, 'T', 'Domestic partner'),
      I: t(MARITAL, 'I', 'Interlocutory'),
      M: t(MARITAL, 'M', 'Married'),
      N: t(MARITAL, 'A', 'Annulled'),
      O: t(NULL_FLAVOR, 'OTH', 'other'),
      P: t(MARITAL, 'T', 'Domestic partner'),
      R: t(MARITAL, 'T', 'Domestic partner'),
      S: t(MARITAL, 'S', 'Never Married'),
      T: t(NULL_FLAVOR, 'UNK', 'unknown'),
      U: t(NULL_FLAVOR, 'UNK', 'unknown'),
      W: t(MARITAL, 'W', 'Widowed'),
    },
  },
  // Patient class → v3 ActCode (Encounter.class).
  '0004': {
    codes: set('B C E I N O P R U'),
    to: {
      B: t(ACT_CODE, 'IMP', 'inpatient encounter'),
      E: t(ACT_CODE, 'EMER', 'emergency'),
      I: t(ACT_CODE, 'IMP', 'inpatient encounter'),
      O: t(ACT_CODE, 'AMB', 'ambulatory'),
      P: t(ACT_CODE, 'PRENC', 'pre-admission'),
      R: t(ACT_CODE, 'AMB', 'ambulatory'),
    },
  },
  // Race: the table's suggested values are the CDC Race & Ethnicity codes (US Core ombCategory).
  '0005': {
    to: same(CDC_RACE_ETHNICITY, set('1002-5 2028-9 2054-5 2076-8 2106-3 2131-1'), {
      '1002-5': 'American Indian or Alaska Native',
      '2028-9': 'Asian',
      '2054-5': 'Black or African American',
      '2076-8': 'Native Hawaiian or Other Pacific Islander',
      '2106-3': 'White',
      '2131-1': 'Other Race',
    }),
  },
  // Admission type → v3 ActPriority (Encounter.priority), guide ConceptMap table 0007.
  '0007': {
    codes: set('A C E L N R U'),
    to: {
      A: t(V3('ActPriority'), 'EM', 'emergency'),
      C: t(V3('ActPriority'), 'EL', 'elective'),
      E: t(V3('ActPriority'), 'EM', 'emergency'),
      R: t(V3('ActPriority'), 'R', 'routine'),
      U: t(V3('ActPriority'), 'UR', 'urgent'),
    },
  },
  // Admit source (Encounter.hospitalization.admitSource): the FHIR value set is example-bound;
  // the v2 coding is presented as sent where the table knows the code.
  '0023': { codes: set('1 2 3 4 5 6 7 8 9'), to: {} },
  // Diagnosis type → diagnosis-role (Encounter.diagnosis.use); working has no FHIR role.
  '0052': {
    codes: set('A F W'),
    to: {
      A: t(DIAGNOSIS_ROLE, 'AD', 'Admission diagnosis'),
      F: t(DIAGNOSIS_ROLE, 'DD', 'Discharge diagnosis'),
    },
  },
  // Relationship → v3 RoleCode (Patient.contact.relationship); emergency contact and employer
  // are contact roles (v2-0131), as the FHIR value set patient-contactrelationship has them.
  '0063': {
    codes: set(
      'ASC BRO CGV CHD DEP DOM EMC EME EMR EXF FCH FND FTH GCH GRD GRP MGR MTH NCH NON OAD OTH OWN PAR SCH SEL SIB SIS SPO TRA UNK WRD',
    ),
    to: {
      BRO: t(ROLE_CODE, 'BRO', 'brother'),
      CHD: t(ROLE_CODE, 'CHILD', 'child'),
      DOM: t(ROLE_CODE, 'DOMPART', 'domestic partner'),
      EMC: t(V2_TABLE('0131'), 'C', 'Emergency Contact'),
      EMR: t(V2_TABLE('0131'), 'E', 'Employer'),
      EXF: t(ROLE_CODE, 'EXT', 'extended family member'),
      FCH: t(ROLE_CODE, 'CHLDFOST', 'foster child'),
      FND: t(ROLE_CODE, 'FRND', 'unrelated friend'),
      FTH: t(ROLE_CODE, 'FTH', 'father'),
      GCH: t(ROLE_CODE, 'GRNDCHILD', 'grandchild'),
      GRD: t(ROLE_CODE, 'GUARD', 'guardian'),
      GRP: t(ROLE_CODE, 'GRPRN', 'grandparent'),
      MTH: t(ROLE_CODE, 'MTH', 'mother'),
      NCH: t(ROLE_CODE, 'NCHILD', 'natural child'),
      PAR: t(ROLE_CODE, 'PRN', 'parent'),
      SCH: t(ROLE_CODE, 'STPCHLD', 'step child'),
      SEL: t(ROLE_CODE, 'ONESELF', 'self'),
      SIB: t(ROLE_CODE, 'SIB', 'sibling'),
      SIS: t(ROLE_CODE, 'SIS', 'sister'),
      SPO: t(ROLE_CODE, 'SPS', 'spouse'),
      UNK: t(NULL_FLAVOR, 'UNK', 'unknown'),
    },
  },
  // Hospital service (Encounter.serviceType): example codes only; others are presented as text.
  '0069': { codes: set('CAR MED PUL SUR URO'), to: {} },
  // Diagnostic service section (DiagnosticReport.category): the FHIR value set uses v2-0074.
  '0074': {
    codes: set(
      'AU BG BLB CG CH CP CT CTH CUS EC EN GE HM ICU IMG IMM LAB MB MCB MYC NMR NMS NRS OSL OT OTH OUS PAR PAT PF PHR PHY PT RAD RC RT RUS RX SP SR TX URN VR VUS XRC',
    ),
    to: {},
  },
  // Abnormal flags → v3 ObservationInterpretation (same codes since v2.7).
  '0078': {
    codes: V2_0078_CODES,
    to: same(V3('ObservationInterpretation'), INTERPRETATION_CODES, INTERPRETATION_DISPLAY),
  },
  // Discharge disposition: the FHIR value set is example-bound, and terminology.hl7.org has no
  // R4 code list for this user-defined table: the v2 coding as sent.
  '0112': { to: {} },
  // Allergen type → AllergyIntolerance.category (code only: categoryFor).
  '0127': {
    codes: set('AA DA EA FA LA MA MC PA'),
    to: {},
  },
  // Allergy severity → AllergyIntolerance.criticality (code only: criticalityFor).
  '0128': { codes: set('MI MO SV U'), to: {} },
  // Contact role: the FHIR value set patient-contactrelationship is v2-0131 itself.
  '0131': { codes: set('BP C CP E EP F I N O PR S U'), to: {} },
  // Ethnic group → CDC Race & Ethnicity (US Core ethnicity ombCategory).
  '0189': {
    codes: set('H N U'),
    to: {
      H: t(CDC_RACE_ETHNICITY, '2135-2', 'Hispanic or Latino'),
      N: t(CDC_RACE_ETHNICITY, '2186-5', 'Not Hispanic or Latino'),
    },
  },
  // Identifier type: FHIR Identifier.type uses the v2-0203 system itself.
  '0203': {
    codes: set(
      'AC ACSN AM AMA AN ANC AND ANON ANT APRN ASID BA BC BCFN BCT BR BRN BSNR CC CONM CY CZ DC DCFN DDS DEA DFN DI DL DN DO DP DPM DR DS EI EN ESN FDR FDRFN FI FILL GI GL GN HC IND JHN LACSN LANR LI LN LR MA MB MC MCD MCN MCR MCT MD MI MR MRT MS NBSNR NCT NE NH NI NII NIIP NNxxx NP NPI OBI OD PA PC PCN PE PEN PHC PHE PHO PI PLAC PN PNT PPIN PPN PRC PRN PT QA RI RN RPH RR RRI RRP SB SID SL SN SNBSN SNO SP SR SS STN TAX TN TPR TRL U UDI UPIN USID VN VP VS WC WCN WP XV XX',
    ),
    to: {},
  },
  // Primary language → BCP-47 (languageTag); table 0296 is user-defined, ISO 639 codes in practice.
  '0296': { to: {} },
};

const V2_URI = /^http:\/\/terminology\.hl7\.org\/CodeSystem\/v2-(\d{4})$/;

/** The v2 table a (canonical) system URI names, when this module maps it. */
export function v2TableOf(system: string): V2TableId | undefined {
  const m = V2_URI.exec(canonicalSystem(system));
  const n = m?.[1];
  return n !== undefined && Object.hasOwn(TABLES, n) ? (n as V2TableId) : undefined;
}

/**
 * BCP-47 tag for a language code as v2 senders send it (PID-15, table 0296): ISO 639-2 three
 * letters (ENG, SPA), ISO 639-1 two letters in any case, or a tag with a region (en-US, EN_us).
 * Undefined when the code is none of these (the concept keeps it as text).
 */
export function bcp47Of(code: string): string | undefined {
  const m = /^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2}|\d{3}))?$/.exec(code.trim());
  if (!m?.[1]) return undefined;
  const lang = m[1].length === 3 ? ISO639_2[m[1].toUpperCase()] : m[1].toLowerCase();
  if (!lang) return undefined;
  const region = m[2];
  return region ? `${lang}-${region.toUpperCase()}` : lang;
}

const LANGUAGE_SYSTEMS =
  /^(urn:ietf:bcp:47|urn:iso:std:iso:639(-[123])?|urn:hl7:codesystem:ISO639(-?[123])?[A-Z]?)$/i;

/** The FHIR coding a v2-coded value maps to under `table` (the guide's ConceptMap), if any. */
function targetOf(table: V2TableId, code: string): Target | undefined {
  if (table === '0296') {
    const tag = bcp47Of(code);
    return tag ? { system: BCP47, code: tag } : undefined;
  }
  return TABLES[table].to[code];
}

/** A coding as FHIR presents it, or undefined when it would be invalid (a v2 table code not in the table). */
function presentable(c: Coding): FhirCoding | undefined {
  const system = canonicalSystem(c.system);
  const table = v2TableOf(system);
  const codes = table ? TABLES[table].codes : undefined;
  if (codes && !codes.has(c.code)) return undefined;
  // A value sent as words only (no code) is kept under TEXT_SYSTEM in events; FHIR says it as
  // CodeableConcept.text, not as a coding of a made-up system.
  if (c.code === '' || system === TEXT_SYSTEM) return undefined;
  return {
    ...(system !== '' ? { system } : {}),
    ...(c.version ? { version: c.version } : {}),
    code: c.code,
    ...(c.display ? { display: c.display } : {}),
  };
}

/**
 * The table a coded value belongs to: the one its system names, else the one its element
 * implies (`table`) when the sender gave no standard system for it (a local or table-0396 name,
 * or for a language an ISO 639 system). A code in another standard system (a FHIR sender's v3
 * MaritalStatus `U`) is not read as a v2 code.
 */
function tableFor(code: Code, table: V2TableId | undefined): V2TableId | undefined {
  const own = v2TableOf(code.system);
  if (own) return own;
  const system = canonicalSystem(code.system);
  if (LANGUAGE_SYSTEMS.test(system)) return table === undefined || table === '0296' ? '0296' : undefined;
  return table !== undefined && (system === '' || system.startsWith('urn:hl7:')) ? table : undefined;
}

/**
 * A coded value as a FHIR CodeableConcept: the FHIR coding the table maps it to first (when it
 * maps), then every coding as sent (primary, then alternates) with canonical systems, a coding
 * equal to the FHIR one once, codings invalid in their v2 table left out; `text` as sent. A
 * concept left with no coding keeps the sender's words (text, else display, else code) as text,
 * so nothing the sender said is lost and nothing invalid is served.
 */
export function toFhirConcept(code: Code, table?: V2TableId): CodeableConcept {
  const which = tableFor(code, table);
  const target = which ? targetOf(which, code.code) : undefined;
  const codings: FhirCoding[] = [];
  const seen = new Set<string>();
  const add = (c: FhirCoding | undefined) => {
    if (!c) return;
    const key = `${c.system ?? ''}|${c.code ?? ''}`;
    if (seen.has(key)) return;
    seen.add(key);
    codings.push(c);
  };
  if (target) add({ ...target });
  // A language allows BCP-47 codings only (the validator's max binding, AllLanguages: any other
  // system is an error), so the sender's table-0296 / ISO 639 coding is not kept as a coding:
  // its words are the concept's text.
  const languageOnly = which === '0296';
  for (const c of languageOnly ? [] : codingsOf(code)) add(presentable(c));
  const bare = codings.length === 0 || languageOnly;
  const words = [code.text, bare ? code.display : null, bare ? code.code : null];
  const text = words.find((w): w is string => typeof w === 'string' && w.trim() !== '');
  return {
    ...(codings.length > 0 ? { coding: codings } : {}),
    ...(text ? { text } : {}),
  };
}

/** The FHIR coding alone (the first of toFhirConcept), e.g. for Coding-typed elements. */
export function toFhirCoding(code: Code, table?: V2TableId): FhirCoding | undefined {
  return toFhirConcept(code, table).coding?.[0];
}

/** The FHIR code a v2 code maps to in a code-typed element (gender, priority, ...). */
export function fhirCodeFor(table: V2TableId, code: string): string | undefined {
  return targetOf(table, code)?.code;
}

/** Whether a code belongs to a v2 table's terminology.hl7.org CodeSystem (true when no list is known). */
export function isValidV2Code(table: V2TableId, code: string): boolean {
  return TABLES[table].codes?.has(code) ?? true;
}

/** AllergyIntolerance.category for an allergen type (table 0127), guide ConceptMap (AA animal → biologic). */
export function allergyCategoryFor(
  code: string,
): 'food' | 'medication' | 'environment' | 'biologic' | undefined {
  switch (code.toUpperCase()) {
    case 'DA':
    case 'DI':
      return 'medication';
    case 'FA':
    case 'FI':
      return 'food';
    case 'EA':
    case 'PA':
    case 'LA':
      return 'environment';
    case 'AA':
      return 'biologic';
    default:
      return undefined;
  }
}

/** AllergyIntolerance.type for an allergen type (table 0127): intolerances are DI/FI/MI. */
export function allergyTypeFor(code: string): 'allergy' | 'intolerance' | undefined {
  const c = code.toUpperCase();
  if (c === 'DI' || c === 'FI' || c === 'MI') return 'intolerance';
  if (/^[ADEFLMP]A$/.test(c)) return 'allergy';
  return undefined;
}

/** AllergyIntolerance.criticality for an allergy severity (table 0128), guide ConceptMap. */
export function allergyCriticalityFor(code: string): 'low' | 'high' | 'unable-to-assess' | undefined {
  switch (code.toUpperCase()) {
    case 'SV':
      return 'high';
    case 'MO':
    case 'MI':
      return 'low';
    case 'U':
      return 'unable-to-assess';
    default:
      return undefined;
  }
}

/** AllergyIntolerance.reaction.severity for an allergy severity (table 0128). */
export function reactionSeverityFor(code: string): 'mild' | 'moderate' | 'severe' | undefined {
  switch (code.toUpperCase()) {
    case 'SV':
      return 'severe';
    case 'MO':
      return 'moderate';
    case 'MI':
      return 'mild';
    default:
      return undefined;
  }
}
