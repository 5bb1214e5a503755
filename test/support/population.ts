import { Faker, base, en } from '@faker-js/faker';
import type { ContactPoint, Demographics, Identifier } from '../../libs/events/generated.js';
import { EMPTY_DEMOGRAPHICS } from '../../libs/events/demographics.js';
import { nicknamesOf } from '../../libs/identity/matching/nicknames.js';

/**
 * A synthetic patient population with ground truth, for the master patient
 * index's tests, training (scripts/empi-train.ts) and benchmark
 * (scripts/bench/empi.ts). Every person is made up by @faker-js/faker under a
 * seed: the same seed and options give the same records, byte for byte.
 *
 * People live in households (shared family name, address, home phone; some
 * with twins). Each person is registered 1-4 times, at one of three
 * facilities (each with its own MRN system); every registration is the
 * person's true demographics passed through the corruption model below,
 * applied independently per record at the given rates. Records come out in a
 * seeded random order, as registrations arrive over time.
 */

export interface CorruptionRates {
  /** Given name replaced by a nickname form from the nickname table (when it has one). */
  nickname: number;
  /** One-character edit (substitution, deletion, insertion, adjacent transposition) in the given name. */
  givenTypo: number;
  /** The same in the family name. */
  familyTypo: number;
  /** Given name reduced to its initial. */
  givenInitial: number;
  /** Given and family name swapped. */
  swappedNames: number;
  /** Day and month of the birth date swapped (only when both are <= 12 and differ). */
  dobTransposed: number;
  /** One digit of the birth date changed (the result is still a valid date). */
  dobTypo: number;
  /** Birth date sent as the year only. */
  dobYearOnly: number;
  /** The person moved: new address line and postal code; half of moves also change the home phone. */
  addressMove: number;
  /** Share of moves within the same postal code (new street, same ZIP). */
  moveSamePostal: number;
  /** New phone number, same address. */
  phoneChange: number;
  /** One digit of the phone number changed. */
  phoneTypo: number;
  /** One-character edit in the address line. */
  addressTypo: number;
  /** A different email address (new provider). */
  emailChange: number;
  /** Family name becomes a hyphenated double name (marriage): "Smith" → "Smith-Jones". */
  hyphenatedSurname: number;
  /** Case and accent noise (upper-cased names, an accented vowel, "Street" vs "St."): folded away by normalisation. */
  cosmetic: number;
  /** Sex recorded as the other sex (a data entry error). */
  sexError: number;
  /** Per field, the rate at which a record leaves it out. */
  missingPhone: number;
  missingAddress: number;
  missingEmail: number;
  missingBirthDate: number;
  missingSex: number;
  /** Share of records that also carry the person's SSN (type SS, one authority for all facilities). */
  ssnPresent: number;
  /** One digit of a present SSN changed. */
  ssnTypo: number;
  /** A repeat registration goes to another facility (own MRN system); otherwise same facility, new MRN. */
  otherFacility: number;
  /** Share of households of 3+ with twins (same birth date, different given names). */
  twins: number;
}

export const DEFAULT_RATES: CorruptionRates = {
  nickname: 0.08,
  givenTypo: 0.06,
  familyTypo: 0.05,
  givenInitial: 0.01,
  swappedNames: 0.015,
  dobTransposed: 0.02,
  dobTypo: 0.02,
  dobYearOnly: 0.005,
  addressMove: 0.08,
  moveSamePostal: 0.2,
  phoneChange: 0.05,
  phoneTypo: 0.01,
  addressTypo: 0.03,
  emailChange: 0.05,
  hyphenatedSurname: 0.02,
  cosmetic: 0.1,
  sexError: 0.002,
  missingPhone: 0.1,
  missingAddress: 0.05,
  missingEmail: 0.3,
  missingBirthDate: 0.005,
  missingSex: 0.01,
  ssnPresent: 0.3,
  ssnTypo: 0.005,
  otherFacility: 0.6,
  twins: 0.15,
};

/** Records per person: 1 to 4 with these probabilities. */
export const RECORDS_PER_PERSON = [0.65, 0.22, 0.09, 0.04] as const;
/** Household sizes 1 to 4 with these probabilities. */
export const HOUSEHOLD_SIZES = [0.5, 0.25, 0.13, 0.12] as const;

export const FACILITIES = ['a', 'b', 'c'] as const;
export const mrnSystem = (facility: string) =>
  `urn:oid:2.16.840.1.113883.19.${FACILITIES.indexOf(facility as 'a') + 1}`;
