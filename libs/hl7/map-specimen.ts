import type { Specimen } from '../events/index.js';
import { V2_TABLE } from '../terminology/code-systems.js';
import type { Seg } from './message.js';
import { textConcept, type MapScope } from './scope.js';
import type { Hl7Time } from './time.js';

/** A specimen with the times read for it (for sourceTimes). */
export interface ReadSpecimen {
  specimen: Specimen;
  times: { collectedAt: Hl7Time | null; collectedUntil: Hl7Time | null; receivedAt: Hl7Time | null };
}

/**
 * The specimens of one order group (v2-to-FHIR SPM → Specimen): each SPM (v2.5+), or, when the
 * group has none, OBR-15 specimen source (the SPS type every version before 2.5 uses; deprecated
 * but still sent). Times the SPM leaves empty fall back to the order's: OBR-7 collection start,
 * OBR-8 collection end, OBR-14 received (the SPM fields replaced those OBR fields).
 */
export function specimensOf(scope: MapScope, obr: Seg | undefined, spms: readonly Seg[]): ReadSpecimen[] {
  const orderTimes = {
    collectedAt: scope.time(obr, 7),
    collectedUntil: scope.time(obr, 8),
    receivedAt: scope.time(obr, 14),
  };
  if (spms.length > 0) return spms.map((spm) => fromSpm(scope, spm, orderTimes));
  const legacy = obr && fromObr15(scope, obr, orderTimes);
  return legacy ? [legacy] : [];
}

function read(
  specimen: Omit<Specimen, 'collectedAt' | 'collectedUntil' | 'receivedAt'>,
  times: ReadSpecimen['times'],
): ReadSpecimen {
  return {
    specimen: {
      ...specimen,
      collectedAt: times.collectedAt?.instant ?? null,
      collectedUntil: times.collectedUntil?.instant ?? null,
      receivedAt: times.receivedAt?.instant ?? null,
    },
    times,
  };
}

/**
 * SPM-2 specimen id (EIP: the filler's part, else the placer's), SPM-4 type (table 0487),
 * SPM-7 collection method (0488), SPM-8 source site (a user-defined table: no default), SPM-17 collection date/time
 * (DR: start ^ end), SPM-18 received date/time.
 */
function fromSpm(scope: MapScope, spm: Seg, order: ReadSpecimen['times']): ReadSpecimen {
  return read(
    {
      identifier: scope.eiInComponent(spm, 2, 2) ?? scope.eiInComponent(spm, 2, 1),
      type: scope.codeOrText(spm, 4, 0, V2_TABLE('0487')),
      collectionMethod: scope.codeOrText(spm, 7, 0, V2_TABLE('0488')),
      sourceSite: scope.codeOrText(spm, 8),
    },
    {
      collectedAt: scope.timeAt(spm, 17, 1) ?? order.collectedAt,
      collectedUntil: scope.timeAt(spm, 17, 2) ?? order.collectedUntil,
      receivedAt: scope.time(spm, 18) ?? order.receivedAt,
    },
  );
}

/**
 * OBR-15 (SPS: source name or code (CWE in subcomponents) ^ additives ^ collection method (text)
 * ^ body site (CWE) ^ ...): null when neither type, method nor site is sent.
 */
function fromObr15(scope: MapScope, obr: Seg, order: ReadSpecimen['times']): ReadSpecimen | null {
  const type = scope.codeInComponent(obr, 15, 1, V2_TABLE('0070'));
  // SPS.3 is text (TX), not a coded value.
  const collectionMethod = textConcept(obr.get(15, 3));
  const sourceSite = scope.codeInComponent(obr, 15, 4, V2_TABLE('0163'));
  if (!type && !collectionMethod && !sourceSite) return null;
  return read({ identifier: null, type, collectionMethod, sourceSite }, order);
}

/** sourceTimes entries for specimens at `path` (`specimens`). */
export function specimenTimes(path: string, list: readonly ReadSpecimen[]): Record<string, Hl7Time | null> {
  return Object.fromEntries(
    list.flatMap((s, i) => Object.entries(s.times).map(([k, t]) => [`${path}[${i}].${k}`, t] as const)),
  );
}
