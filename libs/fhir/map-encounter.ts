import type { Condition, Encounter } from '@medplum/fhirtypes';
import type { ClinicalEvent, Code, Location, Practitioner } from '../events/index.js';
import { diagnosisEvent } from './map-condition.js';
import {
  code,
  concept,
  fhirCode,
  hubIdOfResource,
  identifiers,
  instant,
  logicalIdSystem,
  metaFor,
  needSubject,
  practitioner,
  preferred,
  parseLiteralReference,
  recordIdFor,
  referenced,
  UNKNOWN_CODE,
  type MapContext,
  type MapInput,
  type MapResult,
} from './map-common.js';
import { errorIssue } from './outcome.js';
import { invalid, type Invalid } from './validate.js';

function encounterLocation(e: Encounter): Location | null {
  const loc = e.location?.find((l) => l.status === 'active') ?? e.location?.[0];
  const unit = loc?.location.display ?? null;
  const facility = e.serviceProvider?.display ?? null;
  if (!unit && !facility) return null;
  return { facility, unit, room: null, bed: null };
}

/** Field by field: a stored location comes back from Postgres with its keys in another order. */
function sameLocation(a: Location | null, b: Location | null): boolean {
  if (a === null || b === null) return a === b;
  return a.facility === b.facility && a.unit === b.unit && a.room === b.room && a.bed === b.bed;
}

const ENCOUNTER_ACTIVE = new Set(['planned', 'arrived', 'triaged', 'in-progress', 'onleave']);

/** What every event of one Encounter write shares. */
interface EncounterWrite {
  e: Encounter;
  input: MapInput;
  ctx: MapContext;
  subject: string;
  encounterId: string;
  location: Location | null;
  prevStatus: string | null;
  /** Class, service and attending as sent with this write: carried on every visit event (PV1-2/10/7). */
  visit: {
    encounterClass: Code | null;
    hospitalService: Code | null;
    attendingPractitioner: Practitioner | null;
  };
}

function visitFacts(e: Encounter, ctx: MapContext): EncounterWrite['visit'] {
  const attending = e.participant?.find((p) =>
    p.type?.some((t) => t.coding?.some((c) => c.code === 'ATND')),
  )?.individual;
  return {
    encounterClass: code(e.class),
    hospitalService: concept(e.serviceType),
    attendingPractitioner: practitioner(attending, ctx.policy),
  };
}

function encounterStarted(w: EncounterWrite, seq: number): ClinicalEvent {
  const { e, input, ctx } = w;
  const ids = identifiers(e.identifier, ctx.policy);
  const start = instant(e.period?.start);
  return {
    type: 'EncounterStarted',
    data: {
      meta: metaFor('EncounterStarted', seq, input, ctx, start ?? ctx.recordedAt, {
        'meta.occurredAt': e.period?.start,
        admittedAt: e.period?.start,
      }),
      patientId: w.subject,
      encounterId: w.encounterId,
      visitNumber: preferred(ids, 'VN') ?? null,
      encounterClass: w.visit.encounterClass ?? UNKNOWN_CODE,
      status: e.status === 'planned' ? 'planned' : 'in-progress',
      location: w.location,
      hospitalService: w.visit.hospitalService,
      attendingPractitioner: w.visit.attendingPractitioner,
      admittedAt: start,
      payer: null,
      admitReason: concept(e.reasonCode?.[0]),
      admitSource: concept(e.hospitalization?.admitSource),
      // PV1-4 admission type is Encounter.type in the HL7 v2-to-FHIR guide; priority when no type.
      admissionType: concept(e.type?.[0]) ?? concept(e.priority),
      dischargeDisposition: concept(e.hospitalization?.dischargeDisposition),
    },
  };
}

/**
 * planned … onleave: a start when the visit was not active before, a transfer when an active
 * visit moved, a start when a pre-admit became an admission; else (a repeat) nothing.
 */
function activeEncounterEvents(w: EncounterWrite): ClinicalEvent[] {
  const { e, input, ctx, location, prevStatus } = w;
  const wasActive = prevStatus !== null && ENCOUNTER_ACTIVE.has(prevStatus);
  if (!wasActive) return [encounterStarted(w, 0)];
  if (location && !sameLocation(location, input.previous?.location ?? null) && e.status !== 'planned') {
    return [
      {
        type: 'EncounterTransferred',
        data: {
          meta: metaFor('EncounterTransferred', 0, input, ctx, ctx.recordedAt),
          patientId: w.subject,
          encounterId: w.encounterId,
          fromLocation: input.previous?.location ?? null,
          toLocation: location,
          transferredAt: ctx.recordedAt,
          ...w.visit,
        },
      },
    ];
  }
  // Pre-admit became an admission: a start of the real visit.
  if (prevStatus === 'planned' && e.status !== 'planned') return [encounterStarted(w, 0)];
  return [];
}

