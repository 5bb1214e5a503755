import type { ClinicalEvent, Code, Location, ObservationValue, ResultReported } from '../../events/index.js';
import { TOPIC_CATALOG, codingsOf } from '../../events/index.js';
import {
  undonePart,
  classOf,
  isAbnormal,
  isAbnormalFlag,
  isCriticalFlag,
  isReleasedStatus,
  restatement,
  resultRank,
  supersedes,
} from '../../projections/clinical.js';
import { canonicalSystem, LOINC, UCUM } from '../../terminology/code-systems.js';
import {
  evolveByType,
  type Draft,
  type EventOf,
  type EvolveHandlers,
  type Needs,
  type Resolve,
} from '../../projections/store.js';

/**
 * Analytics' read model: facts at the grain analysts aggregate from
 * (encounters with their movements, orders, the winning version of each
 * result, one log row per event). The measures themselves are SQL views
 * (views.ts). Pure: evolves a draft of rows, no I/O.
 */
export interface Movement {
  unit: string | null;
  at: number;
}

export interface EncounterFact {
  encounter_id: string;
  patient_id: string;
  encounter_class: string;
  service: string | null;
  admitted_at: number | null;
  discharged_at: number | null;
  cancelled: boolean;
  movements: Movement[];
}

export interface OrderFact {
  order_id: string;
  patient_id: string;
  code: string | null;
  display: string | null;
  category: string | null;
  priority: string | null;
  ordered_at: number | null;
  cancelled: boolean;
}

export interface ObservationFact {
  code: string;
  display: string | null;
  abnormal: boolean;
}

export interface ResultFact {
  result_id: string;
  patient_id: string;
  order_id: string | null;
  code: string;
  display: string | null;
  category: string;
  status: string;
  first_final_at: number | null;
  version_rank: number;
  version_at: number;
  version_event: string;
  corrected: boolean;
  observations: ObservationFact[];
}

/** How an observation's unit was sent: a UCUM coding, another coded system, text only, or none. */
export type UnitSystem = 'ucum' | 'other' | 'text' | 'none';

/**
 * One observation (OBX / FHIR Observation) of the winning version of a
 * result, for result-level KPIs. Keyed `<result id>|<position>`: the rows
 * mirror that version's observations, so a later winning version rewrites
 * them and drops the positions it no longer has.
 */
export interface ObservationRow {
  observation_key: string;
  result_id: string;
  patient_id: string;
  /** Sending system of the winning version (EventMeta.source.system). */
  source_system: string;
  category: string;
  /** The winning version is final or corrected. */
  released: boolean;
  /** ObservationValue.observationId: stable across versions (null in events written before it). */
  observation_id: string | null;
  sub_id: string | null;
  code: string;
  /** The primary coding's system as a URI (older events carry table-0396 names such as LN). */
  code_system: string;
  display: string | null;
  /** The LOINC coding among the primary and alternate codings, if any. */
  loinc_code: string | null;
  loinc_display: string | null;
  value_type: string;
  unit: string | null;
  unit_code: string | null;
  unit_system: UnitSystem;
  /** Every interpretation code sent (all OBX-8 repetitions, all codings), in order, once each. */
  interpretations: string[];
  abnormal: boolean;
  critical: boolean;
  /** The first critical code (HH, LL or AA), upper case. */
  critical_flag: string | null;
  observed_at: number | null;
}

/** A diagnosis (DG1, FHIR Condition / Encounter.diagnosis) as last stated. */
export interface DiagnosisFact {
  diagnosis_id: string;
  patient_id: string;
  encounter_id: string | null;
  code: string;
  code_system: string;
  display: string | null;
  category: string;
  diagnosis_type: string | null;
  /** 1 = principal (DG1-15, Encounter.diagnosis.rank). */
  rank: number | null;
  clinical_status: string | null;
  verification_status: string | null;
  diagnosed_at: number | null;
  version_at: number;
  version_event: string;
}

export interface EventLogRow {
  event_id: string;
  aggregate: string;
  event_type: string;
  source_system: string;
  occurred_at: number;
  recorded_at: number;
  out_of_order: boolean;
}

/** Latest clinical time seen per stream (aggregate topic + key): arrivals earlier than it are out of order. */
export interface StreamClock {
  stream: string;
  max_occurred_at: number;
}

/** One row per identifier system the site configuration does not list (counted by authorities.ts). */
export interface UnregisteredAuthorityRow {
  system: string;
  /** Events carrying at least one identifier of this system. */
  events: number;
  first_seen_at: number;
  last_seen_at: number;
  /** Which identifiers: patient identifier, visit number, placer order number, filler order number. */
  kinds: string[];
  /** Sending systems (EventMeta.source.system), sorted, at most MAX_SOURCES. */
  sources: string[];
}

