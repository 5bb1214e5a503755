/**
 * Edge checks on request input shared by every HTTP service: a control
 * character is never part of an id, a search value or a header the hub
 * reads (a lone surrogate neither), and a NUL stalls Postgres writers (SQLSTATE 22021 on text, 22P05
 * on jsonb) and the audit trail behind them. Refuse it with 400 before any
 * token check, query or audit record takes the value.
 */

/** U+0000–U+001F, U+007F and lone surrogates (no UTF-8 form: the rule of libs/events unstorableTextPaths). */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHAR = /[\u0000-\u001f\u007f]|\p{Cs}/u;

/** A parameter name fit for a diagnostic: bounded, only harmless characters. */
export const safeName = (k: string): string => k.slice(0, 40).replace(/[^\w.:$*-]/g, '?');

// Deeper than any body a route declares; a body nested deeper is refused as it is.
const MAX_DEPTH = 32;

/** Whether a value holds a control character in any string or key, at any depth (bounded). */
export function holdsControlChar(v: unknown, depth = 0): boolean {
  if (typeof v === 'string') return CONTROL_CHAR.test(v);
  if (typeof v !== 'object' || v === null) return false;
  if (depth >= MAX_DEPTH) return true;
  if (Array.isArray(v)) return v.some((x) => holdsControlChar(x, depth + 1));
  return Object.entries(v as Record<string, unknown>).some(
    ([k, x]) => CONTROL_CHAR.test(k) || holdsControlChar(x, depth + 1),
  );
}

/** The first top-level name in `given` (params, query, form or JSON body) holding a control character, or null. */
export function controlCharIn(given: unknown): string | null {
  if (typeof given !== 'object' || given === null) return null;
  if (Array.isArray(given)) return holdsControlChar(given) ? '(body)' : null;
  for (const [k, v] of Object.entries(given as Record<string, unknown>)) {
    if (CONTROL_CHAR.test(k) || holdsControlChar(v, 1)) return safeName(k);
  }
  return null;
}
