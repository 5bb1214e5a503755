import type {
  AllergyIntolerance,
  CodeableConcept,
  Condition,
  Coverage,
  CoverageClass,
  EncounterDiagnosis,
  Organization,
  Practitioner as FhirPractitioner,
  Reference,
} from '@medplum/fhirtypes';
import type {
  AllergyRecorded,
  CoverageRecorded,
  DiagnosisRecorded,
  Code,
  HumanName,
  Identifier,
  Practitioner,
} from '../../events/index.js';
import type { Draft, EventOf, Needs } from '../../projections/store.js';
import {
  allergyCategoryFor,
  allergyCriticalityFor,
  allergyTypeFor,
  isValidV2Code,
  reactionSeverityFor,
  toFhirConcept,
} from '../../terminology/v2-fhir.js';
import { ALLERGY_CLINICAL, ALLERGY_VERIFICATION } from '../../terminology/v2-fhir.js';
import { concept, dateTimeOf, subject } from './resources.js';
import type { AllergyRow, ConditionRow, CoverageRow, EncounterRow, PortalTables } from './tables.js';

/**
 * The patient's clinical facts beside visits and results: allergies (HL7
 * AL1, FHIR AllergyIntolerance), diagnoses and problems (DG1, Condition) and
 * insurance (IN1/IN2, Coverage), as FHIR R4 resources. Pure.
 *
 * Each fact has the hub's own id (allergyId, diagnosisId, coverageId): the
 * same id again restates it, and the latest restatement wins whole (the
 * events are full statements, not patches). A fact restated as entered in
 * error is withdrawn (`visible = false`) like a cancelled visit: kept so that
 * a late event cannot bring it back unseen, never served.
 */

// The rows (AllergyRow, ConditionRow, CoverageRow) are declared with the others in tables.ts.

const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CONDITION_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
const COVERAGE_CLASS = 'http://terminology.hl7.org/CodeSystem/coverage-class';

const ENTERED_IN_ERROR = 'entered-in-error';

/** A code of a required FHIR value set as a CodeableConcept, or nothing for a code outside it. */
function statusConcept(
  system: string,
  allowed: readonly string[],
  code: string | null,
): CodeableConcept | undefined {
  return code !== null && allowed.includes(code) ? { coding: [{ system, code }] } : undefined;
}

const oneOf = <T extends string>(allowed: readonly T[], v: string | null): T | undefined =>
  v !== null && (allowed as readonly string[]).includes(v) ? (v as T) : undefined;

/** FHIR dateTime (year, year-month, date, or date and time with an offset). */
const FHIR_DATE_TIME =
  /^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?$/;

/** A sent date (possibly partial) as a FHIR dateTime, or nothing when it is not one. */
export function sentDate(v: string | null): string | undefined {
  return v !== null && FHIR_DATE_TIME.test(v) ? v : undefined;
}

/** The instant a (possibly partial) FHIR date starts at, for ordering; null when it is none. */
export function dateStart(v: string | undefined): number | null {
  if (v === undefined) return null;
  const padded = v.length === 4 ? `${v}-01-01` : v.length === 7 ? `${v}-01` : v;
  const ms = Date.parse(padded.length === 10 ? `${padded}T00:00:00Z` : padded);
  return Number.isNaN(ms) ? null : ms;
}

/** A person's name as one line (Reference.display). */
export function nameLine(n: HumanName | null): string | undefined {
  if (!n) return undefined;
  const line = [n.prefix, ...n.given, n.family, n.suffix].filter((x): x is string => Boolean(x)).join(' ');
  return line.length > 0 ? line : undefined;
}

const identifierOf = (i: Identifier) => ({ system: i.system, value: i.value });

/**
 * A practitioner the portal does not serve as a resource: a Reference by
 * identifier and display only, which resolves nowhere and claims nothing
 * (FHIR ref-1 needs one of reference, identifier, display).
 */
export function practitionerRef(p: Practitioner | null): Reference<FhirPractitioner> | undefined {
  if (!p) return undefined;
  const display = nameLine(p.name);
  const ref: Reference<FhirPractitioner> = {
    ...(p.id ? { identifier: identifierOf(p.id) } : {}),
    ...(display ? { display } : {}),
  };
  return Object.keys(ref).length > 0 ? ref : undefined;
}

