import type { ClinicalEvent, ObservationValue } from '../events/index.js';
import { deterministicEventId } from '../events/index.js';
import { categoryForSection, resultStatusFor, V2_TABLE } from './codes.js';
import { declaredContentType, decodeEdData, edContentType, MIME_TYPE_SYSTEM, sha256Hex } from './ed.js';
import { fieldName, loc, refuse, type Seg } from './message.js';
import { orderNumbers } from './map-order.js';
import { encounterIdFor, instantOf, resultIdFor, type MapScope } from './scope.js';

export const RESULT_TRIGGERS = ['R01'] as const;

interface Report {
  pid: Seg;
  pv1: Seg | undefined;
  orc: Seg | undefined;
  obr: Seg;
  obx: Seg[];
  /** NTE comments (after the OBR or after an OBX), in message order. */
  notes: Seg[];
}

/** OBR groups with the PID/PV1/ORC in force where each OBR starts (an ORU may carry several patients). */
function reports(scope: MapScope): Report[] {
  const out: Report[] = [];
  let pid: Seg | undefined;
  let pv1: Seg | undefined;
  let orc: Seg | undefined;
  let current: Report | undefined;
  for (const s of scope.msg.segments) {
    switch (s.name) {
      case 'PID':
        pid = s;
        pv1 = undefined;
        orc = undefined;
        current = undefined;
        break;
      case 'PV1':
        pv1 = s;
        break;
      case 'ORC':
        orc = s;
        current = undefined;
        break;
      case 'OBR':
        if (!pid)
          throw refuse('AE', '101', 'required segment PID is missing before OBR', {
            segment: 'PID',
            segmentSequence: 1,
          });
        current = { pid, pv1, orc, obr: s, obx: [], notes: [] };
        out.push(current);
        break;
      case 'OBX':
        current?.obx.push(s);
        break;
      case 'NTE':
        current?.notes.push(s);
        break;
      default:
        break;
    }
  }
  return out;
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

function numberOrRefuse(raw: string, seg: Seg, field: number, component?: number): number | null {
  if (raw === '') return null;
  if (!NUMBER.test(raw)) {
    throw refuse(
      'AE',
      '102',
      `${fieldName(seg, field, component)} is not a valid number`,
      loc(seg, field, component),
    );
  }
  return Number(raw);
}

const COMPARATORS = new Set(['<', '>', '<=', '>=', '=', '<>']);

/** An ED value lifted out of its observation, to become an AttachmentStored event. */
interface Lifted {
  sha256: string;
  contentType: string;
  data: Buffer;
}

/**
 * OBX-5 of type ED: the decoded bytes, or null when OBX-5 is empty. The data
 * component is read escape-decoded (HL7 escapes first), then decoded from
 * its declared encoding; data that is not what ED.4 says is refused (AE)
 * rather than stored as some other file.
 */
function encapsulated(obx: Seg): { bytes: Buffer; contentType: string } | null {
  const data = obx.get(5, 5);
  if (data === '') return null;
  const decoded = decodeEdData(data, obx.get(5, 4));
  if (!decoded.ok) {
    if (decoded.problem === 'missing-encoding')
      throw refuse('AE', '101', 'required component OBX-5.4 (ED encoding) is missing', loc(obx, 5, 4));
    if (decoded.problem === 'unknown-encoding')
      throw refuse('AE', '103', 'OBX-5.4 (ED encoding) is not A, Hex or Base64 (table 0299)', loc(obx, 5, 4));
    throw refuse('AE', '102', 'OBX-5 (ED data) is not valid in its declared encoding', loc(obx, 5));
  }
  return { bytes: decoded.bytes, contentType: edContentType(obx.get(5, 2), obx.get(5, 3), decoded.bytes) };
}

function observation(
  scope: MapScope,
  obx: Seg,
  index: number,
  reportStatus: string,
  lifted: Lifted[] = [],
): ObservationValue {
  const code = scope.code(obx, 3);
  if (!code)
    throw refuse('AE', '101', 'required field OBX-3 (observation identifier) is missing', loc(obx, 3));
  const valueType = obx.get(2).toUpperCase();
  // OBX-5 `""` (the value deleted) is no value: it needs no value type.
  if (valueType === '' && obx.isSent(5) && !obx.isNull(5)) {
    throw refuse('AE', '101', 'required field OBX-2 (value type) is missing for a valued OBX-5', loc(obx, 2));
  }
  const setId = Number(obx.get(1));
  const v: ObservationValue = {
    sequence: Number.isSafeInteger(setId) && setId > 0 ? setId : index + 1,
    code,
    valueType,
    valueNumber: null,
    valueString: null,
    valueCode: null,
    valueComparator: null,
    unit: obx.get(6, 1) || obx.get(6, 2) || null,
    referenceRange: obx.get(7) || null,
    interpretation: scope.code(obx, 8, 0, V2_TABLE('0078')),
    status: resultStatusFor(obx.get(11)) ?? reportStatus,
    observedAt: instantOf(scope.time(obx, 14)),
    attachment: null,
    observationId: null,
    subId: null,
    unitCode: null,
    referenceLow: null,
    referenceHigh: null,
    interpretations: [],
    notes: [],
    components: [],
    method: null,
    bodySite: null,
  };
  switch (valueType) {
    case 'NM':
      v.valueNumber = numberOrRefuse(obx.get(5), obx, 5);
      break;
    case 'SN': {
      const comparator = obx.get(5, 1);
      const n1 = obx.get(5, 2);
      const sep = obx.get(5, 3);
      const n2 = obx.get(5, 4);
      if (comparator !== '' && !COMPARATORS.has(comparator)) {
        throw refuse('AE', '102', 'OBX-5.1 is not a valid SN comparator', loc(obx, 5, 1));
      }
      v.valueNumber = numberOrRefuse(n1, obx, 5, 2);
      numberOrRefuse(n2, obx, 5, 4);
      v.valueComparator = comparator === '' ? null : comparator;
      // A ratio or range (1:128, 10-20) is not one number: it is kept as text too.
      if (sep !== '' || n2 !== '') v.valueString = `${comparator}${n1}${sep}${n2}`;
      break;
    }
    case 'ED': {
      // The bytes leave the result event (docs/large-messages.md): it carries the reference.
      const ed = encapsulated(obx);
      if (ed) {
        const sha256 = sha256Hex(ed.bytes);
        v.attachment = { sha256, size: ed.bytes.length, contentType: ed.contentType, title: code.display };
        lifted.push({ sha256, contentType: ed.contentType, data: ed.bytes });
      }
      break;
    }
    case 'RP': {
      // A reference pointer (chapter 2A RP: pointer ^ application ID ^ type of data ^ subtype):
      // a link to a document another system holds, e.g. a PACS. The same shape as a FHIR
      // presentedForm with only a url (libs/fhir mapping.ts): pointer in valueString, MIME type
      // (when type/subtype name one) in valueCode; the title is the code's display, as for ED.
      // Seg.get decodes the escapes a pointer needs (\T\ for & in a URL, \S\, \F\, \E\).
      v.valueString = obx.get(5, 1) || null;
      const contentType = declaredContentType(obx.get(5, 3), obx.get(5, 4));
      v.valueCode = contentType
        ? {
            system: MIME_TYPE_SYSTEM,
            code: contentType,
            display: null,
            version: null,
            alternates: [],
            text: null,
          }
        : null;
      break;
    }
    case 'CE':
    case 'CWE':
    case 'CNE':
    case 'CF':
      v.valueCode = scope.code(obx, 5);
      v.valueString = v.valueCode?.display ?? null;
      break;
    default: {
      // ST, TX, FT and the rest: text, each repetition a line (TX/FT narrative).
      const lines = obx.textRepetitions(5).map((l) => l.trimEnd());
      const text = lines.join('\n');
      v.valueString = text.trim() === '' ? null : text;
      break;
    }
  }
  return v;
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
    const corrected = status === 'corrected' || obxStatuses.includes('corrected');
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
    const lifted: Lifted[] = [];
    const observations = r.obx.map((o, i) => observation(scope, o, i, status, lifted));
    const narrative: string[] = [];
    for (const o of observations) {
      if ((o.valueType === 'TX' || o.valueType === 'FT') && o.valueString !== null)
        narrative.push(o.valueString);
    }
    for (const n of r.notes) {
      const text = n
        .textRepetitions(3)
        .map((l) => l.trimEnd())
        .join('\n');
      if (text.trim() !== '') narrative.push(text);
    }
    const visit = scope.visitNumber(r.pv1, r.pid);
    const effectiveAt = scope.time(r.obr, 7);
    const issuedAt = scope.time(r.obr, 22);
    const times = {
      effectiveAt,
      issuedAt,
      ...Object.fromEntries(r.obx.map((o, i) => [`observations[${i}].observedAt`, scope.time(o, 14)])),
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
      resultId: resultIdFor(reportNumber, code),
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
      notes: [],
      specimens: [],
      placerOrderNumber: null,
      fillerOrderNumber: null,
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