export const SSN_SYSTEM = 'http://hl7.org/fhir/sid/us-ssn';

export interface PopulationRecord {
  patientId: string;
  /** Ground truth: records of one person share it. */
  personId: string;
  facility: string;
  demographics: Demographics;
}

export interface PopulationOptions {
  seed: number;
  /** At least this many records (the last household may add a few). */
  records: number;
  rates?: Partial<CorruptionRates>;
}

interface Person {
  id: string;
  given: string;
  middle: string | null;
  family: string;
  birthDate: string;
  sex: 'male' | 'female';
  line: string;
  city: string;
  state: string;
  postalCode: string;
  phone: string;
  email: string | null;
  ssn: string;
  facility: string;
}

type Rng = Faker;

const chance = (f: Rng, p: number) => p > 0 && f.number.float({ min: 0, max: 1 }) < p;

function pickIndex(f: Rng, weights: readonly number[]): number {
  let x = f.number.float({ min: 0, max: 1 });
  for (let i = 0; i < weights.length; i++) {
    x -= weights[i] ?? 0;
    if (x < 0) return i;
  }
  return weights.length - 1;
}

function phoneDigits(f: Rng): string {
  return `${f.number.int({ min: 201, max: 989 })}${f.string.numeric(7)}`;
}

function iso(d: Date): string {
  return d.toISOString().slice(0, 10);
}

const REF_DATE = '2026-06-01T00:00:00Z';

function birthDate(f: Rng, min: number, max: number): string {
  return iso(f.date.birthdate({ mode: 'age', min, max, refDate: REF_DATE }));
}

interface Home {
  family: string;
  line: string;
  city: string;
  state: string;
  postalCode: string;
  phone: string;
}

function newHome(f: Rng): Home {
  return {
    family: f.person.lastName(),
    line: f.location.streetAddress(),
    city: f.location.city(),
    state: f.location.state({ abbreviated: true }),
    postalCode: f.location.zipCode('#####'),
    phone: phoneDigits(f),
  };
}

function newPerson(f: Rng, home: Home, id: string, dob: string, adult: boolean): Person {
  const sex = f.helpers.arrayElement(['male', 'female'] as const);
  const given = f.person.firstName(sex);
  const email = chance(f, 0.6)
    ? `${given}.${home.family}${f.number.int({ min: 1, max: 99 })}@${f.helpers.arrayElement(['example.com', 'example.org', 'example.net'])}`.toLowerCase()
    : null;
  return {
    ...home,
    id,
    given,
    middle: chance(f, 0.4) ? f.person.middleName(sex) : null,
    birthDate: dob,
    sex,
    // An adult has a mobile of their own more often than not; a child is reached at home.
    phone: adult && chance(f, 0.5) ? phoneDigits(f) : home.phone,
    email,
    ssn: `9${f.string.numeric(2)}-${f.string.numeric(2)}-${f.string.numeric(4)}`,
    facility: f.helpers.arrayElement(FACILITIES),
  };
}

