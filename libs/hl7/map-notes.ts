import type { Note } from '../events/index.js';
import { V2_TABLE } from '../terminology/code-systems.js';
import type { Seg } from './message.js';
import type { MapScope } from './scope.js';
import type { Hl7Time } from './time.js';

/** A note with the time read for it, so that its mapper can name the instant in sourceTimes. */
export interface ReadNote {
  note: Note;
  authoredAt: Hl7Time | null;
}

/**
 * NTE → Note (HL7 v2 chapter 2 NTE; v2-to-FHIR NTE → Annotation): NTE-3 repetitions are lines
 * joined with a line feed (escapes decoded, line ends trimmed), NTE-2 source of comment (table
 * 0105) as sent, NTE-4 comment type (table 0364), NTE-6 entered date/time (v2.6+) as the time
 * the note was made. An NTE with no comment text is no note (null).
 */
export function noteOf(scope: MapScope, nte: Seg): ReadNote | null {
  const text = nte
    .textRepetitions(3)
    .map((l) => l.trimEnd())
    .join('\n');
  if (text.trim() === '') return null;
  const authoredAt = scope.time(nte, 6);
  return {
    note: {
      text,
      source: nte.get(2) || null,
      type: scope.codeOrText(nte, 4, 0, V2_TABLE('0364')),
      authoredAt: authoredAt?.instant ?? null,
    },
    authoredAt,
  };
}

/** Every NTE of a list as notes, in message order. */
export function notesOf(scope: MapScope, ntes: readonly Seg[]): ReadNote[] {
  return ntes.map((n) => noteOf(scope, n)).filter((n): n is ReadNote => n !== null);
}

/** sourceTimes entries for notes at `path` (e.g. `notes`, `observations[1].notes`). */
export function noteTimes(path: string, notes: readonly ReadNote[]): Record<string, Hl7Time | null> {
  return Object.fromEntries(notes.map((n, i) => [`${path}[${i}].authoredAt`, n.authoredAt]));
}
