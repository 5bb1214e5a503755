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

/** The first name or value in `given` (params, query or form) holding a control character, or null. */
export function controlCharIn(given: unknown): string | null {
  if (typeof given !== 'object' || given === null) return null;
  for (const [k, v] of Object.entries(given as Record<string, unknown>)) {
    const values = Array.isArray(v) ? (v as unknown[]) : [v];
    if (CONTROL_CHAR.test(k) || values.some((x) => typeof x === 'string' && CONTROL_CHAR.test(x))) {
      return safeName(k);
    }
  }
  return null;
}
