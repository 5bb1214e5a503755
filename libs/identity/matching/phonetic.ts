import { doubleMetaphone } from 'double-metaphone';

// Memoised: the same names recur across thousands of candidate pairs. Bounded
// so that a long-running matcher does not grow without limit.
const MAX = 100_000;
const cache = new Map<string, readonly [string, string]>();

/** Double Metaphone codes (primary, alternate) of a folded name; hyphens and spaces ignored. */
export function metaphone(name: string): readonly [string, string] {
  const hit = cache.get(name);
  if (hit) return hit;
  if (cache.size >= MAX) cache.clear();
  const codes = doubleMetaphone(name.replace(/[\s-]/g, ''));
  cache.set(name, codes);
  return codes;
}

/** True when two names share a Double Metaphone code (primary or alternate). */
export function soundAlike(a: string, b: string): boolean {
  const [a1, a2] = metaphone(a);
  const [b1, b2] = metaphone(b);
  if (a1 === '' && a2 === '') return false;
  return a1 === b1 || a1 === b2 || (a2 !== '' && (a2 === b1 || a2 === b2));
}
