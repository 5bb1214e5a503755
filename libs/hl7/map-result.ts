import { deterministicEventId, type ClinicalEvent, type Code } from '../events/index.js';
import { observationIdFor } from '../events/ids.js';
import { categoryForSection, resultStatusFor } from './codes.js';
import { loc, refuse, type Seg } from './message.js';
import { noteTimes, notesOf } from './map-notes.js';
import { observation, type Lifted } from './map-observation.js';
import { orderNumbers } from './map-order.js';
import { specimenTimes, specimensOf } from './map-specimen.js';
import { encounterIdFor, instantOf, resultIdFor, type MapScope } from './scope.js';

export const RESULT_TRIGGERS = ['R01'] as const;

interface Report {
  pid: Seg;
  pv1: Seg | undefined;
  orc: Seg | undefined;
  obr: Seg;
  obx: Seg[];
  /** NTE after the OBR (or after its ORC) before any OBX: report-level comments. */
  notes: Seg[];
  /** NTE after each OBX, by the OBX's index in `obx`. */
  obxNotes: Seg[][];
  /** SPM segments of the order group (v2.5+). */
  spm: Seg[];
}

/**
 * OBR groups with the PID/PV1/ORC in force where each OBR starts (an ORU may carry several
 * patients). NTE annotate the segment they follow (chapter 7 ORU^R01: OBR [{NTE}], OBX [{NTE}]):
 * after an OBX that observation, after the OBR, its ORC or an SPM the report. NTE after PID
 * (patient comments) have no field in a result event and are not mapped (mapping.md). OBX in a
 * SPM group (specimen observations) stay observations of the report: the schema has no
 * specimen observation, and dropping them would lose results.
 */
function reports(scope: MapScope): Report[] {
  const out: Report[] = [];
  let pid: Seg | undefined;
  let pv1: Seg | undefined;
  let orc: Seg | undefined;
  let orcNotes: Seg[] = [];
  let current: Report | undefined;
  /** Where the next NTE goes: the current OBX's notes, the report's, or the ORC's (next OBR). */
  let noteTarget: Seg[] | undefined;
  for (const s of scope.msg.segments) {
    switch (s.name) {
      case 'PID':
        pid = s;
        pv1 = undefined;
        orc = undefined;
        current = undefined;
        noteTarget = undefined;
        break;
      case 'PV1':
        pv1 = s;
        break;
      case 'ORC':
        orc = s;
        current = undefined;
        orcNotes = [];
        noteTarget = orcNotes;
        break;
      case 'OBR':
        if (!pid)
          throw refuse('AE', '101', 'required segment PID is missing before OBR', {
            segment: 'PID',
            segmentSequence: 1,
          });
        // NTE after an ORC belong to the order, i.e. to the first report of that order.
        current = { pid, pv1, orc, obr: s, obx: [], notes: orcNotes, obxNotes: [], spm: [] };
        orcNotes = [];
        out.push(current);
        noteTarget = current.notes;
        break;
      case 'OBX':
        if (current) {
          current.obx.push(s);
          noteTarget = [];
          current.obxNotes.push(noteTarget);
        }
        break;
      case 'SPM':
        if (current) {
          current.spm.push(s);
          noteTarget = current.notes;
        }
        break;
      case 'NTE':
        noteTarget?.push(s);
        break;
      default:
        break;
    }
  }
  return out;
}

/**
 * Stable observation ids for a report's lines (ObservationValue.observationId): from the report
 * id, the OBX-3 code and OBX-4 sub-id, so a corrected line (OBX-11 C) in a later version has the
 * id of the line it replaces. Lines that repeat the same code and sub-id (a narrative sent as
 * several OBX) are told apart by their occurrence (second and later: "#n" after the sub-id),
 * which the first keeps unmarked, so it matches the FHIR route's id for the same value.
 */
function observationIds(resultId: string, lines: readonly { code: Code; subId: string }[]): string[] {
  const seen = new Map<string, number>();
  return lines.map(({ code, subId }) => {
    const key = JSON.stringify([code.system, code.code, subId]);
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return observationIdFor(resultId, code, n === 1 ? subId || null : `${subId}#${n}`);
  });
}

/**
 * The report status: OBR-25, else derived from the OBX-11 of its lines; `corrected` when either
 * says C (the report is then a ResultCorrected).
 */
function reportStatus(r: Report): { status: string; corrected: boolean } {
  const obr25 = r.obr.get(25);
  const obxStatuses = r.obx.map((o) => resultStatusFor(o.get(11)));
  let status = resultStatusFor(obr25);
  if (obr25 === '') {
    if (obxStatuses.length === 0 || obxStatuses.some((s) => s === undefined)) {
      throw refuse('AE', '101', 'required field OBR-25 (result status) is missing', loc(r.obr, 25));
    }
    status = obxStatuses.includes('corrected')
      ? 'corrected'
      : obxStatuses.every((s) => s === 'final' || s === 'cancelled')
        ? 'final'
        : 'preliminary';
  }
  if (status === undefined) {
    throw refuse('AE', '103', 'OBR-25 (result status) is not a result status the hub maps', loc(r.obr, 25));
  }
  return { status, corrected: status === 'corrected' || obxStatuses.includes('corrected') };
}

/**
 * ORU^R01 → one ResultReported per OBR (a report with its OBX lines), or
 * ResultCorrected when OBR-25 or any OBX-11 says C.
 */
