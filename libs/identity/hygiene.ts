/**
 * Identifier hygiene: an identifier is what it looks like.
 *
 * The hub keys patients, visits and orders by identifier values (and their
 * systems). Two values that render the same on a screen but differ in code
 * points would silently create a second patient: a zero-width space in an
 * MRN, a right-to-left override, full-width digits, a Cyrillic "А" among
 * Latin letters. checkIdentifier returns the value in its one canonical form
 * (Unicode NFC, surrounding white space trimmed) or the specific problem.
 *
 * Refuse, don't fold. Compatibility characters (full-width "１２３", ligatures,
 * superscripts, NBSP) could be folded with NFKC instead, but a silent fold
 * is a guess about what the sender meant: the sender's own system still holds
 * the unfolded value, so its next message, a query back, or a reconciliation
 * report would not match what the hub stored. A refusal (HL7 AE / FHIR 400)
 * makes the sender fix the value at its source, and the log never holds a
 * value that no system sent. The same reasoning applies to invisible and
 * look-alike characters, which have no safe fold at all.
 *
 * Mixed scripts follow Unicode UTS #39 section 5.2, "Highly Restrictive":
 * a value may use one script (Common and Inherited characters such as
 * digits and punctuation go with any), or Latin together with Han +
 * Hiragana + Katakana, Han + Bopomofo, or Han + Hangul. Latin mixed with
 * Cyrillic or Greek (the classic look-alikes) is refused. Digits must come
 * from one numbering system (UTS #39 "mixed numbers"). Not checked: whole-
 * script confusables (an all-Cyrillic value that looks Latin), which would
 * need the confusables data and would refuse legitimate non-Latin sites.
 *
 * Which characters belong to which script is the JavaScript engine's own
 * Unicode data (`\p{Script_Extensions=…}`), not a table kept here; the list
 * below only names the Script property's values (ISO 15924 codes) to ask
 * about. No npm package implements UTS #39 restriction levels (the ones
 * published cover the confusables skeleton only), so none is used.
 *
 * Problems are named, never quoted: identifier values are PHI.
 */

import { HubError } from '../errors/index.js';

export type IdentifierProblem =
  | 'empty'
  | 'lone-surrogate'
  | 'control'
  | 'bidi-control'
  | 'invisible'
  | 'private-use'
  | 'unassigned'
  | 'compatibility'
  | 'mixed-numbers'
  | 'mixed-scripts';

/** What each problem means, phrased to follow "<field> ..." in an error message. Never the value. */
export const IDENTIFIER_PROBLEMS: Readonly<Record<IdentifierProblem, string>> = {
  empty: 'is empty',
  'lone-surrogate': 'is not valid Unicode (it contains an unpaired UTF-16 surrogate)',
  control: 'contains a control character or a line/paragraph separator',
  'bidi-control': 'contains a bidirectional text control (e.g. RLO or LRM) that changes how it is displayed',
  invisible: 'contains an invisible character (zero-width space/joiner, BOM or another format character)',
  'private-use': 'contains a private-use character',
  unassigned: 'contains an unassigned code point or a noncharacter',
  compatibility:
    'contains a compatibility character (e.g. full-width digits or letters, ligatures, non-breaking space) that reads as another character; send the plain form',
  'mixed-numbers': 'mixes digits of more than one numbering system',
  'mixed-scripts':
    'mixes letters of different scripts (e.g. Latin with Cyrillic or Greek look-alikes), which Unicode UTS #39 does not allow in one identifier',
};

export type IdentifierCheck =
  { ok: true; value: string } | { ok: false; problem: IdentifierProblem; message: string };

function problem(p: IdentifierProblem): IdentifierCheck {
  return { ok: false, problem: p, message: IDENTIFIER_PROBLEMS[p] };
}

