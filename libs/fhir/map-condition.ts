import type { Condition } from '@medplum/fhirtypes';
import type { ClinicalEvent, Code } from '../events/index.js';
import {
  concept,
  hubIdOfResource,
  instant,
  metaFor,
  needSubject,
  practitioner,
  required,
  statusCode,
  type MapContext,
  type MapInput,
  type MapResult,
} from './map-common.js';

const CATEGORIES = new Set(['encounter-diagnosis', 'problem-list-item']);

/**
 * condition-category: encounter-diagnosis | problem-list-item as sent (any coding of any category;
 * US Core health-concern counts as a problem-list item); without one, a Condition tied to a visit is
 * an encounter diagnosis and any other a problem-list item.
 */
function categoryOf(c: Condition): string {
  for (const cc of c.category ?? []) {
    for (const cd of cc.coding ?? []) {
      if (cd.code && CATEGORIES.has(cd.code)) return cd.code;
      if (cd.code === 'health-concern') return 'problem-list-item';
    }
  }
  return c.encounter ? 'encounter-diagnosis' : 'problem-list-item';
}

export interface DiagnosisFacts {
  diagnosisId: string;
  patientId: string;
  encounterId: string | null;
  /** Encounter.diagnosis.use and rank, when the diagnosis comes through its visit. */
  diagnosisType: Code | null;
  rank: number | null;
  meta: { input: MapInput; ctx: MapContext; seq: number };
}

/** A Condition as DiagnosisRecorded; null when it has no code (nothing to record). */
export function diagnosisEvent(c: Condition, f: DiagnosisFacts): ClinicalEvent | null {
  const dx = concept(c.code);
  if (!dx) return null;
  const when = c.recordedDate ?? c.onsetDateTime ?? c.onsetPeriod?.start;
  const at = instant(when);
  const { input, ctx, seq } = f.meta;
  return {
    type: 'DiagnosisRecorded',
    data: {
      meta: metaFor('DiagnosisRecorded', seq, input, ctx, at ?? ctx.recordedAt, {
        'meta.occurredAt': when,
        diagnosedAt: when,
      }),
      patientId: f.patientId,
      diagnosisId: f.diagnosisId,
      encounterId: f.encounterId,
      code: dx,
      category: categoryOf(c),
      diagnosisType: f.diagnosisType,
      rank: f.rank,
      diagnosedAt: at,
      clinician: practitioner(c.asserter ?? c.recorder, ctx.policy),
      clinicalStatus: statusCode(c.clinicalStatus),
      verificationStatus: statusCode(c.verificationStatus),
    },
  };
}

/** Condition → DiagnosisRecorded (every write restates it: latest wins). */
export function mapCondition(c: Condition, input: MapInput, ctx: MapContext): MapResult {
  const subject = needSubject(input, 'Condition');
  if (typeof subject !== 'string') return subject;
  const diagnosisId = input.previous?.hubId ?? hubIdOfResource(c, input.id, ctx.policy);
  const ev = diagnosisEvent(c, {
    diagnosisId,
    patientId: subject,
    encounterId: input.encounterId ?? null,
    diagnosisType: null,
    rank: null,
    meta: { input, ctx, seq: 0 },
  });
  if (!ev) return required('Condition', 'code', 'needs a coding or text to record a diagnosis');
  return {
    ok: true,
    events: [ev],
    state: { hubId: diagnosisId, patientKey: subject, status: statusCode(c.clinicalStatus), location: null },
  };
}
