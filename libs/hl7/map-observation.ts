import { codeOf, type Note, type ObservationValue } from '../events/index.js';
import { resultStatusFor, V2_TABLE } from './codes.js';
import { declaredContentType, decodeEdData, edContentType, MIME_TYPE_SYSTEM, sha256Hex } from './ed.js';
import { fieldName, loc, refuse, type Seg } from './message.js';
import { instantOf, type MapScope } from './scope.js';

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
export interface Lifted {
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

/**
 * OBX → ObservationValue (v2-to-FHIR OBX → Observation). `observationId` is given by the report
 * (it needs the report id and the other lines); `notes` are the NTE that follow this OBX.
 */
export function observation(
  scope: MapScope,
  obx: Seg,
  index: number,
  reportStatus: string,
  lifted: Lifted[],
  identity: { observationId: string | null; notes: Note[] },
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
  const range = obx.get(7) || null;
  const bounds = referenceBounds(range ?? '');
  // Every OBX-8 repetition (abnormal flags, table 0078; CWE from v2.7), in order.
  const interpretations = scope.codeList(obx, 8, V2_TABLE('0078'));
  const v: ObservationValue = {
    sequence: Number.isSafeInteger(setId) && setId > 0 ? setId : index + 1,
    code,
    valueType,
    valueNumber: null,
    valueString: null,
    valueCode: null,
    valueComparator: null,
    // OBX-6 as CWE → Quantity (v2-to-FHIR): the unit text is CWE.2, else CWE.1; the coding keeps
    // code and system (UCUM when OBX-6.3 says so), so local unit text is never mistaken for UCUM.
    unit: obx.get(6, 2) || obx.get(6, 1) || null,
    referenceRange: range,
    interpretation: interpretations[0] ?? null,
    status: resultStatusFor(obx.get(11)) ?? reportStatus,
    observedAt: instantOf(scope.time(obx, 14)),
    attachment: null,
    observationId: identity.observationId,
    subId: obx.get(4) || null,
    unitCode: scope.code(obx, 6),
    referenceLow: bounds.low,
    referenceHigh: bounds.high,
    interpretations,
    notes: identity.notes,
    components: [],
    method: scope.codeOrText(obx, 17),
    bodySite: scope.codeOrText(obx, 20),
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
      v.valueCode = contentType ? codeOf(MIME_TYPE_SYSTEM, contentType) : null;
      break;
    }
    case 'CE':
    case 'CWE':
    case 'CNE':
    case 'CF':
      // A coded answer sent as text only (CWE-2/CWE-9, no code) is still the answer.
      v.valueCode = scope.codeOrText(obx, 5);
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

const BOUND = String.raw`[+-]?(?:\d+(?:\.\d*)?|\.\d+)`;
const RANGE = new RegExp(String.raw`^(${BOUND})\s*(?:-|–|\bto\b)\s*(${BOUND})$`, 'i');
const ONE_SIDED = new RegExp(String.raw`^(<=?|>=?|≤|≥)\s*(${BOUND})$`);

/**
 * Numeric bounds of an OBX-7 reference range (ST, "lower limit-upper limit" in chapter 7):
 * "3.5-5.0", "-1--0.5", "<5" / "<=5" (upper only), ">10" / ">=10" (lower only). Anything else
 * (text such as "negative", ranges with units) has no bounds; referenceRange keeps the text.
 */
export function referenceBounds(text: string): { low: number | null; high: number | null } {
  const t = text.trim();
  const both = RANGE.exec(t);
  if (both?.[1] !== undefined && both[2] !== undefined) {
    const [low, high] = [Number(both[1]), Number(both[2])];
    // "10-5" is no range: keep only the text rather than guess which bound is wrong.
    return low <= high ? { low, high } : { low: null, high: null };
  }
  const one = ONE_SIDED.exec(t);
  if (one?.[1] !== undefined && one[2] !== undefined) {
    const n = Number(one[2]);
    return one[1].startsWith('<') || one[1] === '≤' ? { low: null, high: n } : { low: n, high: null };
  }
  return { low: null, high: null };
}