/**
 * AllergyIntolerance. clinicalStatus is present unless the record is entered
 * in error (FHIR ait-1 and ait-2); a sender's status outside the value set
 * falls back to active, as the v2-to-FHIR AL1 map assigns. The reactions of
 * AL1-5 are the manifestations of one reaction, with AL1-4's severity.
 */
export function allergyResource(d: AllergyRecorded, patientId: string): AllergyIntolerance & { id: string } {
  const verification = oneOf(
    ['unconfirmed', 'confirmed', 'refuted', ENTERED_IN_ERROR] as const,
    d.verificationStatus,
  );
  const withdrawn = verification === ENTERED_IN_ERROR;
  const clinical = oneOf(['active', 'inactive', 'resolved'] as const, d.clinicalStatus) ?? 'active';
  // The event's FHIR codes; from the sent v2 codes (tables 0127, 0128) when it has none.
  const category =
    oneOf(['food', 'medication', 'environment', 'biologic'] as const, d.category) ??
    (d.allergyType ? allergyCategoryFor(d.allergyType.code) : undefined);
  const criticality =
    oneOf(['low', 'high', 'unable-to-assess'] as const, d.criticality) ??
    (d.severity ? allergyCriticalityFor(d.severity.code) : undefined);
  const type = d.allergyType ? allergyTypeFor(d.allergyType.code) : undefined;
  const identified = sentDate(d.identifiedOn);
  const severity = d.severity ? reactionSeverityFor(d.severity.code) : undefined;
  return {
    resourceType: 'AllergyIntolerance',
    id: d.allergyId,
    ...(withdrawn ? {} : { clinicalStatus: { coding: [{ system: ALLERGY_CLINICAL, code: clinical }] } }),
    ...(verification
      ? { verificationStatus: { coding: [{ system: ALLERGY_VERIFICATION, code: verification }] } }
      : {}),
    ...(type ? { type } : {}),
    ...(category ? { category: [category] } : {}),
    ...(criticality ? { criticality } : {}),
    code: concept(d.allergen),
    patient: subject(patientId),
    ...(d.encounterId ? { encounter: { reference: `Encounter/${d.encounterId}` } } : {}),
    ...(identified ? { onsetDateTime: identified, recordedDate: identified } : {}),
    ...(d.reactions.length > 0
      ? {
          reaction: [
            {
              manifestation: d.reactions.map((text) => ({ text })),
              ...(severity ? { severity } : {}),
            },
          ],
        }
      : {}),
  };
}

export function allergyRow(d: AllergyRecorded, patientId: string): AllergyRow {
  const resource = allergyResource(d, patientId);
  return {
    allergy_id: d.allergyId,
    patient_id: patientId,
    visible: d.verificationStatus !== ENTERED_IN_ERROR,
    resource,
    date_at: dateStart(resource.recordedDate),
  };
}

const CONDITION_CLINICAL_CODES = ['active', 'recurrence', 'relapse', 'inactive', 'remission', 'resolved'];
const CONDITION_VERIFICATION_CODES = [
  'unconfirmed',
  'provisional',
  'differential',
  'confirmed',
  'refuted',
  ENTERED_IN_ERROR,
];

/**
 * Condition. FHIR R4: no clinicalStatus when entered in error (con-5); a
 * problem-list item must have one otherwise (con-3), active when the sender
 * gave none; an encounter diagnosis (DG1) has one only when sent. The
 * diagnosing clinician is not a resource the portal serves: display only.
 */
export function conditionResource(d: DiagnosisRecorded, patientId: string): Condition & { id: string } {
  const verification = statusConcept(
    CONDITION_VERIFICATION,
    CONDITION_VERIFICATION_CODES,
    d.verificationStatus,
  );
  const withdrawn = d.verificationStatus === ENTERED_IN_ERROR;
  const category = d.category === 'problem-list-item' ? 'problem-list-item' : 'encounter-diagnosis';
  const clinicalCode = withdrawn
    ? null
    : (oneOf(CONDITION_CLINICAL_CODES, d.clinicalStatus) ??
      (category === 'problem-list-item' ? 'active' : null));
  const clinical = statusConcept(CONDITION_CLINICAL, CONDITION_CLINICAL_CODES, clinicalCode);
  const asserter = practitionerRef(d.clinician);
  return {
    resourceType: 'Condition',
    id: d.diagnosisId,
    ...(clinical ? { clinicalStatus: clinical } : {}),
    ...(verification ? { verificationStatus: verification } : {}),
    category: [{ coding: [{ system: CONDITION_CATEGORY, code: category }] }],
    code: concept(d.code),
    subject: subject(patientId),
    ...(d.encounterId ? { encounter: { reference: `Encounter/${d.encounterId}` } } : {}),
    ...(d.diagnosedAt !== null ? { recordedDate: dateTimeOf(d.meta, 'diagnosedAt', d.diagnosedAt) } : {}),
    ...(asserter ? { asserter } : {}),
  };
}