export interface AnalyticsTables {
  encounters: EncounterFact;
  orders: OrderFact;
  results: ResultFact;
  observations: ObservationRow;
  diagnoses: DiagnosisFact;
  event_log: EventLogRow;
  stream_clocks: StreamClock;
  /** Counted by authorities.ts (needs the site configuration), not by evolve below. */
  unregistered_authorities: UnregisteredAuthorityRow;
}

const aggregateOf = (type: ClinicalEvent['type']): string =>
  TOPIC_CATALOG.find((t) => (t.events as readonly string[]).includes(type))?.aggregate ?? 'unknown';

const streamOf = (e: ClinicalEvent) => `${aggregateOf(e.type)}|${e.data.patientId}`;

function stubEncounter(id: string, pid: string): EncounterFact {
  return {
    encounter_id: id,
    patient_id: pid,
    encounter_class: 'unknown',
    service: null,
    admitted_at: null,
    discharged_at: null,
    cancelled: false,
    movements: [],
  };
}

const unitOf = (l: Location | null) => l?.unit ?? null;

export function needs(e: ClinicalEvent, _resolve: Resolve): Needs<AnalyticsTables> {
  const base: Needs<AnalyticsTables> = { stream_clocks: [streamOf(e)] };
  switch (e.type) {
    // Attachments are logged like every event (volume, lateness); no KPI reads one.
    case 'AttachmentStored':
    case 'PatientRegistered':
    case 'PatientUpdated':
    case 'PatientsMerged':
    case 'AllergyRecorded':
    case 'CoverageRecorded':
    case 'PatientLinkProposed':
    case 'PatientsLinked':
    case 'PatientsUnlinked':
    case 'PatientLinkRejected':
      return base;
    case 'DiagnosisRecorded':
      return { ...base, diagnoses: [e.data.diagnosisId] };
    case 'EncounterStarted':
    case 'EncounterTransferred':
    case 'EncounterEnded':
    case 'EncounterCancelled':
    case 'EncounterTransferCancelled':
    case 'EncounterDischargeCancelled':
      return { ...base, encounters: [e.data.encounterId] };
    case 'OrderPlaced':
    case 'OrderCancelled':
    case 'OrderStatusChanged':
      return { ...base, orders: [e.data.orderId] };
    case 'ResultReported':
    case 'ResultCorrected':
      return { ...base, results: [e.data.resultId] };
  }
}

function logEvent(draft: Draft<AnalyticsTables>, e: ClinicalEvent): void {
  const m = e.data.meta;
  const stream = streamOf(e);
  const clock = draft.get('stream_clocks', stream);
  const outOfOrder = clock !== undefined && m.occurredAt < clock.max_occurred_at;
  if (!clock || m.occurredAt > clock.max_occurred_at)
    draft.put('stream_clocks', stream, { stream, max_occurred_at: m.occurredAt });
  draft.put('event_log', m.eventId, {
    event_id: m.eventId,
    aggregate: aggregateOf(e.type),
    event_type: e.type,
    source_system: m.source.system,
    occurred_at: m.occurredAt,
    recorded_at: m.recordedAt,
    out_of_order: outOfOrder,
  });
}

function applyResult(
  draft: Draft<AnalyticsTables>,
  d: ResultReported,
  pid: string,
  corrected: boolean,
): void {
  const prev = draft.get('results', d.resultId);
  const at = d.issuedAt ?? d.meta.occurredAt;
  const released = isReleasedStatus(d.status);
  const firstFinal =
    released &&
    (prev?.first_final_at === null || prev?.first_final_at === undefined || at < prev.first_final_at)
      ? at
      : (prev?.first_final_at ?? null);
  const stamp = { rank: resultRank(d.status), at, eventId: d.meta.eventId };
  const current = prev ? { rank: prev.version_rank, at: prev.version_at, eventId: prev.version_event } : null;
  const wins = !prev || supersedes(stamp, current);
  if (wins) putObservations(draft, d, prev?.patient_id ?? pid, prev?.observations.length ?? 0);
  const base: ResultFact =
    !wins && prev
      ? prev
      : {
          result_id: d.resultId,
          patient_id: pid,
          order_id: d.orderId,
          code: d.code.code,
          display: d.code.display,
          category: d.category,
          status: d.status,
          first_final_at: null,
          version_rank: stamp.rank,
          version_at: stamp.at,
          version_event: stamp.eventId,
          corrected: false,
          observations: d.observations.map((o) => ({
            code: o.code.code,
            display: o.code.display,
            abnormal: isAbnormal(o),
          })),
        };
  draft.put('results', d.resultId, {
    ...base,
    patient_id: prev?.patient_id ?? pid,
    first_final_at: firstFinal,
    corrected: (prev?.corrected ?? false) || corrected,
  });
}

const codeOrNull = (c: Code | null) => c?.code ?? null;

