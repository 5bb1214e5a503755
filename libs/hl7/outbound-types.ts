import type {
  Address,
  Code,
  Coding,
  ContactPoint,
  HumanName,
  Identifier,
  Location,
  Practitioner,
  SourceTime,
} from '../events/index.js';
import { NAMESPACE_SYSTEM_PREFIX, resolveSystem, type IdentityPolicy } from '../identity/index.js';
import { TEXT_SYSTEM, V2_TABLE } from '../terminology/code-systems.js';
import { V3_ACT_CODE } from './codes.js';

/**
 * HL7 v2 data types written from the hub's shared records: the inverse of
 * what scope.ts reads (CX, XPN, XAD, XTN, PL, XCN, CWE, EI, DTM). Every
 * function takes plain (unescaped) values and returns the encoded text for
 * the standard delimiters `|^~\&`: each leaf is escaped here and nowhere
 * else, so a delimiter in a name or a comment can never split a field.
 * Pure: no clock, no randomness.
 */

/** The HL7 null (chapter 2): sent for a field the receiver must delete. */
export const NULL_FIELD = '""';

/**
 * One leaf value, escaped for `|^~\&` (chapter 2 §2.7: \F\ \S\ \T\ \R\ \E\).
 * CR and LF, which would end the segment, travel as hex escapes (\X0D\,
 * \X0A\); text fields that are lines (TX, FT, NTE-3) split them into
 * repetitions before this is called.
 */
export function esc(text: string): string {
  let out = '';
  for (const ch of text) {
    switch (ch) {
      case '\\':
        out += '\\E\\';
        break;
      case '|':
        out += '\\F\\';
        break;
      case '^':
        out += '\\S\\';
        break;
      case '&':
        out += '\\T\\';
        break;
      case '~':
        out += '\\R\\';
        break;
      case '\r':
        out += '\\X0D\\';
        break;
      case '\n':
        out += '\\X0A\\';
        break;
      default:
        out += ch;
    }
  }
  return out;
}

/** Joins already-encoded parts with a separator, dropping trailing empty ones (chapter 2: trailing delimiters may be omitted). */
export function joinTrim(sep: string, parts: readonly string[]): string {
  let end = parts.length;
  while (end > 0 && parts[end - 1] === '') end--;
  return parts.slice(0, end).join(sep);
}

export const comps = (...parts: string[]): string => joinTrim('^', parts);
export const subs = (...parts: string[]): string => joinTrim('&', parts);
export const reps = (parts: readonly string[]): string => parts.filter((p) => p !== '').join('~');
/** A leaf that may be absent: escaped, or empty. */
export const escOpt = (s: string | null | undefined): string => (s ? esc(s) : '');
const e = escOpt;

/** Table 0396 names preferred for a system URI (the inverse of terminology's codingSystemFor). */
const SYSTEM_NAMES: Readonly<Record<string, string>> = {
  'http://loinc.org': 'LN',
  'http://snomed.info/sct': 'SCT',
  'http://hl7.org/fhir/sid/icd-10': 'I10',
  'http://hl7.org/fhir/sid/icd-10-cm': 'I10C',
  'http://www.cms.gov/Medicare/Coding/ICD10': 'I10P',
  'http://hl7.org/fhir/sid/icd-9-cm': 'I9C',
  'http://unitsofmeasure.org': 'UCUM',
  'http://www.ama-assn.org/go/cpt': 'C4',
  'http://www.nlm.nih.gov/research/umls/rxnorm': 'RXNORM',
  'http://hl7.org/fhir/sid/ndc': 'NDC',
  'http://hl7.org/fhir/sid/cvx': 'CVX',
  'http://hl7.org/fhir/sid/mvx': 'MVX',
  'http://nucc.org/provider-taxonomy': 'NUCCPID',
  'http://dicom.nema.org/resources/ontology/DCM': 'DCM',
  'urn:iso:std:iso:11073:10101': 'MDC',
  'http://www.nlm.nih.gov/research/umls': 'UML',
  'urn:oid:2.16.840.1.113883.6.238': 'CDCREC',
  'urn:iso:std:iso:3166': 'ISO3166_1',
  'urn:iso:std:iso:4217': 'ISO4217',
};
const V2_TABLE_URI = /^http:\/\/terminology\.hl7\.org\/CodeSystem\/v2-(\d{4})$/;
const CODESYSTEM_URN = 'urn:hl7:codesystem:';
const LOCAL_URN = 'urn:hl7:local:';

/**
 * CWE.3 (coding system name, table 0396) for a system URI: the well-known
 * name (LN, SCT, UCUM, ...), HL7nnnn for an HL7 table, the name itself for
 * `urn:hl7:codesystem:<name>`, and none for a code local to the system it
 * came from (`urn:hl7:local:<app>`: as that system sent it; the app is no
 * coding system name a receiver could know). Any other URI (urn:oid:, http:) is sent as it is,
 * which the hub's own reader (and most engines) take as the system.
 */
