import type { SniffedMsh } from '../../libs/hl7/ack.js';
import { firstComponent } from '../../libs/hl7/map-context.js';

/** A message's metric labels: never message text, and a bounded set of values. */
export interface MessageLabels {
  /** MSH-3.1, sanitised and bounded. */
  source: string;
  /** `MSH-9.1_MSH-9.2`, or `unparseable` / `unknown`. */
  type: string;
}

/** Bounded label values: sender applications are input, and labels must not grow without end. */
export function labeller(max: number): (raw: string) => string {
  const seen = new Set<string>();
  return (raw) => {
    const v = raw.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 32) || 'none';
    if (seen.has(v)) return v;
    if (seen.size >= max) return 'other';
    seen.add(v);
    return v;
  };
}

export function typeLabel(msh: SniffedMsh | null): string {
  if (!msh) return 'unparseable';
  const ok = (s: string) => /^[A-Z0-9]{2,4}$/.test(s);
  return ok(msh.messageCode) && (msh.triggerEvent === '' || ok(msh.triggerEvent))
    ? `${msh.messageCode}_${msh.triggerEvent}`
    : 'unknown';
}

export function labelsOf(msh: SniffedMsh | null, sourceLabel: (raw: string) => string): MessageLabels {
  return {
    source: sourceLabel(msh ? firstComponent(msh.sendingApplication, msh) : 'none'),
    type: typeLabel(msh),
  };
}
