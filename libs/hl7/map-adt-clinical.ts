import {
  deterministicEventId,
  type AllergyRecorded,
  type ClinicalEvent,
  type Code,
  type CoverageRecorded,
  type DiagnosisRecorded,
} from '../events/index.js';
import { allergyCategoryFor, allergyCriticalityFor } from '../terminology/v2-fhir.js';
import { fieldName, loc, refuse, type Seg } from './message.js';
import { encounterIdFor, instantOf, textConcept, type MapScope } from './scope.js';
import { parseHl7Date } from './time.js';

/**
 * The clinical and financial segments an ADT message carries beside the patient and the visit:
 * DG1 → DiagnosisRecorded, AL1 → AllergyRecorded, IN1 (+ its IN2) → CoverageRecorded, one event
 * per segment in message order (DG1s, then AL1s, then IN1s; the order makes the event ids).
 * Each fact has a hub id derived from what identifies it, never from the message, so the same
 * diagnosis, allergy or coverage sent again with A08 or A03 restates it (latest wins).
 */

/** Who and which visit the segments are about. */
export interface ClinicalContext {
  patientId: string;
  /** The visit (PV1-19, else PID-18) when the message names one; null for A28/A31 without a visit. */
  encounterId: string | null;
}

/** The visit the message names, if any: PV1-19, else PID-18 (never refused: A28/A31 may have none). */
export function optionalEncounterId(scope: MapScope, pid: Seg): string | null {
  const visit = scope.visitNumber(scope.msg.first('PV1'), pid);
  return visit ? encounterIdFor(visit) : null;
}

export function clinicalEvents(scope: MapScope, c: ClinicalContext): ClinicalEvent[] {
  return [
    ...scope.msg
      .all('DG1')
      .map((s): ClinicalEvent => ({ type: 'DiagnosisRecorded', data: diagnosis(scope, c, s) })),
    ...scope.msg
      .all('AL1')
      .map((s): ClinicalEvent => ({ type: 'AllergyRecorded', data: allergy(scope, c, s) })),
    ...scope.msg
      .all('IN1')
      .map((s): ClinicalEvent => ({ type: 'CoverageRecorded', data: coverage(scope, c, s) })),
  ];
}

// ---------------------------------------------------------------------------
// Hub ids: name-based hashes, so they carry no code or member number in clear.

// A text-only value (scope textConcept: system urn:hub:text, the text as code) is keyed by its
// text, which a sender repeats; never by a set id, which is only the segment's position.

/** Patient and the allergen's primary coding (AL1-3). */
export function allergyIdFor(patientId: string, allergen: Code): string {
  return `alg-${deterministicEventId(['allergy', patientId, allergen.system, allergen.code])}`;
}

/** Encounter (else patient) and the diagnosis's primary coding (DG1-3, else DG1-4 text). */
export function diagnosisIdFor(owner: string, code: Code): string {
  return `dx-${deterministicEventId(['diagnosis', owner, code.system, code.code])}`;
}

export function coverageIdFor(patientId: string, payer: string[], member: string[]): string {
  return `cov-${deterministicEventId(['coverage', patientId, ...payer, '|', ...member])}`;
}

// ---------------------------------------------------------------------------

/** A DT field as an ISO 8601 date (partial kept); AE 102 naming the field when malformed. */
export function dateOf(seg: Seg, field: number): string | null {
  const d = parseHl7Date(seg.get(field));
  if (d === 'invalid') {
    throw refuse('AE', '102', `${fieldName(seg, field)} is not a valid HL7 date`, loc(seg, field));
  }
  return d.date;
}

/** A positive whole number (DG1-15 priority, IN1-22 / IN1-1 order), else null. */
function ordinal(s: string): number | null {
  if (!/^\d{1,9}$/.test(s)) return null;
  const n = Number(s);
  return n > 0 ? n : null;
}

/**
 * DG1 (HL7 v2-to-FHIR DG1 → Condition, Encounter.diagnosis): DG1-3 code (DG1-4 description as
 * its text; a text-only value when uncoded, as v2.3 senders do), DG1-5 time, DG1-6 type (table 0052), DG1-15
 * priority as rank (0 = not ranked), DG1-16 clinician, DG1-21 action code D (delete) as
 * entered-in-error. AE 101 at DG1-3 when neither a code nor a description is sent.
 */
