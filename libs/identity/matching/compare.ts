import { jaroWinkler } from '@skyra/jaro-winkler';
import { distance } from 'fastest-levenshtein';
import { areNicknames } from './nicknames.js';
import { soundAlike } from './phonetic.js';
import type { Comparison, MatchRecord } from './types.js';

/**
 * Graded field comparison of two MatchRecords: the comparison vector the
 * Fellegi-Sunter model weighs. Every comparison is symmetric (string metrics
 * are applied to the pair in a canonical order), so decide(a, b) and
 * decide(b, a) give the same score.
 */

/** The compared fields and, per field, its levels from strongest agreement to none. */
export const FIELD_LEVELS = {
  given: ['exact', 'nickname', 'jw-high', 'jw-mid', 'phonetic', 'initial', 'swapped', 'disagree', 'missing'],
  family: ['exact', 'compound', 'jw-high', 'jw-mid', 'phonetic', 'implied', 'disagree', 'missing'],
  birthDate: ['exact', 'transposed', 'typo', 'year-only', 'disagree', 'missing'],
  sex: ['agree', 'disagree', 'missing'],
  phone: ['agree', 'typo', 'implied', 'disagree', 'missing'],
  postalCode: ['exact', 'partial', 'implied', 'disagree', 'missing'],
  address: ['exact', 'similar', 'disagree', 'missing'],
  email: ['exact', 'disagree', 'missing'],
  identifier: ['agree', 'conflict', 'none'],
} as const satisfies Record<string, readonly string[]>;

export type Field = keyof typeof FIELD_LEVELS;

/**
 * Levels that carry no weight (m = u by construction): `missing`, and
 * `implied`, which handles the fields that are one fact, not independent
 * evidence as Fellegi-Sunter assumes. The postal code of an agreeing address
 * line, a phone shared at the same address (a household's home phone) and the
 * family half of a given/family swap are already counted by the address, and
 * by `given: swapped`; counting them again lets a household outscore a person.
 */
export const NEUTRAL_LEVELS: ReadonlySet<string> = new Set(['missing', 'implied']);
export const FIELDS = Object.keys(FIELD_LEVELS) as Field[];

// Jaro-Winkler bands; 0.94 / 0.88 are the bands of the US Census Bureau's record linkage practice.
const JW_HIGH = 0.94;
const JW_MID = 0.88;
const ADDRESS_SIMILAR = 0.92;

function jw(a: string, b: string): number {
  return a < b ? jaroWinkler(a, b) : jaroWinkler(b, a);
}

function stringBand(a: string, b: string): 'jw-high' | 'jw-mid' | 'phonetic' | null {
  const s = jw(a, b);
  if (s >= JW_HIGH) return 'jw-high';
  if (s >= JW_MID) return 'jw-mid';
  return soundAlike(a, b) ? 'phonetic' : null;
}

function isSwapped(a: MatchRecord, b: MatchRecord): boolean {
  const ag = a.given[0];
  const bg = b.given[0];
  if (!ag || !bg || !a.family || !b.family || ag === a.family) return false;
  return ag === b.family && bg === a.family;
}

export function compareGiven(a: readonly string[], b: readonly string[]): string {
  const x = a[0];
  const y = b[0];
  if (!x || !y) return 'missing';
  if (x === y) return 'exact';
  if (areNicknames(x, y)) return 'nickname';
  const band = x.length > 1 && y.length > 1 ? stringBand(x, y) : null;
  if (band) return band;
  if ((x.length === 1 || y.length === 1) && x[0] === y[0]) return 'initial';
  return 'disagree';
}

function parts(name: string): string[] {
  return name.split(/[\s-]+/).filter((p) => p.length > 1);
}

export function compareFamily(x: string | null, y: string | null): string {
  if (!x || !y) return 'missing';
  if (x === y) return 'exact';
  const px = parts(x);
  const py = parts(y);
  if ((px.length > 1 || py.length > 1) && px.some((p) => py.includes(p))) return 'compound';
  return stringBand(x, y) ?? 'disagree';
}

function swapDayMonth(d: string): string {
  return `${d.slice(0, 4)}-${d.slice(8, 10)}-${d.slice(5, 7)}`;
}

export function compareBirthDate(x: string | null, y: string | null): string {
  if (!x || !y) return 'missing';
  if (x === y) return 'exact';
  if (x.length === 10 && y.length === 10) {
    if (swapDayMonth(x) === y) return 'transposed';
    if (distance(x, y) === 1) return 'typo';
  }
  return x.slice(0, 4) === y.slice(0, 4) ? 'year-only' : 'disagree';
}

function compareSex(x: string | null, y: string | null): string {
  if (!x || !y) return 'missing';
  return x === y ? 'agree' : 'disagree';
}

function comparePhones(x: readonly string[], y: readonly string[]): string {
  if (x.length === 0 || y.length === 0) return 'missing';
  if (x.some((p) => y.includes(p))) return 'agree';
  const typo = x.some((p) => y.some((q) => p.length === q.length && distance(p, q) === 1));
  return typo ? 'typo' : 'disagree';
}

function comparePostal(x: string | null, y: string | null): string {
  if (!x || !y) return 'missing';
  if (x === y) return 'exact';
  return x.length >= 3 && x.slice(0, 3) === y.slice(0, 3) ? 'partial' : 'disagree';
}

function compareAddress(x: string | null, y: string | null): string {
  if (!x || !y) return 'missing';
  if (x === y) return 'exact';
  return jw(x, y) >= ADDRESS_SIMILAR ? 'similar' : 'disagree';
}

function compareEmail(x: string | null, y: string | null): string {
  if (!x || !y) return 'missing';
  return x === y ? 'exact' : 'disagree';
}

/** Systems both records carry an identifier of, with no value in common. */
export function conflictingSystems(a: MatchRecord, b: MatchRecord): string[] {
  const out: string[] = [];
  const systems = new Set(a.identifiers.map((i) => i.system));
  for (const s of systems) {
    const av = a.identifiers.filter((i) => i.system === s).map((i) => i.value);
    const bv = b.identifiers.filter((i) => i.system === s).map((i) => i.value);
    if (bv.length > 0 && !av.some((v) => bv.includes(v))) out.push(s);
  }
  return out;
}

function compareIdentifiers(a: MatchRecord, b: MatchRecord): string {
  if (a.identifiers.some((i) => b.identifiers.some((j) => j.system === i.system && j.value === i.value))) {
    return 'agree';
  }
  return conflictingSystems(a, b).length > 0 ? 'conflict' : 'none';
}

/** The comparison vector of a pair (field → level), in FIELDS order. */
export function compare(a: MatchRecord, b: MatchRecord): Comparison {
  const swapped = isSwapped(a, b);
  const address = compareAddress(a.addressLine, b.addressLine);
  const phone = comparePhones(a.phones, b.phones);
  return {
    given: swapped ? 'swapped' : compareGiven(a.given, b.given),
    family: swapped ? 'implied' : compareFamily(a.family, b.family),
    birthDate: compareBirthDate(a.birthDate, b.birthDate),
    sex: compareSex(a.sex, b.sex),
    phone: address === 'exact' && phone === 'agree' ? 'implied' : phone,
    postalCode:
      address === 'exact' || address === 'similar' ? 'implied' : comparePostal(a.postalCode, b.postalCode),
    address,
    email: compareEmail(a.email, b.email),
    identifier: compareIdentifiers(a, b),
  };
}