/** Every interpretation code of an observation, once each, in the order sent. */
export function interpretationCodes(o: ObservationValue): string[] {
  // Events written before interpretations[] carry the one flag in interpretation.
  const sent = o.interpretations.length > 0 ? o.interpretations : o.interpretation ? [o.interpretation] : [];
  return [...new Set(sent.flatMap((c) => codingsOf(c).map((x) => x.code)).filter((x) => x !== ''))];
}

export function unitSystemOf(o: ObservationValue): UnitSystem {
  if (o.unitCode) return canonicalSystem(o.unitCode.system) === UCUM ? 'ucum' : 'other';
  return o.unit !== null && o.unit.trim() !== '' ? 'text' : 'none';
}

/** The LOINC coding of a code, primary or alternate ('LN' in older events is LOINC too). */
export function loincOf(c: Code): { code: string; display: string | null } | null {
  const hit = codingsOf(c).find((x) => canonicalSystem(x.system) === LOINC && x.code !== '');
  return hit ? { code: hit.code, display: hit.display } : null;
}

export function observationRow(
  d: ResultReported,
  o: ObservationValue,
  index: number,
  patientId: string,
): ObservationRow {
  const flags = interpretationCodes(o);
  const critical = flags.find(isCriticalFlag)?.toUpperCase() ?? null;
  const loinc = loincOf(o.code);
  return {
    observation_key: `${d.resultId}|${index}`,
    result_id: d.resultId,
    patient_id: patientId,
    source_system: d.meta.source.system,
    category: d.category,
    released: isReleasedStatus(d.status),
    observation_id: o.observationId,
    sub_id: o.subId,
    code: o.code.code,
    code_system: canonicalSystem(o.code.system),
    display: o.code.display ?? o.code.text,
    loinc_code: loinc?.code ?? null,
    loinc_display: loinc?.display ?? null,
    value_type: o.valueType,
    unit: o.unit,
    unit_code: codeOrNull(o.unitCode),
    unit_system: unitSystemOf(o),
    interpretations: flags,
    abnormal: flags.some(isAbnormalFlag),
    critical: critical !== null,
    critical_flag: critical,
    observed_at: o.observedAt ?? d.effectiveAt ?? d.issuedAt ?? d.meta.occurredAt,
  };
}

/**
 * The observation rows of a result's new winning version: its positions
 * written, and those the previous winner had beyond them deleted (the
 * previous winner's count is its `observations` list in results).
 */
function putObservations(
  draft: Draft<AnalyticsTables>,
  d: ResultReported,
  patientId: string,
  previousCount: number,
): void {
  d.observations.forEach((o, i) => {
    const row = observationRow(d, o, i, patientId);
    draft.put('observations', row.observation_key, row);
  });
  for (let i = d.observations.length; i < previousCount; i++)
    draft.delete('observations', `${d.resultId}|${i}`);
}

/** The same diagnosis id again restates it: the latest statement wins, whatever order they arrive in. */
function diagnosisRecorded(
  draft: Draft<AnalyticsTables>,
  e: EventOf<'DiagnosisRecorded'>,
  resolve: Resolve,
): void {
  const d = e.data;
  const version = restatement(d.meta, draft.get('diagnoses', d.diagnosisId));
  if (!version) return;
  draft.put('diagnoses', d.diagnosisId, {
    diagnosis_id: d.diagnosisId,
    patient_id: resolve(d.patientId),
    encounter_id: d.encounterId,
    code: d.code.code,
    code_system: canonicalSystem(d.code.system),
    display: d.code.display ?? d.code.text,
    category: d.category,
    diagnosis_type: codeOrNull(d.diagnosisType),
    rank: d.rank,
    clinical_status: d.clinicalStatus,
    verification_status: d.verificationStatus,
    diagnosed_at: d.diagnosedAt,
    ...version,
  });
}

function encounterStarted(
  draft: Draft<AnalyticsTables>,
  e: EventOf<'EncounterStarted'>,
  resolve: Resolve,
): void {
  const d = e.data;
  const pid = resolve(d.patientId);
  const prev = draft.get('encounters', d.encounterId);
  const admittedAt = d.admittedAt ?? d.meta.occurredAt;
  const transfers = (prev?.movements ?? []).filter((m) => m.at > admittedAt);
  draft.put('encounters', d.encounterId, {
    encounter_id: d.encounterId,
    patient_id: pid,
    encounter_class: classOf(d.encounterClass),
    service: d.hospitalService?.code ?? null,
    admitted_at: admittedAt,
    discharged_at: prev?.discharged_at ?? null,
    cancelled: prev?.cancelled ?? false,
    movements: [{ unit: unitOf(d.location), at: admittedAt }, ...transfers],
  });
}

const encounterOf = (draft: Draft<AnalyticsTables>, encounterId: string, patientId: string): EncounterFact =>
  draft.get('encounters', encounterId) ?? stubEncounter(encounterId, patientId);

