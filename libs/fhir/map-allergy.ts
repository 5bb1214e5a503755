import type { AllergyIntolerance, CodeableConcept } from '@medplum/fhirtypes';
import {
  concept,
  fhirCode,
  hubIdOfResource,
  instant,
  metaFor,
  needSubject,
  required,
  statusCode,
  type MapContext,
  type MapInput,
  type MapResult,
} from './map-common.js';

const SEVERITIES = ['mild', 'moderate', 'severe'] as const;

/** The gravest reaction severity sent (mild < moderate < severe), as AL1-4 states one per allergy. */
function severityOf(a: AllergyIntolerance): string | undefined {
  const sent = new Set((a.reaction ?? []).map((r) => r.severity));
  return [...SEVERITIES].reverse().find((s) => sent.has(s));
}

/** A manifestation as words: its text, else the first coding's display, else its code. */
function words(cc: CodeableConcept): string | null {
  const c = concept(cc);
  return c ? (c.text ?? c.display ?? c.code) : null;
}

/**
 * AllergyIntolerance → AllergyRecorded (every write restates it). clinicalStatus is required by the
 * event; R4 leaves it out only for an entry in error (ait-2), which then reads as inactive.
 */
export function mapAllergy(a: AllergyIntolerance, input: MapInput, ctx: MapContext): MapResult {
  const subject = needSubject(input, 'AllergyIntolerance');
  if (typeof subject !== 'string') return subject;
  const allergen = concept(a.code);
  if (!allergen) return required('AllergyIntolerance', 'code', 'needs a coding or text to record an allergy');
  const allergyId = input.previous?.hubId ?? hubIdOfResource(a, input.id, ctx.policy);
  const identified = a.onsetDateTime ?? a.recordedDate;
  const clinicalStatus = statusCode(a.clinicalStatus) ?? 'inactive';
  const when = a.recordedDate ?? a.onsetDateTime;
  return {
    ok: true,
    events: [
      {
        type: 'AllergyRecorded',
        data: {
          meta: metaFor('AllergyRecorded', 0, input, ctx, instant(when) ?? ctx.recordedAt, {
            'meta.occurredAt': when,
          }),
          patientId: subject,
          allergyId,
          allergen,
          allergyType: fhirCode('http://hl7.org/fhir/allergy-intolerance-type', a.type),
          category: a.category?.[0] ?? null,
          severity: fhirCode('http://hl7.org/fhir/reaction-event-severity', severityOf(a)),
          criticality: a.criticality ?? null,
          reactions: (a.reaction ?? []).flatMap((r) =>
            r.manifestation.map(words).filter((w): w is string => w !== null),
          ),
          identifiedOn: identified ?? null,
          clinicalStatus,
          verificationStatus: statusCode(a.verificationStatus),
          encounterId: input.encounterId ?? null,
        },
      },
    ],
    state: { hubId: allergyId, patientKey: subject, status: clinicalStatus, location: null },
  };
}
