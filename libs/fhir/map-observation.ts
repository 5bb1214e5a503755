import type {
  CodeableConcept,
  Observation,
  ObservationComponent as FhirComponent,
  ObservationReferenceRange,
  Quantity,
} from '@medplum/fhirtypes';
import { observationIdFor } from '../events/ids.js';
import { codeOf, type Code, type ObservationComponent, type ObservationValue } from '../events/index.js';
import { concept, concepts, instant, notes, UNKNOWN_CODE, UNKNOWN_SYSTEM } from './map-common.js';

/** Hub result status for a FHIR Observation/DiagnosticReport status; undefined = not mappable. */
export function resultStatus(
  s: string | undefined,
): { kind: 'reported' | 'corrected'; status: string; reason: string | null } | undefined {
  switch (s) {
    case 'registered':
    case 'partial':
    case 'preliminary':
      return { kind: 'reported', status: 'preliminary', reason: null };
    case 'final':
      return { kind: 'reported', status: 'final', reason: null };
    case 'amended':
    case 'corrected':
    case 'appended':
      return { kind: 'corrected', status: 'corrected', reason: s };
    case 'cancelled':
      return { kind: 'reported', status: 'cancelled', reason: null };
    case 'entered-in-error':
      return { kind: 'corrected', status: 'cancelled', reason: 'entered-in-error' };
    case undefined:
    default:
      return undefined;
  }
}

/** The value part shared by an observation and its components (FHIR value[x] → HL7 value type). */
type ValueFields = Pick<
  ObservationComponent,
  'valueType' | 'valueNumber' | 'valueString' | 'valueCode' | 'valueComparator' | 'unit' | 'unitCode'
>;

interface ValueSource {
  valueQuantity?: Quantity | undefined;
  valueCodeableConcept?: CodeableConcept | undefined;
  valueString?: string | undefined;
  valueInteger?: number | undefined;
  valueBoolean?: boolean | undefined;
  valueDateTime?: string | undefined;
}

/**
 * Quantity.unit is the text as written (kept in `unit`, the code standing in when no text was sent,
 * for readers that show one string); system + code is the coded unit (UCUM when the system says so).
 */
function quantityValue(q: Quantity): ValueFields {
  const comparator = q.comparator ?? null;
  return {
    valueType: comparator ? 'SN' : 'NM',
    valueNumber: q.value ?? null,
    valueString: null,
    valueCode: null,
    valueComparator: comparator,
    unit: q.unit ?? q.code ?? null,
    unitCode: q.code ? codeOf(q.system ?? UNKNOWN_SYSTEM, q.code) : null,
  };
}

const EMPTY: ValueFields = {
  valueType: 'ST',
  valueNumber: null,
  valueString: null,
  valueCode: null,
  valueComparator: null,
  unit: null,
  unitCode: null,
};

function valueOf(v: ValueSource): ValueFields {
  if (v.valueQuantity) return quantityValue(v.valueQuantity);
  if (v.valueCodeableConcept)
    return { ...EMPTY, valueType: 'CWE', valueCode: concept(v.valueCodeableConcept) };
  if (v.valueString !== undefined) return { ...EMPTY, valueType: 'ST', valueString: v.valueString };
  if (v.valueInteger !== undefined) return { ...EMPTY, valueType: 'NM', valueNumber: v.valueInteger };
  if (v.valueBoolean !== undefined) return { ...EMPTY, valueType: 'ST', valueString: String(v.valueBoolean) };
  if (v.valueDateTime !== undefined) return { ...EMPTY, valueType: 'DTM', valueString: v.valueDateTime };
  return EMPTY;
}

/** referenceRange[0]: text (else "low-high" for readers of the one string) and the numeric bounds. */
function rangeOf(
  rr: ObservationReferenceRange | undefined,
): Pick<ObservationComponent, 'referenceRange' | 'referenceLow' | 'referenceHigh'> {
  const low = rr?.low?.value ?? null;
  const high = rr?.high?.value ?? null;
  const text = rr?.text ?? (low !== null || high !== null ? `${low ?? ''}-${high ?? ''}` : null);
  return { referenceRange: text, referenceLow: low, referenceHigh: high };
}

function componentOf(c: FhirComponent): ObservationComponent {
  return {
    code: concept(c.code) ?? UNKNOWN_CODE,
    ...valueOf(c),
    ...rangeOf(c.referenceRange?.[0]),
    interpretation: concept(c.interpretation?.[0]),
  };
}

/** The time an observation line is of: effective (dateTime, period start, instant), else issued. */
export function observedTime(o: Observation): string | undefined {
  return o.effectiveDateTime ?? o.effectivePeriod?.start ?? o.effectiveInstant ?? o.issued;
}

/**
 * One Observation as an observation line. `resultId` is the report it is carried in (its own for
 * a lone Observation); `repeat` tells apart two lines with the same code in one report (FHIR has
 * no OBX-4), so each keeps its own observationId: the second and later get `#n`, as the HL7 mapper
 * marks a repeat with an empty OBX-4 (libs/hl7/map-result.ts), so both routes give one value one id.
 */
export function observationValue(
  o: Observation,
  sequence: number,
  resultId: string,
  repeat: number = 0,
): ObservationValue {
  const c: Code = concept(o.code) ?? UNKNOWN_CODE;
  const interpretations = concepts(o.interpretation);
  return {
    sequence,
    code: c,
    ...valueOf(o),
    ...rangeOf(o.referenceRange?.[0]),
    interpretation: interpretations[0] ?? null,
    status: resultStatus(o.status)?.status ?? 'final',
    observedAt: instant(observedTime(o)),
    attachment: null,
    observationId: observationIdFor(resultId, c, repeat === 0 ? null : `#${repeat + 1}`),
    subId: null,
    interpretations,
    notes: notes(o.note),
    components: (o.component ?? []).map(componentOf),
    method: concept(o.method),
    bodySite: concept(o.bodySite),
  };
}

/** Report lines for a report's Observations: sequence from 1, a repeat index per code. */
export function observationValues(list: readonly Observation[], resultId: string): ObservationValue[] {
  const seen = new Map<string, number>();
  return list.map((o, i) => {
    const c = concept(o.code) ?? UNKNOWN_CODE;
    const k = `${c.system}|${c.code}`;
    const n = seen.get(k) ?? 0;
    seen.set(k, n + 1);
    return observationValue(o, i + 1, resultId, n);
  });
}