function finishedEncounterEvents(w: EncounterWrite): ClinicalEvent[] {
  const { e, input, ctx, prevStatus } = w;
  // A backfill may send a visit only once it is over: it still started.
  const events = prevStatus === null ? [encounterStarted(w, 0)] : [];
  if (prevStatus === 'finished') return events;
  const end = instant(e.period?.end) ?? ctx.recordedAt;
  events.push({
    type: 'EncounterEnded',
    data: {
      meta: metaFor('EncounterEnded', events.length, input, ctx, end, {
        'meta.occurredAt': e.period?.end,
        endedAt: e.period?.end,
      }),
      patientId: w.subject,
      encounterId: w.encounterId,
      endedAt: end,
      dischargeDisposition: concept(e.hospitalization?.dischargeDisposition),
      ...w.visit,
      location: w.location,
    },
  });
  return events;
}

function cancelledEncounterEvents(w: EncounterWrite): ClinicalEvent[] {
  const { e, input, ctx, prevStatus } = w;
  if (prevStatus === 'cancelled' || prevStatus === 'entered-in-error') return [];
  return [
    {
      type: 'EncounterCancelled',
      data: {
        meta: metaFor('EncounterCancelled', 0, input, ctx, ctx.recordedAt),
        patientId: w.subject,
        encounterId: w.encounterId,
        reason:
          e.status === 'entered-in-error'
            ? fhirCode('http://hl7.org/fhir/encounter-status', 'entered-in-error')
            : null,
        cancelledEventType: prevStatus === 'finished' ? 'discharge' : 'admit',
        encounterClass: w.visit.encounterClass,
      },
    },
  ];
}

/** The events a write of this status means, given the status the hub knew before. */
function encounterEvents(w: EncounterWrite): ClinicalEvent[] | Invalid {
  switch (w.e.status) {
    case 'planned':
    case 'arrived':
    case 'triaged':
    case 'in-progress':
    case 'onleave':
      return activeEncounterEvents(w);
    case 'finished':
      return finishedEncounterEvents(w);
    case 'cancelled':
    case 'entered-in-error':
      return cancelledEncounterEvents(w);
    case 'unknown':
    case undefined:
      return invalid('unmappable', 422, [
        errorIssue(
          'code-invalid',
          'Encounter.status unknown cannot be mapped to a visit event',
          'Encounter.status',
        ),
      ]);
  }
}

/**
 * The Condition's hub id as its own write gives it (identifier, else logical id); a contained one
 * without an identifier is named within this Encounter (its local id is not unique elsewhere).
 */
function conditionIdOf(
  c: Condition,
  reference: string | undefined,
  encounterLogicalId: string,
  ctx: MapContext,
): string {
  const contained = reference?.startsWith('#') ?? false;
  if (!contained || (c.identifier ?? []).some((i) => i.value)) {
    return hubIdOfResource(c, c.id ?? parseLiteralReference(reference)?.id ?? '', ctx.policy);
  }
  return recordIdFor('Condition', logicalIdSystem(`Encounter/${encounterLogicalId}`), c.id ?? '');
}

/**
 * Encounter.diagnosis → one DiagnosisRecorded per diagnosis whose Condition the adapter can see
 * (contained, same bundle, or stored): the Condition's own record (same diagnosisId as the
 * Condition maps to) with this visit, `use` as diagnosisType and `rank`. A diagnosis whose
 * Condition is not visible has no code to record and is skipped (mapping.md).
 */
function diagnosisEvents(w: EncounterWrite, seq: number): ClinicalEvent[] {
  const out: ClinicalEvent[] = [];
  for (const d of w.e.diagnosis ?? []) {
    const c = referenced(d.condition, 'Condition', w.e, w.input);
    if (!c) continue;
    const ev = diagnosisEvent(c, {
      diagnosisId: conditionIdOf(c, d.condition.reference, w.input.id, w.ctx),
      patientId: w.subject,
      encounterId: w.encounterId,
      diagnosisType: concept(d.use),
      rank: d.rank ?? null,
      meta: { input: w.input, ctx: w.ctx, seq: seq + out.length },
    });
    if (ev) out.push(ev);
  }
  return out;
}

export function mapEncounter(e: Encounter, input: MapInput, ctx: MapContext): MapResult {
  const subject = needSubject(input, 'Encounter');
  if (typeof subject !== 'string') return subject;
  const encounterId = input.previous?.hubId ?? hubIdOfResource(e, input.id, ctx.policy);
  const location = encounterLocation(e);
  const prevStatus = input.previous?.status ?? null;
  const w = { e, input, ctx, subject, encounterId, location, prevStatus, visit: visitFacts(e, ctx) };
  const events = encounterEvents(w);
  if (!Array.isArray(events)) return events;
  // Diagnoses only once the visit exists on the log (not for a cancelled one).
  const withDx =
    e.status === 'cancelled' || e.status === 'entered-in-error' ? [] : diagnosisEvents(w, events.length);
  return {
    ok: true,
    events: [...events, ...withDx],
    state: { hubId: encounterId, patientKey: subject, status: e.status, location },
  };
}