export function conditionRow(d: DiagnosisRecorded, patientId: string): ConditionRow {
  return {
    condition_id: d.diagnosisId,
    patient_id: patientId,
    encounter_id: d.encounterId,
    visible: d.verificationStatus !== ENTERED_IN_ERROR,
    resource: conditionResource(d, patientId),
    date_at: d.diagnosedAt,
  };
}

/**
 * Encounter.diagnosis with this condition restated: replaced in place (a
 * restatement keeps its position), left out when withdrawn, ordered by rank
 * (DG1-15; unranked last, in arrival order). use is DG1-6 translated from
 * table 0052 to diagnosis-role (the sent code kept beside it).
 */
export function withDiagnosis(
  list: readonly EncounterDiagnosis[],
  d: DiagnosisRecorded,
  visible: boolean,
): EncounterDiagnosis[] {
  const ref = `Condition/${d.diagnosisId}`;
  const entry: EncounterDiagnosis = {
    condition: { reference: ref },
    ...(d.diagnosisType ? { use: toFhirConcept(d.diagnosisType, '0052') } : {}),
    ...(d.rank !== null && Number.isInteger(d.rank) && d.rank >= 1 ? { rank: d.rank } : {}),
  };
  const at = list.findIndex((x) => x.condition.reference === ref);
  const next = [...list];
  if (at >= 0) next.splice(at, 1, ...(visible ? [entry] : []));
  else if (visible) next.push(entry);
  // Array.prototype.sort is stable: equal ranks keep their order.
  return next.sort((a, b) => (a.rank ?? Infinity) - (b.rank ?? Infinity));
}

/** The coverage class rows FHIR names (plan, group): value is required, so a class is only given with one. */
function coverageClasses(d: CoverageRecorded): CoverageClass[] {
  const classOf = (code: string, value: string, name: string | null): CoverageClass => ({
    type: { coding: [{ system: COVERAGE_CLASS, code }] },
    value,
    ...(name ? { name } : {}),
  });
  return [
    ...(d.plan ? [classOf('plan', d.plan.code, d.plan.display ?? d.plan.text)] : []),
    ...(d.groupNumber ? [classOf('group', d.groupNumber, d.groupName)] : []),
  ];
}

const SUBSCRIBER_RELATIONSHIP = 'http://terminology.hl7.org/CodeSystem/subscriber-relationship';

/** IN1-17 (table 0063) → subscriber-relationship, the value set Coverage.relationship is bound to. */
const SUBSCRIBER_OF: Readonly<Record<string, string>> = {
  SEL: 'self',
  SPO: 'spouse',
  DOM: 'common',
  CHD: 'child',
  NCH: 'child',
  SCH: 'child',
  FCH: 'child',
  PAR: 'parent',
  FTH: 'parent',
  MTH: 'parent',
};

/**
 * Coverage.relationship: subscriber-relationship first (`other` for a table 0063 code it has no
 * word for), then the codings toFhirConcept presents (the v3 RoleCode and the sent v2 code).
 */
export function coverageRelationship(c: Code): CodeableConcept {
  const presented = toFhirConcept(c, '0063');
  const code = c.code.toUpperCase();
  const own = SUBSCRIBER_OF[code] ?? (code !== 'UNK' && isValidV2Code('0063', code) ? 'other' : undefined);
  if (!own) return presented;
  return {
    ...presented,
    coding: [{ system: SUBSCRIBER_RELATIONSHIP, code: own }, ...(presented.coding ?? [])],
  };
}

/**
 * Coverage. payor is required (1..*): the insurer by its identifier (IN1-3)
 * and name (IN1-4), a Reference that resolves nowhere (the portal serves no
 * Organization); with neither sent, a display saying so keeps it valid. The
 * plan type (table 0086) and the relationship (table 0063) are translated to
 * FHIR with the sent code kept.
 */