function encounterTransferred(
  draft: Draft<AnalyticsTables>,
  e: EventOf<'EncounterTransferred'>,
  resolve: Resolve,
): void {
  const prev = encounterOf(draft, e.data.encounterId, resolve(e.data.patientId));
  const movements = [...prev.movements, { unit: unitOf(e.data.toLocation), at: e.data.transferredAt }].sort(
    (a, b) => a.at - b.at,
  );
  draft.put('encounters', e.data.encounterId, { ...prev, movements });
}

function encounterEnded(draft: Draft<AnalyticsTables>, e: EventOf<'EncounterEnded'>, resolve: Resolve): void {
  const prev = encounterOf(draft, e.data.encounterId, resolve(e.data.patientId));
  draft.put('encounters', e.data.encounterId, { ...prev, discharged_at: e.data.endedAt });
}

function encounterUndone(
  draft: Draft<AnalyticsTables>,
  e: EventOf<'EncounterCancelled' | 'EncounterTransferCancelled' | 'EncounterDischargeCancelled'>,
  resolve: Resolve,
): void {
  const prev = encounterOf(draft, e.data.encounterId, resolve(e.data.patientId));
  const part = undonePart(e);
  if (part === 'visit') draft.put('encounters', e.data.encounterId, { ...prev, cancelled: true });
  else if (part === 'discharge')
    draft.put('encounters', e.data.encounterId, { ...prev, discharged_at: null });
  else
    draft.put('encounters', e.data.encounterId, {
      ...prev,
      movements: prev.movements.length > 1 ? prev.movements.slice(0, -1) : prev.movements,
    });
}

function orderPlaced(draft: Draft<AnalyticsTables>, e: EventOf<'OrderPlaced'>, resolve: Resolve): void {
  const d = e.data;
  const prev = draft.get('orders', d.orderId);
  draft.put('orders', d.orderId, {
    order_id: d.orderId,
    patient_id: resolve(d.patientId),
    code: d.code.code,
    display: d.code.display,
    category: d.category,
    priority: d.priority,
    ordered_at: d.orderedAt,
    cancelled: prev?.cancelled ?? false,
  });
}

function orderCancelled(draft: Draft<AnalyticsTables>, e: EventOf<'OrderCancelled'>, resolve: Resolve): void {
  const pid = resolve(e.data.patientId);
  const prev = draft.get('orders', e.data.orderId);
  draft.put('orders', e.data.orderId, {
    order_id: e.data.orderId,
    patient_id: prev?.patient_id ?? pid,
    code: prev?.code ?? null,
    display: prev?.display ?? null,
    category: prev?.category ?? null,
    priority: prev?.priority ?? null,
    ordered_at: prev?.ordered_at ?? null,
    cancelled: true,
  });
}

/** Only logged (logEvent): no measure reads them. */
const onlyLogged = (): void => undefined;

/**
 * Logged like every event. A link or unlink is recorded by the store
 * (person_links, libs/projections/store.ts) and the KPIs that count people
 * count persons through the `persons` view when read (views.ts): no fact row
 * changes, so an unlink has nothing to take back.
 */
const identityDecision = onlyLogged;

const HANDLERS: EvolveHandlers<AnalyticsTables> = {
  // Analytics keeps no demographics, so notSent / cleared have nothing to apply to.
  PatientRegistered: onlyLogged,
  PatientUpdated: onlyLogged,
  PatientsMerged: onlyLogged,
  AllergyRecorded: onlyLogged,
  CoverageRecorded: onlyLogged,
  DiagnosisRecorded: diagnosisRecorded,
  EncounterStarted: encounterStarted,
  EncounterTransferred: encounterTransferred,
  EncounterEnded: encounterEnded,
  EncounterCancelled: encounterUndone,
  EncounterTransferCancelled: encounterUndone,
  EncounterDischargeCancelled: encounterUndone,
  OrderPlaced: orderPlaced,
  OrderCancelled: orderCancelled,
  OrderStatusChanged: onlyLogged,
  ResultReported: (draft, e, resolve) => applyResult(draft, e.data, resolve(e.data.patientId), false),
  ResultCorrected: (draft, e, resolve) => applyResult(draft, e.data, resolve(e.data.patientId), true),
  AttachmentStored: onlyLogged,
  PatientLinkProposed: identityDecision,
  PatientsLinked: identityDecision,
  PatientsUnlinked: identityDecision,
  PatientLinkRejected: identityDecision,
};

const apply = evolveByType(HANDLERS);

/** Every event is logged (volumes, lateness, duplicates); then its type's handler. */
export function evolve(draft: Draft<AnalyticsTables>, e: ClinicalEvent, resolve: Resolve): void {
  logEvent(draft, e);
  apply(draft, e, resolve);
}