/** One household: adults, then children; with rate `twins` (3+ members) the last two children are twins. */
function household(f: Rng, rates: CorruptionRates, nextId: () => string): Person[] {
  const size = pickIndex(f, HOUSEHOLD_SIZES) + 1;
  const home = newHome(f);
  const adults = Math.min(size, size >= 3 ? 2 : size);
  const people: Person[] = [];
  for (let i = 0; i < adults; i++) people.push(newPerson(f, home, nextId(), birthDate(f, 22, 90), true));
  const twinDob = size >= 3 && chance(f, rates.twins) ? birthDate(f, 0, 18) : null;
  for (let i = adults; i < size; i++) {
    const dob = twinDob !== null && i >= size - 2 ? twinDob : birthDate(f, 0, 18);
    let child = newPerson(f, home, nextId(), dob, false);
    const sibling = people[people.length - 1];
    // Twins have different given names (identical twins with one name are not a matching problem).
    while (sibling && child.given === sibling.given)
      child = { ...child, given: f.person.firstName(child.sex) };
    people.push(child);
  }
  return people;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/** One random edit of a name; keeps the first letter's case style. */
function typo(f: Rng, s: string): string {
  if (s.length < 3) return s;
  const i = f.number.int({ min: 1, max: s.length - 1 });
  const c = f.helpers.arrayElement(LETTERS.split(''));
  switch (f.number.int({ min: 0, max: 3 })) {
    case 0:
      return s.slice(0, i) + c + s.slice(i + 1);
    case 1:
      return s.slice(0, i) + s.slice(i + 1);
    case 2:
      return s.slice(0, i) + c + s.slice(i);
    default:
      return i < s.length - 1 ? s.slice(0, i) + (s[i + 1] ?? '') + (s[i] ?? '') + s.slice(i + 2) : s + c;
  }
}

function validDate(d: string): boolean {
  const t = Date.parse(`${d}T00:00:00Z`);
  return !Number.isNaN(t) && iso(new Date(t)) === d;
}

function dateTypo(f: Rng, d: string): string {
  for (let tries = 0; tries < 10; tries++) {
    const i = f.helpers.arrayElement([2, 3, 5, 6, 8, 9]);
    const out = d.slice(0, i) + String(f.number.int({ min: 0, max: 9 })) + d.slice(i + 1);
    if (out !== d && validDate(out)) return out;
  }
  return d;
}

function corruptDate(f: Rng, r: CorruptionRates, d: string): string | null {
  if (chance(f, r.missingBirthDate)) return null;
  if (chance(f, r.dobYearOnly)) return d.slice(0, 4);
  const [y, m, day] = [d.slice(0, 4), d.slice(5, 7), d.slice(8, 10)];
  if (chance(f, r.dobTransposed) && Number(day) <= 12 && day !== m) return `${y}-${day}-${m}`;
  return chance(f, r.dobTypo) ? dateTypo(f, d) : d;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

const ACCENTS: Readonly<Record<string, string>> = { e: 'é', a: 'á', o: 'ö', u: 'ü', i: 'í', n: 'ñ' };

/** Noise normalisation must undo: upper case, one accented letter, the street word abbreviated. */
function cosmetic(f: Rng, s: string): string {
  const k = f.number.int({ min: 0, max: 2 });
  if (k === 0) return s.toUpperCase();
  if (k === 1) return s.replace(/[eaoiun]/, (c) => ACCENTS[c] ?? c);
  return s
    .replace(/\bStreet\b/, 'St.')
    .replace(/\bAvenue\b/, 'Ave')
    .replace(/\bRoad\b/, 'Rd.');
}

interface Names {
  given: string;
  family: string;
}

function corruptNames(f: Rng, r: CorruptionRates, p: Person): Names {
  let given = p.given;
  let family = p.family;
  const nick = nicknamesOf(given.toLowerCase());
  if (nick.length > 0 && chance(f, r.nickname)) given = capitalise(f.helpers.arrayElement(nick));
  if (chance(f, r.givenTypo)) given = typo(f, given);
  if (chance(f, r.givenInitial)) given = given.charAt(0);
  if (chance(f, r.hyphenatedSurname)) family = `${family}-${f.person.lastName()}`;
  if (chance(f, r.familyTypo)) family = typo(f, family);
  if (chance(f, r.cosmetic)) given = cosmetic(f, given);
  if (chance(f, r.cosmetic)) family = cosmetic(f, family);
  return chance(f, r.swappedNames) ? { given: family, family: given } : { given, family };
}

function telecom(f: Rng, r: CorruptionRates, phone: string, email: string | null): ContactPoint[] {
  const out: ContactPoint[] = [];
  if (!chance(f, r.missingPhone)) {
    const formatted = f.helpers.arrayElement([
      `(${phone.slice(0, 3)}) ${phone.slice(3, 6)}-${phone.slice(6)}`,
      `${phone.slice(0, 3)}-${phone.slice(3, 6)}-${phone.slice(6)}`,
      `+1 ${phone}`,
    ]);
    out.push({ system: 'phone', value: formatted, use: 'home', part: null });
  }
  if (email !== null && !chance(f, r.missingEmail))
    out.push({ system: 'email', value: email, use: null, part: null });
  return out;
}

/** One digit changed (SSN 123-45-6789 or a 10-digit phone). */
function digitTypo(f: Rng, ssn: string): string {
  const positions = [...ssn].flatMap((c, i) => (i > 0 && /\d/.test(c) ? [i] : []));
  const i = f.helpers.arrayElement(positions);
  const d = String((Number(ssn[i] ?? '0') + f.number.int({ min: 1, max: 9 })) % 10);
  return ssn.slice(0, i) + d + ssn.slice(i + 1);
}

function identifiers(f: Rng, r: CorruptionRates, p: Person, facility: string, mrn: string): Identifier[] {
  const ids: Identifier[] = [{ system: mrnSystem(facility), value: mrn, type: 'MR' }];
  if (chance(f, r.ssnPresent)) {
    const ssn = chance(f, r.ssnTypo) ? digitTypo(f, p.ssn) : p.ssn;
    ids.push({ system: SSN_SYSTEM, value: ssn, type: 'SS' });
  }
  return ids;
}

/** A Demographics record with nothing in it (a full snapshot): spread it and set what a record has. */
export const NO_DEMOGRAPHICS: Readonly<Demographics> = EMPTY_DEMOGRAPHICS;

function demographics(f: Rng, r: CorruptionRates, p: Person, ids: Identifier[]): Demographics {
  const moved = chance(f, r.addressMove) ? newHome(f) : null;
  if (moved && chance(f, r.moveSamePostal)) moved.postalCode = p.postalCode;
  let phone = (moved && chance(f, 0.5)) || chance(f, r.phoneChange) ? phoneDigits(f) : p.phone;
  if (chance(f, r.phoneTypo)) phone = digitTypo(f, phone);
  const home = moved ?? p;
  const { given, family } = corruptNames(f, r, p);
  let line = chance(f, r.addressTypo) ? typo(f, home.line) : home.line;
  if (chance(f, r.cosmetic)) line = cosmetic(f, line);
  const email =
    p.email !== null && chance(f, r.emailChange)
      ? `${f.internet.username().toLowerCase()}@example.com`
      : p.email;
  let sex: string | null = chance(f, r.sexError) ? (p.sex === 'male' ? 'female' : 'male') : p.sex;
  if (chance(f, r.missingSex)) sex = null;
  return {
    ...NO_DEMOGRAPHICS,
    identifiers: ids,
    names: [
      { family, given: p.middle ? [given, p.middle] : [given], prefix: null, suffix: null, use: 'official' },
    ],
    birthDate: corruptDate(f, r, p.birthDate),
    administrativeGender: sex,
    addresses: chance(f, r.missingAddress)
      ? []
      : [
          {
            lines: [line],
            city: home.city,
            state: home.state,
            postalCode: home.postalCode,
            country: 'US',
            use: 'home',
            type: null,
          },
        ],
    telecom: telecom(f, r, phone, email),
  };
}

/** The person's registrations: the first at their facility, repeats at another facility or as a new MRN at the same one. */
function registrations(f: Rng, r: CorruptionRates, p: Person, mrn: (facility: string) => string) {
  const n = pickIndex(f, RECORDS_PER_PERSON) + 1;
  const out: Omit<PopulationRecord, 'patientId'>[] = [];
  for (let k = 0; k < n; k++) {
    const others = FACILITIES.filter((x) => x !== p.facility);
    const facility = k > 0 && chance(f, r.otherFacility) ? f.helpers.arrayElement(others) : p.facility;
    const ids = identifiers(f, r, p, facility, mrn(facility));
    out.push({ personId: p.id, facility, demographics: demographics(f, r, p, ids) });
  }
  return out;
}

/** A seeded population of at least `records` records, in arrival order, with ground-truth person ids. */
export function generatePopulation(opts: PopulationOptions): PopulationRecord[] {
  const f = new Faker({ locale: [en, base] });
  f.seed(opts.seed);
  const rates: CorruptionRates = { ...DEFAULT_RATES, ...opts.rates };
  const counters = new Map<string, number>();
  const mrn = (facility: string) => {
    const n = (counters.get(facility) ?? 0) + 1;
    counters.set(facility, n);
    return `${facility.toUpperCase()}${String(n).padStart(7, '0')}`;
  };
  let people = 0;
  const nextId = () => `person-${++people}`;
  const records: Omit<PopulationRecord, 'patientId'>[] = [];
  while (records.length < opts.records) {
    for (const p of household(f, rates, nextId)) records.push(...registrations(f, rates, p, mrn));
  }
  return f.helpers
    .shuffle(records)
    .map((rec, i) => ({ patientId: `pt-${String(i + 1).padStart(7, '0')}`, ...rec }));
}

/** Ground-truth pair count: Σ over persons of C(records, 2). */
export function truePairCount(records: readonly PopulationRecord[]): number {
  const per = new Map<string, number>();
  for (const r of records) per.set(r.personId, (per.get(r.personId) ?? 0) + 1);
  let n = 0;
  for (const k of per.values()) n += (k * (k - 1)) / 2;
  return n;
}