const LONE_SURROGATE = /\p{Cs}/u;
const CONTROL = /[\p{Cc}\p{Zl}\p{Zp}]/u;
const BIDI_CONTROL = /\p{Bidi_Control}/u;
// Cf: ZWSP, ZWJ/ZWNJ, word joiner, BOM, soft hyphen...; DI adds fillers, variation selectors, CGJ.
const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
const PRIVATE_USE = /\p{Co}/u;
const UNASSIGNED = /\p{Cn}/u;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const DECIMAL_DIGIT = /\p{Nd}/u;

/**
 * The values of the Unicode Script property (ISO 15924 short codes) that the
 * running engine knows; membership comes from `\p{scx=…}`. Zyyy (Common),
 * Zinh (Inherited) and Zzzz (Unknown) are left out on purpose: a character
 * in none of these scripts is Common or Inherited and goes with any script.
 */
const SCRIPT_CODES = (
  'Adlm Aghb Ahom Arab Armi Armn Avst Bali Bamu Bass Batk Beng Berf Bhks Bopo Brah Brai Bugi Buhd ' +
  'Cakm Cans Cari Cham Cher Chrs Copt Cpmn Cprt Cyrl Deva Diak Dogr Dsrt Dupl Egyp Elba Elym Ethi ' +
  'Gara Geor Glag Gong Gonm Goth Gran Grek Gujr Gukh Guru Hang Hani Hano Hatr Hebr Hira Hluw Hmng ' +
  'Hmnp Hung Ital Java Kali Kana Kawi Khar Khmr Khoj Kits Knda Krai Kthi Lana Laoo Latn Lepc Limb ' +
  'Lina Linb Lisu Lyci Lydi Mahj Maka Mand Mani Marc Medf Mend Merc Mero Mlym Modi Mong Mroo Mtei ' +
  'Mult Mymr Nagm Nand Narb Nbat Newa Nkoo Nshu Ogam Olck Onao Orkh Orya Osge Osma Ougr Palm Pauc ' +
  'Perm Phag Phli Phlp Phnx Plrd Prti Rjng Rohg Runr Samr Sarb Saur Sgnw Shaw Shrd Sidd Sidt Sind ' +
  'Sinh Sogd Sogo Sora Soyo Sund Sunu Sylo Syrc Tagb Takr Tale Talu Taml Tang Tavt Tayo Telu Tfng ' +
  'Tglg Thaa Thai Tibt Tirh Tnsa Todr Tols Toto Tutg Ugar Vaii Vith Wara Wcho Xpeo Xsux Yezi Yiii Zanb'
).split(' ');

const SCRIPTS: readonly { code: string; re: RegExp }[] = SCRIPT_CODES.flatMap((code) => {
  try {
    return [{ code, re: new RegExp(`\\p{Script_Extensions=${code}}`, 'u') }];
  } catch {
    // A code newer than this engine's Unicode: no character can have it here.
    return [];
  }
});

// UTS #39 5.1: Han, Hiragana, Katakana, Hangul and Bopomofo are augmented with the
// writing systems they are used in (Jpan, Kore, Hanb), so Japanese, Korean and
// Chinese-with-Bopomofo text counts as a single script.
const AUGMENT: Readonly<Record<string, readonly string[]>> = {
  Hani: ['Hanb', 'Jpan', 'Kore'],
  Hira: ['Jpan'],
  Kana: ['Jpan'],
  Hang: ['Kore'],
  Bopo: ['Hanb'],
};

const scriptCache = new Map<number, ReadonlySet<string> | null>();

/** Augmented script set of a code point; null for Common/Inherited (compatible with every script). */
function scriptsOf(cp: number): ReadonlySet<string> | null {
  const hit = scriptCache.get(cp);
  if (hit !== undefined) return hit;
  const ch = String.fromCodePoint(cp);
  const set = new Set<string>();
  for (const s of SCRIPTS) {
    if (s.re.test(ch)) {
      set.add(s.code);
      for (const a of AUGMENT[s.code] ?? []) set.add(a);
    }
  }
  const out = set.size === 0 ? null : set;
  if (scriptCache.size < 10_000) scriptCache.set(cp, out);
  return out;
}