export function codingSystemName(system: string): string {
  const known = SYSTEM_NAMES[system];
  if (known) return known;
  const table = V2_TABLE_URI.exec(system);
  if (table?.[1]) return `HL7${table[1]}`;
  if (system.startsWith(CODESYSTEM_URN)) return system.slice(CODESYSTEM_URN.length);
  if (system.startsWith(LOCAL_URN)) return '';
  return system;
}

function triplet(c: Coding): string[] {
  return [e(c.code), e(c.display), e(codingSystemName(c.system))];
}

/**
 * Code → CE/CWE: primary coding in 1-3 (version 7), the first alternate in
 * 4-6 (version 8), original text in 9; a second alternate in 10-12 (version
 * 13) from v2.7, where CWE has them. A text-only concept (`urn:hub:text`)
 * is sent as text alone (CWE.2), as the hub reads it. Empty for null.
 */
export function cwe(c: Code | null | undefined, v27 = false): string {
  if (!c) return '';
  if (c.system === TEXT_SYSTEM) return comps('', e(c.text ?? c.display ?? c.code));
  const [alt1, alt2] = c.alternates;
  return comps(
    ...triplet(c),
    ...(alt1 ? triplet(alt1) : ['', '', '']),
    e(c.version),
    e(alt1?.version),
    e(c.text),
    ...(v27 && alt2 ? [...triplet(alt2), e(alt2.version)] : []),
  );
}

/** A bare ID/IS from a coded value: the code itself (tables the field is bound to). */
export function idOf(c: Code | null | undefined): string {
  return c ? e(c.code) : '';
}

/** An assigning authority as an HD (namespace id, universal id, universal id type), unescaped. */
export interface Hd {
  namespaceId: string;
  universalId: string;
  universalIdType: string;
}

/**
 * The HD an identifier system is sent with (the inverse of
 * resolveHl7Authority): the registered authority's own spelling when the
 * site registered one, else `urn:hl7:authority:<ns>` → ns, `urn:oid:<oid>`
 * → &oid&ISO, any other URI → &uri&URI.
 */
export function authorityOf(system: string, policy?: IdentityPolicy): Hd {
  const reg = policy ? resolveSystem(system, policy).authority : undefined;
  if (reg && (reg.namespaceId || reg.universalId)) {
    return {
      namespaceId: reg.namespaceId ?? '',
      universalId: reg.universalId ?? '',
      universalIdType: reg.universalIdType ?? '',
    };
  }
  if (system.startsWith(NAMESPACE_SYSTEM_PREFIX)) {
    // The inbound's name for "no authority sent": sent back as none.
    if (system === `${NAMESPACE_SYSTEM_PREFIX}unknown`)
      return { namespaceId: '', universalId: '', universalIdType: '' };
    return {
      namespaceId: system.slice(NAMESPACE_SYSTEM_PREFIX.length),
      universalId: '',
      universalIdType: '',
    };
  }
  if (system.toLowerCase().startsWith('urn:oid:')) {
    return { namespaceId: '', universalId: system.slice('urn:oid:'.length), universalIdType: 'ISO' };
  }
  return { namespaceId: '', universalId: system, universalIdType: 'URI' };
}

/** HD packed as subcomponents of one component (CX.4, EI parts, XCN.9). */
export function hdSub(h: Hd): string {
  return subs(e(h.namespaceId), e(h.universalId), e(h.universalIdType));
}

/** CX: id ^^^ authority ^ type. */
export function cx(id: Identifier, policy?: IdentityPolicy): string {
  return comps(e(id.value), '', '', hdSub(authorityOf(id.system, policy)), e(id.type));
}

/** EI: id ^ namespace ^ universal id ^ type (an order number). */
export function ei(id: Identifier | null, policy?: IdentityPolicy): string {
  if (!id) return '';
  const h = authorityOf(id.system, policy);
  return comps(e(id.value), e(h.namespaceId), e(h.universalId), e(h.universalIdType));
}

const NAME_TYPES: Readonly<Record<string, string>> = {
  official: 'L',
  usual: 'D',
  maiden: 'M',
  nickname: 'N',
  anonymous: 'S',
  old: 'BAD',
};

/** XPN: family ^ given ^ further given names ^ suffix ^ prefix ^^ name type (table 0200). */
export function xpn(n: HumanName): string {
  const [first, ...more] = n.given;
  return comps(
    e(n.family),
    e(first),
    e(more.join(' ')),
    e(n.suffix),
    e(n.prefix),
    '',
    n.use ? (NAME_TYPES[n.use] ?? '') : '',
  );
}

const ADDRESS_USES: Readonly<Record<string, string>> = {
  home: 'H',
  work: 'B',
  temp: 'C',
  old: 'BA',
  billing: 'BI',
};

/** XAD: street (lines[0]) ^ other designation (the other lines) ^ city ^ state ^ zip ^ country ^ type (table 0190). */
export function xad(a: Address): string {
  const [street, ...more] = a.lines;
  const type = (a.use ? ADDRESS_USES[a.use] : undefined) ?? (a.type === 'postal' ? 'M' : '');
  return comps(e(street), e(more.join(', ')), e(a.city), e(a.state), e(a.postalCode), e(a.country), type);
}

