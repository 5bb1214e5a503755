import type { Address, ContactPoint, Demographics, HumanName } from '../../events/generated.js';
import type { MatchRecord } from './types.js';

/**
 * Demographics → MatchRecord: the values the matcher compares, folded so that
 * differences that say nothing about identity (case, accents, punctuation,
 * "Street" vs "St", phone formatting) are gone before any comparison. Pure.
 */

/** Maps an identifier system as sent to its canonical system (site-config authorities); identity when absent. */
export type SystemResolver = (system: string) => string;

const COMBINING_MARKS = /[\u0300-\u036f]/g;
// Latin letters NFD does not decompose into a base letter and a mark.
const LETTERS: Readonly<Record<string, string>> = {
  ß: 'ss',
  ø: 'o',
  æ: 'ae',
  œ: 'oe',
  ł: 'l',
  đ: 'd',
  þ: 'th',
};

/** Lower case, diacritics removed (NFD + combining marks dropped), only letters, digits, spaces and hyphens kept. */
export function fold(s: string): string {
  return s
    .normalize('NFD')
    .replace(/[ßøæœłđþ]/gi, (c) => LETTERS[c.toLowerCase()] ?? c)
    .replace(COMBINING_MARKS, '')
    .toLowerCase()
    .replace(/['’`.]/g, '')
    .replace(/[^a-z0-9\- ]+/g, ' ')
    .replace(/\s*-\s*/g, '-')
    .replace(/\s+/g, ' ')
    .trim();
}

// Why a table: "123 Main Street" and "123 MAIN ST." are the same line; USPS
// Publication 28 abbreviations for the street words senders spell both ways.
const STREET_WORDS: Readonly<Record<string, string>> = {
  street: 'st',
  avenue: 'ave',
  av: 'ave',
  road: 'rd',
  drive: 'dr',
  lane: 'ln',
  boulevard: 'blvd',
  court: 'ct',
  place: 'pl',
  square: 'sq',
  terrace: 'ter',
  parkway: 'pkwy',
  highway: 'hwy',
  circle: 'cir',
  trail: 'trl',
  way: 'way',
  apartment: 'apt',
  suite: 'ste',
  unit: 'unit',
  north: 'n',
  south: 's',
  east: 'e',
  west: 'w',
  '#': 'apt',
};

/** Folds an address line and replaces each street word by its abbreviation. */
export function normaliseAddressLine(line: string): string | null {
  const words = fold(line.replace(/#/g, ' apt ')).split(' ');
  const out = words.map((w) => STREET_WORDS[w] ?? w).join(' ');
  return out === '' ? null : out;
}

/** Digits only, the last 10 (drops a country prefix); null when fewer than 7 digits. */
export function normalisePhone(value: string): string | null {
  const digits = value.replace(/\D/g, '');
  return digits.length < 7 ? null : digits.slice(-10);
}

/** Folded, spaces and hyphens removed; a US ZIP+4 keeps its 5-digit ZIP. */
export function normalisePostalCode(value: string): string | null {
  const p = fold(value).replace(/[\s-]/g, '');
  if (p === '') return null;
  return /^\d{9}$/.test(p) ? p.slice(0, 5) : p;
}

const DATE = /^\d{4}(-\d{2}(-\d{2})?)?$/;

function officialName(names: readonly HumanName[]): HumanName | undefined {
  return (
    names.find((n) => n.use === 'official' || n.use === 'usual') ??
    names.find((n) => n.use !== 'old') ??
    names[0]
  );
}

function homeAddress(addresses: readonly Address[]): Address | undefined {
  return addresses.find((a) => a.use === 'home') ?? addresses.find((a) => a.use !== 'old') ?? addresses[0];
}

function nonEmpty(s: string | null | undefined): string | null {
  return s === null || s === undefined || s === '' ? null : s;
}

function phones(telecom: readonly ContactPoint[]): string[] {
  const out = telecom
    .filter((c) => c.system === 'phone' || c.system === 'sms')
    .map((c) => normalisePhone(c.value))
    .filter((p): p is string => p !== null);
  return [...new Set(out)];
}

function email(telecom: readonly ContactPoint[]): string | null {
  const e = telecom.find((c) => c.system === 'email');
  return e ? nonEmpty(e.value.trim().toLowerCase()) : null;
}

function sex(gender: string | null): string | null {
  // 'unknown' says nothing: compared as missing, never as a conflict.
  const g = gender?.trim().toLowerCase();
  return g === 'male' || g === 'female' || g === 'other' ? g : null;
}

/** The matcher's view of one patient record. `resolve` canonicalises identifier systems. */
export function toMatchRecord(patientId: string, d: Demographics, resolve?: SystemResolver): MatchRecord {
  const name = officialName(d.names);
  const given = (name?.given ?? []).map(fold).filter((g) => g !== '');
  const address = homeAddress(d.addresses);
  const line = address?.lines[0];
  const postal = address?.postalCode;
  const birthDate = d.birthDate?.trim() ?? null;
  return {
    patientId,
    identifiers: d.identifiers
      .filter((i) => i.value.trim() !== '')
      .map((i) => ({
        system: resolve ? resolve(i.system) : i.system,
        value: i.value.trim(),
        type: nonEmpty(i.type?.trim().toUpperCase()),
      })),
    given,
    family: nonEmpty(name?.family ? fold(name.family) : null),
    birthDate: birthDate !== null && DATE.test(birthDate) ? birthDate : null,
    sex: sex(d.administrativeGender),
    phones: phones(d.telecom),
    postalCode: postal ? normalisePostalCode(postal) : null,
    addressLine: line ? normaliseAddressLine(line) : null,
    email: email(d.telecom),
  };
}