export function mapResult(scope: MapScope): ClinicalEvent[] {
  scope.requireSegment('PID');
  const all = reports(scope);
  if (all.length === 0) scope.requireSegment('OBR');
  const events: ClinicalEvent[] = [];
  const stored: {
    patientId: string;
    item: Lifted;
    occurredAt: ReturnType<MapScope['messageTime']>;
  }[] = [];
  for (const r of all) {
    const { patientId } = scope.patient(r.pid);
    const code = scope.code(r.obr, 4);
    if (!code)
      throw refuse(
        'AE',
        '101',
        'required field OBR-4 (universal service identifier) is missing',
        loc(r.obr, 4),
      );
    const { status, corrected } = reportStatus(r);
    const { placer, filler, orderId } = orderNumbers(scope, r.orc, r.obr);
    const reportNumber = filler ?? placer;
    if (!reportNumber) {
      throw refuse(
        'AE',
        '101',
        'required field OBR-3 (filler order number) is missing and OBR-2/ORC-2/ORC-3 are empty',
        loc(r.obr, 3),
      );
    }
    const resultId = resultIdFor(reportNumber, code);
    const ids = observationIds(
      resultId,
      r.obx.map((o) => ({ code: scope.code(o, 3) ?? code, subId: o.get(4) })),
    );
    const lifted: Lifted[] = [];
    const obxNotes = r.obx.map((_, i) => notesOf(scope, r.obxNotes[i] ?? []));
    const observations = r.obx.map((o, i) =>
      observation(scope, o, i, status, lifted, {
        observationId: ids[i] ?? null,
        notes: (obxNotes[i] ?? []).map((n) => n.note),
      }),
    );
    // The narrative is the report's text lines (TX/FT); comments (NTE) are notes, no longer
    // folded in here (events written before notes existed have them in reportText).
    const narrative: string[] = [];
    for (const o of observations) {
      if ((o.valueType === 'TX' || o.valueType === 'FT') && o.valueString !== null)
        narrative.push(o.valueString);
    }
    const notes = notesOf(scope, r.notes);
    const specimens = specimensOf(scope, r.obr, r.spm);
    const visit = scope.visitNumber(r.pv1, r.pid);
    const effectiveAt = scope.time(r.obr, 7);
    const issuedAt = scope.time(r.obr, 22);
    const times = {
      effectiveAt,
      issuedAt,
      ...Object.fromEntries(r.obx.map((o, i) => [`observations[${i}].observedAt`, scope.time(o, 14)])),
      ...Object.fromEntries(
        obxNotes.flatMap((n, i) => Object.entries(noteTimes(`observations[${i}].notes`, n))),
      ),
      ...noteTimes('notes', notes),
      ...specimenTimes('specimens', specimens),
    };
    // Without OBR-24: discrete values (numbers, codes, short strings) are lab-like;
    // narrative-only reports (and documents: ED content, RP links) are not assumed to be imaging.
    const hasDiscrete = observations.some((o) => !['TX', 'FT', 'ED', 'RP', ''].includes(o.valueType));
    const type = corrected ? 'ResultCorrected' : 'ResultReported';
    const occurredAt = issuedAt ?? effectiveAt ?? scope.messageTime();
    for (const item of lifted) stored.push({ patientId, item, occurredAt });
    const common = {
      meta: scope.meta(type, occurredAt, times),
      patientId,
      resultId,
      orderId,
      encounterId: visit ? encounterIdFor(visit) : null,
      code,
      category: categoryForSection(r.obr.get(24)) ?? (hasDiscrete ? 'laboratory' : 'other'),
      status: corrected ? 'corrected' : status,
      effectiveAt: instantOf(effectiveAt),
      issuedAt: instantOf(issuedAt),
      observations,
      reportText: narrative.length > 0 ? narrative.join('\n') : null,
      performer: scope.practitionerNdl(r.obr, 32),
      notes: notes.map((n) => n.note),
      specimens: specimens.map((sp) => sp.specimen),
      placerOrderNumber: placer,
      fillerOrderNumber: filler,
      // OBR-4 is both what was ordered and what is reported: HL7 sends no separate order code.
      orderCode: null,
    };
    events.push(
      type === 'ResultCorrected'
        ? {
            type,
            data: { ...common, correctionReason: null },
          }
        : { type, data: common },
    );
  }
  return [...attachmentEvents(scope, stored), ...events];
}

/**
 * One AttachmentStored per patient and content, ahead of the results that
 * refer to it (same publish, before the ACK). Its meta is taken after every
 * result's, so the result event ids stay what they were before attachments
 * were lifted; its event id is derived from patient and sha256 alone, so the
 * same content sent again (a resend, a corrected report with the same PDF)
 * is the same fact and read models keep one copy.
 */
function attachmentEvents(
  scope: MapScope,
  stored: { patientId: string; item: Lifted; occurredAt: ReturnType<MapScope['messageTime']> }[],
): ClinicalEvent[] {
  const seen = new Set<string>();
  const out: ClinicalEvent[] = [];
  for (const { patientId, item, occurredAt } of stored) {
    const key = `${patientId}|${item.sha256}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const meta = {
      ...scope.meta('AttachmentStored', occurredAt),
      eventId: deterministicEventId(['attachment', patientId, item.sha256]),
    };
    out.push({
      type: 'AttachmentStored',
      data: {
        meta,
        patientId,
        sha256: item.sha256,
        size: item.data.length,
        contentType: item.contentType,
        data: item.data,
      },
    });
  }
  return out;
}