/**
 * XTN: number (XTN.1) ^ use (table 0201) ^ equipment (table 0202) ^ email.
 * Email travels in XTN.4 with NET / Internet; mobile as CP equipment; fax
 * FX, pager BP; a phone with no use leaves XTN.2 empty (the field says
 * which part, PID-13 home or PID-14 work).
 */
export function xtn(c: ContactPoint): string {
  if (c.system === 'email') return comps('', 'NET', 'Internet', e(c.value));
  const use = c.use === 'home' || c.use === 'mobile' ? 'PRN' : c.use === 'work' ? 'WPN' : '';
  const equip =
    c.system === 'fax' ? 'FX' : c.system === 'pager' ? 'BP' : c.use === 'mobile' ? 'CP' : c.use ? 'PH' : '';
  return comps(e(c.value), use, equip);
}

/** PL: point of care ^ room ^ bed ^ facility (HD namespace id). */
export function pl(l: Location | null): string {
  if (!l) return '';
  return comps(e(l.unit), e(l.room), e(l.bed), e(l.facility));
}

/** id, family, given, middle names, suffix, prefix: the parts XCN and CNN (NDL) share, escaped. */
function personParts(p: Practitioner): string[] {
  const n = p.name;
  const [given, ...middle] = n?.given ?? [];
  return [e(p.id?.value), e(n?.family), e(given), e(middle.join(' ')), e(n?.suffix), e(n?.prefix)];
}

/** XCN: id ^ family ^ given ^ middle ^ suffix ^ prefix ^^^ authority ^ name type ^^^ id type. */
export function xcn(p: Practitioner | null, policy?: IdentityPolicy): string {
  if (!p) return '';
  const use = p.name?.use ? (NAME_TYPES[p.name.use] ?? '') : '';
  const authority = p.id ? hdSub(authorityOf(p.id.system, policy)) : '';
  return comps(...personParts(p), '', '', authority, use, '', '', e(p.id?.type));
}

/** NDL (OBR-32): a CNN (XCN's parts, authority as three parts) packed as subcomponents of component 1. */
export function ndl(p: Practitioner | null, policy?: IdentityPolicy): string {
  if (!p) return '';
  const h = p.id ? authorityOf(p.id.system, policy) : undefined;
  return subs(...personParts(p), '', '', e(h?.namespaceId), e(h?.universalId), e(h?.universalIdType));
}

const pad = (n: number, w = 2): string => String(Math.trunc(n)).padStart(w, '0');
const PRECISION_LENGTH: Readonly<Record<string, number>> = {
  year: 4,
  month: 6,
  day: 8,
  hour: 10,
  minute: 12,
  second: 14,
};

/**
 * DTM for an instant. With the SourceTime the sender gave for it, in that
 * offset and precision (2026-01-15 sent as a day stays a day: 20260115-0500,
 * not a midnight in UTC); otherwise UTC to the second (milliseconds when
 * there are any). Always with an explicit offset, so no receiver has to
 * guess the hub's zone.
 */
export function dtm(ms: number | null, source?: SourceTime): string {
  if (ms === null) return '';
  const offset = source?.offsetMinutes ?? 0;
  const d = new Date(ms + offset * 60_000);
  const full =
    `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}` +
    `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  const millis = d.getUTCMilliseconds();
  const precise = source?.precision ?? (millis === 0 ? 'second' : 'millisecond');
  const len = PRECISION_LENGTH[precise];
  const body = len === undefined ? `${full}.${pad(millis, 3)}` : full.slice(0, len);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${body}${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
}

/** A partial ISO date (YYYY, YYYY-MM, YYYY-MM-DD) as an HL7 DT. */
export function dt(date: string | null): string {
  return date ? date.replaceAll('-', '') : '';
}

/**
 * A number as HL7 NM: plain decimal notation (NM has no exponent), shortest
 * form that reads back as the same double.
 */
export function nm(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return '';
  const s = String(n);
  if (!/e/i.test(s)) return s;
  // String(n) is the shortest text that reads back as n; only its exponent has to go.
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign = '', lead = '', frac = '', exp = '0'] = m;
  const digits = lead + frac;
  const x = Number(exp);
  if (x < 0) return `${sign}0.${'0'.repeat(-x - 1)}${digits}`;
  return `${sign}${digits}${'0'.repeat(Math.max(0, x - frac.length))}`;
}

/** PV1-2 patient class (table 0004) of an encounter class: the v2 code kept as an alternate, else from the v3 ActCode. */
export function patientClassOf(c: Code | null): string {
  if (!c) return '';
  const v2 = [c, ...c.alternates].find((x) => x.system === V2_TABLE('0004'));
  if (v2) return e(v2.code);
  if (c.system === V3_ACT_CODE) {
    const byAct: Readonly<Record<string, string>> = { IMP: 'I', AMB: 'O', EMER: 'E', PRENC: 'P' };
    return byAct[c.code] ?? 'U';
  }
  return 'U';
}