export function coverageResource(d: CoverageRecorded, patientId: string): Coverage & { id: string } {
  const status = oneOf(['active', 'cancelled', 'draft', ENTERED_IN_ERROR] as const, d.status) ?? 'active';
  const payor: Reference<Organization> = {
    ...(d.payerId ? { identifier: identifierOf(d.payerId) } : {}),
    display: d.payerName ?? d.payerId?.value ?? 'payer not sent',
  };
  const subscriber = nameLine(d.subscriberName);
  const classes = coverageClasses(d);
  const start = sentDate(d.periodStart);
  const end = sentDate(d.periodEnd);
  return {
    resourceType: 'Coverage',
    id: d.coverageId,
    status,
    ...(d.planType ? { type: toFhirConcept(d.planType) } : {}),
    ...(subscriber ? { subscriber: { display: subscriber } } : {}),
    ...(d.memberId ? { subscriberId: d.memberId } : {}),
    beneficiary: subject(patientId),
    ...(d.relationship ? { relationship: coverageRelationship(d.relationship) } : {}),
    ...(start || end ? { period: { ...(start ? { start } : {}), ...(end ? { end } : {}) } } : {}),
    payor: [payor],
    ...(classes.length > 0 ? { class: classes } : {}),
    ...(d.order !== null && Number.isInteger(d.order) && d.order >= 1 ? { order: d.order } : {}),
  };
}

export function coverageRow(d: CoverageRecorded, patientId: string): CoverageRow {
  const resource = coverageResource(d, patientId);
  return {
    coverage_id: d.coverageId,
    patient_id: patientId,
    visible: resource.status !== ENTERED_IN_ERROR,
    resource,
    date_at: dateStart(resource.period?.start),
  };
}

/** The handlers' view of the encounter a diagnosis belongs to (a stub until its visit is known). */
export type EncounterOf = (encounterId: string, patientId: string) => EncounterRow;

export function allergyRecorded(draft: Draft<PortalTables>, d: AllergyRecorded, patientId: string): void {
  draft.put('allergies', d.allergyId, allergyRow(d, patientId));
}

export function coverageRecorded(draft: Draft<PortalTables>, d: CoverageRecorded, patientId: string): void {
  draft.put('coverages', d.coverageId, coverageRow(d, patientId));
}

/**
 * The condition, and the visit's diagnosis list pointing at it (Encounter.diagnosis). The
 * diagnosis id derives from the visit (DiagnosisRecorded), so a restatement stays on its visit.
 */
export function diagnosisRecorded(
  draft: Draft<PortalTables>,
  d: DiagnosisRecorded,
  patientId: string,
  encounterOf: EncounterOf,
): void {
  const row = conditionRow(d, patientId);
  draft.put('conditions', d.diagnosisId, row);
  if (!d.encounterId) return;
  const enc = encounterOf(d.encounterId, patientId);
  const diagnosis = withDiagnosis(enc.resource.diagnosis ?? [], d, row.visible);
  draft.put('encounters', d.encounterId, { ...enc, resource: withList(enc.resource, diagnosis) });
}

/** FHIR JSON has no empty arrays: an encounter left without diagnoses has no diagnosis element. */
function withList(r: EncounterRow['resource'], diagnosis: EncounterDiagnosis[]): EncounterRow['resource'] {
  const { diagnosis: _old, ...rest } = r;
  return diagnosis.length > 0 ? { ...rest, diagnosis } : rest;
}

/** A visit restated (EncounterStarted again) keeps the diagnoses recorded on it so far. */
export function keptDiagnoses(
  next: EncounterRow['resource'],
  prev: EncounterRow | undefined,
): EncounterRow['resource'] {
  const diagnosis = prev?.resource.diagnosis;
  return diagnosis && diagnosis.length > 0 ? { ...next, diagnosis } : next;
}

/** The rows an event of these types needs loaded (domain.ts `needs`); its patient only exists (`presence`). */
export function clinicalNeeds(
  e: EventOf<'AllergyRecorded' | 'CoverageRecorded' | 'DiagnosisRecorded'>,
): Needs<PortalTables> {
  switch (e.type) {
    case 'AllergyRecorded':
      return { allergies: [e.data.allergyId] };
    case 'CoverageRecorded':
      return { coverages: [e.data.coverageId] };
    case 'DiagnosisRecorded':
      return {
        conditions: [e.data.diagnosisId],
        ...(e.data.encounterId ? { encounters: [e.data.encounterId] } : {}),
      };
  }
}
