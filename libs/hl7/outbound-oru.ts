import type { ObservationValue, ResultReported } from '../events/index.js';
import {
  HUB_AUTHORITY,
  fields,
  SECTION,
  nteSegments,
  patientById,
  pv1Segment,
  seg,
  textLines,
  type Ctx,
} from './outbound-segments.js';
import { comps, cwe, escOpt, ei, esc, hdSub, idOf, ndl, nm, reps } from './outbound-types.js';

/**
 * ORU^R01 from ResultReported / ResultCorrected: the inverse of
 * map-result.ts and map-observation.ts. See outbound.ts.
 */

export const RESULT_STATUS: Readonly<Record<string, string>> = {
  preliminary: 'P',
  final: 'F',
  corrected: 'C',
  cancelled: 'X',
};

/**
 * ORU^R01: PID (PV1 when the result names a visit), OBR with its report
 * notes, then each OBX with its notes. OBR-25 is the report status (C for a
 * correction), OBX-11 each line's own status.
 */
export function oruBody(c: Ctx, r: ResultReported, correction: { reason: string | null } | null): string[] {
  const filler =
    r.fillerOrderNumber ??
    (r.placerOrderNumber
      ? null
      : { system: `urn:hl7:authority:${HUB_AUTHORITY}`, value: r.resultId, type: null });
  const notes = [...r.notes];
  if (correction?.reason) notes.push({ text: correction.reason, source: null, type: null, authoredAt: null });
  const narrative = r.observations.some((v) => v.valueType === 'TX' || v.valueType === 'FT');
  // A report text with no narrative line to carry it (a FHIR conclusion) goes out as a report note.
  if (r.reportText && !narrative)
    notes.push({ text: r.reportText, source: null, type: null, authoredAt: null });
  const obr = seg(
    'OBR',
    fields([
      [1, '1'],
      [2, ei(r.placerOrderNumber, c.o.policy)],
      [3, ei(filler, c.o.policy)],
      [4, cwe(r.code, c.v27)],
      [7, c.time(r.effectiveAt, 'effectiveAt')],
      [22, c.time(r.issuedAt, 'issuedAt')],
      [24, SECTION[r.category] ?? 'OTH'],
      [25, correction || r.status === 'corrected' ? 'C' : (RESULT_STATUS[r.status] ?? 'F')],
      [32, ndl(r.performer, c.o.policy)],
    ]),
  );
  const pv1 = r.encounterId ? [pv1Segment(c, { encounterId: r.encounterId, patientClass: '' })] : [];
  return [
    ...patientById(c, r.patientId),
    ...pv1,
    obr,
    ...nteSegments(c, notes, 'notes'),
    ...r.observations.flatMap((v, i) => [
      obxSegment(c, v, i),
      ...nteSegments(c, v.notes, `observations[${i}].notes`),
    ]),
  ];
}

const SN = /^(<=|>=|<>|<|>|=)?([+-]?(?:\d+(?:\.\d*)?|\.\d+))([:/+-])([+-]?(?:\d+(?:\.\d*)?|\.\d+))$/;

/** OBX-5 (and the value type OBX-2 it travels as) of one observation. */
function obxValue(c: Ctx, v: ObservationValue): { type: string; value: string } {
  if (v.attachment) {
    // The bytes are in an AttachmentStored event, not here: the line becomes a reference pointer.
    const [type = '', subtype = ''] = v.attachment.contentType.split('/');
    const pointer =
      c.o.attachmentPointer?.(v.attachment) ?? `urn:hub:attachment:sha256:${v.attachment.sha256}`;
    return {
      type: 'RP',
      value: comps(
        esc(pointer),
        hdSub({ namespaceId: c.o.sendingApplication, universalId: '', universalIdType: '' }),
        esc(type),
        esc(subtype),
      ),
    };
  }
  const t = v.valueType;
  switch (t) {
    case 'NM':
      return { type: t, value: nm(v.valueNumber) };
    case 'SN': {
      const m = v.valueString ? SN.exec(v.valueString) : null;
      if (m) return { type: t, value: comps(escOpt(m[1]), m[2] ?? '', m[3] ?? '', m[4] ?? '') };
      return { type: t, value: comps(escOpt(v.valueComparator), nm(v.valueNumber)) };
    }
    case 'CE':
    case 'CWE':
    case 'CNE':
    case 'CF':
      return { type: t, value: cwe(v.valueCode, c.v27) };
    case 'RP': {
      const [type = '', subtype = ''] = (v.valueCode?.code ?? '').split('/');
      return { type: t, value: comps(escOpt(v.valueString), '', esc(type), esc(subtype)) };
    }
    case 'FT':
      // FT keeps its line breaks as the formatting escape.
      return { type: t, value: (v.valueString ?? '').split('\n').map(esc).join('\\.br\\') };
    default:
      return { type: t, value: v.valueString === null ? '' : textLines(v.valueString) };
  }
}

/** OBX-7 from the text, else from numeric bounds. */
function referenceRange(v: ObservationValue): string {
  if (v.referenceRange) return esc(v.referenceRange);
  if (v.referenceLow !== null && v.referenceHigh !== null)
    return `${nm(v.referenceLow)}-${nm(v.referenceHigh)}`;
  if (v.referenceLow !== null) return `>${nm(v.referenceLow)}`;
  if (v.referenceHigh !== null) return `<${nm(v.referenceHigh)}`;
  return '';
}

function obxSegment(c: Ctx, v: ObservationValue, i: number): string {
  const { type, value } = obxValue(c, v);
  // OBX-6 units: the coding with its text, else the text as sent (CWE.2 alone: no code was given).
  const units = v.unitCode
    ? cwe(
        { ...v.unitCode, display: v.unitCode.display ?? (v.unit !== v.unitCode.code ? v.unit : null) },
        c.v27,
      )
    : v.unit
      ? comps('', esc(v.unit))
      : '';
  const flags = v.interpretations.length > 0 ? v.interpretations : v.interpretation ? [v.interpretation] : [];
  return seg(
    'OBX',
    fields([
      [1, String(v.sequence)],
      [2, escOpt(type)],
      [3, cwe(v.code, c.v27)],
      [4, escOpt(v.subId)],
      [5, value],
      [6, units],
      [7, referenceRange(v)],
      // OBX-8 is IS (table 0078) before v2.7, CWE from v2.7.
      [8, reps(flags.map((f) => (c.v27 ? cwe(f, true) : idOf(f))))],
      [11, RESULT_STATUS[v.status] ?? 'F'],
      [14, c.time(v.observedAt, `observations[${i}].observedAt`)],
      [17, cwe(v.method, c.v27)],
      [20, cwe(v.bodySite, c.v27)],
    ]),
  );
}
