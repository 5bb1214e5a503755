import type { Code } from './generated.js';
import { deterministicEventId } from './index.js';

/**
 * Stable identity of one observation line across report versions (ObservationValue.observationId),
 * shared by the HL7 and FHIR mappers so that a value arriving by either route, and its later
 * correction, is one observation: deterministic from the report's hub id, the observation code
 * (primary coding) and the sub-id (HL7 OBX-4; null for FHIR, which has none). Free of the value.
 */
export function observationIdFor(
  resultId: string,
  code: Pick<Code, 'system' | 'code'>,
  subId: string | null,
): string {
  return `obs-${deterministicEventId(['observation', resultId, code.system, code.code, subId ?? ''])}`;
}