function diagnosis(scope: MapScope, c: ClinicalContext, dg1: Seg): DiagnosisRecorded {
  const description = dg1.get(4);
  const coded = scope.codeOrText(dg1, 3);
  const code: Code | null = coded
    ? { ...coded, text: coded.text ?? (description || null) }
    : textConcept(description);
  if (!code) {
    throw refuse(
      'AE',
      '101',
      `required field DG1-3 (diagnosis code) is missing in DG1 #${dg1.sequence}`,
      loc(dg1, 3),
    );
  }
  const diagnosed = scope.time(dg1, 5);
  const deleted = dg1.get(21).toUpperCase() === 'D';
  return {
    meta: scope.meta('DiagnosisRecorded', diagnosed ?? scope.eventTime(), { diagnosedAt: diagnosed }),
    patientId: c.patientId,
    diagnosisId: diagnosisIdFor(c.encounterId ?? c.patientId, code),
    encounterId: c.encounterId,
    code,
    category: 'encounter-diagnosis',
    diagnosisType: scope.tableCode(dg1, 6, '0052'),
    rank: ordinal(dg1.get(15)),
    diagnosedAt: instantOf(diagnosed),
    clinician: scope.practitioner(dg1, 16),
    clinicalStatus: null,
    verificationStatus: deleted ? 'entered-in-error' : null,
  };
}

/** AL1 (HL7 v2-to-FHIR AL1 → AllergyIntolerance); AE 101 at AL1-3 when no allergen is named. */
function allergy(scope: MapScope, c: ClinicalContext, al1: Seg): AllergyRecorded {
  const allergen = scope.codeOrText(al1, 3);
  if (!allergen) {
    throw refuse(
      'AE',
      '101',
      `required field AL1-3 (allergen) is missing in AL1 #${al1.sequence}`,
      loc(al1, 3),
    );
  }
  const allergyType = scope.tableCode(al1, 2, '0127');
  const severity = scope.tableCode(al1, 4, '0128');
  return {
    meta: scope.meta('AllergyRecorded', scope.eventTime()),
    patientId: c.patientId,
    allergyId: allergyIdFor(c.patientId, allergen),
    allergen,
    allergyType,
    // The one v2 ↔ FHIR table (libs/terminology/v2-fhir.ts, the guide's ConceptMaps).
    category: (allergyType && allergyCategoryFor(allergyType.code)) ?? null,
    severity,
    criticality: (severity && allergyCriticalityFor(severity.code)) ?? null,
    reactions: al1.textRepetitions(5).filter((r) => r.trim() !== ''),
    identifiedOn: dateOf(al1, 6),
    // AL1 has no status: a sender lists the allergies the patient has.
    clinicalStatus: 'active',
    verificationStatus: null,
    encounterId: c.encounterId,
  };
}

/** The IN2 that belongs to an IN1: the next segment of the INSURANCE group, before any other IN1. */
function in2Of(scope: MapScope, in1: Seg): Seg | undefined {
  const after = scope.msg.segments.filter((s) => s.position > in1.position);
  const end = after.findIndex((s) => s.name === 'IN1');
  return (end < 0 ? after : after.slice(0, end)).find((s) => s.name === 'IN2');
}

/**
 * IN1 + IN2 (HL7 v2-to-FHIR IN1 → Coverage): payer IN1-3/4, plan IN1-2, plan type IN1-15, group
 * IN1-8/9, member id IN1-36 policy number, else IN2-61 patient member number, IN1-49 insured's
 * id, IN2-8 Medicaid case number, IN2-6 Medicare card number; subscriber IN1-16/17, period
 * IN1-12/13, order IN1-22 (coordination of benefits priority), else the IN1-1 set id.
 */
function coverage(scope: MapScope, c: ClinicalContext, in1: Seg): CoverageRecorded {
  const in2 = in2Of(scope, in1);
  const payerId = scope.cx(in1, 3);
  const payerName = in1.get(4, 1) || null;
  const plan = scope.code(in1, 2);
  const memberId =
    [in1.get(36), in2?.get(61) ?? '', in1.get(49), in2?.get(8) ?? '', in2?.get(6) ?? ''].find(
      (v) => v !== '',
    ) ?? null;
  const payerKey = payerId ? [payerId.system, payerId.value] : ['name', payerName ?? ''];
  const memberKey = memberId !== null ? ['member', memberId] : plan ? ['plan', plan.system, plan.code] : [];
  return {
    meta: scope.meta('CoverageRecorded', scope.eventTime()),
    patientId: c.patientId,
    coverageId: coverageIdFor(c.patientId, payerKey, memberKey),
    order: ordinal(in1.get(22)) ?? ordinal(in1.get(1)),
    payerId,
    payerName,
    plan,
    planType: scope.tableCode(in1, 15, '0086'),
    groupNumber: in1.get(8) || null,
    groupName: in1.get(9, 1) || null,
    memberId,
    subscriberName: scope.name(in1, 16, 0),
    relationship: scope.tableCode(in1, 17, '0063'),
    periodStart: dateOf(in1, 12),
    periodEnd: dateOf(in1, 13),
    // IN1 states a coverage the patient holds; a sender ends one with IN1-13, not a status.
    status: 'active',
    encounterId: c.encounterId,
  };
}