/** The code point of one character of a for-of over a string (never empty: for-of yields whole code points). */
function codePointOf(ch: string): number {
  const cp = ch.codePointAt(0);
  if (cp === undefined) throw new HubError('HUB_INTERNAL', 'a string iterated to an empty character');
  return cp;
}

/** Intersection of the script sets; null means "all scripts" (only Common/Inherited characters). */
function resolve(sets: readonly ReadonlySet<string>[]): Set<string> | null {
  const [first, ...rest] = sets;
  if (first === undefined) return null;
  const acc = new Set(first);
  for (const s of rest) for (const x of acc) if (!s.has(x)) acc.delete(x);
  return acc;
}

/** UTS #39 5.2 "Highly Restrictive" (single script, or Latin + Jpan / Hanb / Kore). */
export function isHighlyRestrictive(value: string): boolean {
  const sets: ReadonlySet<string>[] = [];
  for (const ch of value) {
    const s = scriptsOf(codePointOf(ch));
    if (s) sets.push(s);
  }
  const all = resolve(sets);
  if (all === null || all.size > 0) return true;
  const nonLatin = resolve(sets.filter((s) => !s.has('Latn')));
  return nonLatin === null || ['Jpan', 'Hanb', 'Kore'].some((c) => nonLatin.has(c));
}

/**
 * The code point of the zero of a decimal digit's numbering system. Unicode
 * guarantees decimal digits (Nd) come in contiguous runs 0..9, so the zero is
 * found from the start of the run the digit is in.
 */
function zeroOf(cp: number): number {
  let start = cp;
  while (start > 0 && DECIMAL_DIGIT.test(String.fromCodePoint(start - 1))) start--;
  return start + Math.floor((cp - start) / 10) * 10;
}

function hasMixedNumbers(value: string): boolean {
  let zero: number | undefined;
  for (const ch of value) {
    if (!DECIMAL_DIGIT.test(ch)) continue;
    const z = zeroOf(codePointOf(ch));
    if (zero !== undefined && z !== zero) return true;
    zero = z;
  }
  return false;
}

/**
 * The canonical form of an identifier value (or system), or why it cannot be
 * one. Pure; the message never contains the value.
 */
export function checkIdentifier(raw: string): IdentifierCheck {
  // normalize() keeps lone surrogates, and every later test assumes well-formed text.
  if (LONE_SURROGATE.test(raw)) return problem('lone-surrogate');
  const value = raw.normalize('NFC').trim();
  if (value === '') return problem('empty');
  // Nearly every identifier is printable ASCII: one test settles it.
  if (PRINTABLE_ASCII.test(value)) return { ok: true, value };
  if (CONTROL.test(value)) return problem('control');
  if (BIDI_CONTROL.test(value)) return problem('bidi-control');
  if (INVISIBLE.test(value)) return problem('invisible');
  if (PRIVATE_USE.test(value)) return problem('private-use');
  if (UNASSIGNED.test(value)) return problem('unassigned');
  if (value.normalize('NFKC') !== value) return problem('compatibility');
  if (hasMixedNumbers(value)) return problem('mixed-numbers');
  if (!isHighlyRestrictive(value)) return problem('mixed-scripts');
  return { ok: true, value };
}

/**
 * Text that is not an identifier (names, addresses, notes): it keeps its
 * characters, but in NFC, so that the same name sent composed by one sender
 * and decomposed by another is stored (and compared, and indexed) as one.
 */
export function normaliseText(value: string): string {
  // Below U+0300 every character is already NFC and none composes with what precedes it: a
  // 5 MB base64 attachment or an ASCII name skips the normaliser (a regex scan is ~5x cheaper).
  return MAY_NEED_NFC.test(value) ? value.normalize('NFC') : value;
}

const MAY_NEED_NFC = /[\u0300-\uffff]/;

/** Whether a string is well-formed UTF-16 (no unpaired surrogate), i.e. encodable as UTF-8. */
export function isWellFormedText(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}
