import { createHash } from 'node:crypto';
import { metaphone } from './phonetic.js';
import type { MatchRecord } from './types.js';

/**
 * Blocking: the passes that decide which records are compared at all. A pair
 * is compared when it shares at least one key of any pass, so each pass
 * covers corruptions the others miss (a DOB typo is caught by the name pass,
 * a surname change by the DOB pass, a move by the phone pass). Keys are the
 * first 16 hex digits of a SHA-256 of "pass:value": opaque, short and free of
 * PHI in plain text, so a store may index them.
 */

function key(pass: string, value: string): string {
  return createHash('sha256').update(`${pass}:${value}`).digest('hex').slice(0, 16);
}

function surnameParts(family: string): string[] {
  const parts = family.split(/[\s-]+/).filter((p) => p.length > 1);
  return parts.length > 1 ? [family, ...parts] : [family];
}

/** The raw (unhashed) "pass:value" strings; exported for tests and block-size diagnostics. */
export function blockingValues(r: MatchRecord): string[] {
  const out: [string, string][] = [];
  const year = r.birthDate?.slice(0, 4);
  const given = r.given[0];
  if (r.family && year) {
    for (const p of surnameParts(r.family)) out.push(['family-year', `${metaphone(p)[0]}|${year}`]);
  }
  if (r.birthDate?.length === 10) out.push(['dob', r.birthDate]);
  // Given and family sorted: a record with the names swapped lands in the same block.
  if (given && given.length > 1 && r.family) {
    out.push(['names', [metaphone(given)[0], metaphone(r.family)[0]].sort().join('|')]);
  }
  for (const p of r.phones) out.push(['phone', p]);
  if (r.postalCode && given) out.push(['postal-initial', `${r.postalCode}|${given[0]}`]);
  if (r.email) out.push(['email', r.email]);
  for (const i of r.identifiers) out.push(['id', `${i.system}|${i.value}`]);
  return [...new Set(out.map(([p, v]) => `${p}:${v}`))];
}

/** The record's blocking keys (opaque strings, safe to store and index). */
export function blockingKeys(r: MatchRecord): string[] {
  return blockingValues(r).map((v) => key('v1', v));
}
