import type { ClinicalEvent, Location, ResultReported } from '../../events/index.js';
import { TOPIC_CATALOG } from '../../events/index.js';
import {
  undonePart,
  classOf,
  isAbnormal,
  isReleasedStatus,
  resultRank,
  supersedes,
} from '../../projections/clinical.js';
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
    case 'DiagnosisRecorded':
      return base;
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
  const base: ResultFact =
    prev && !supersedes(stamp, current)
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

const HANDLERS: EvolveHandlers<AnalyticsTables> = {
  // Analytics keeps no demographics, so notSent / cleared have nothing to apply to.
  PatientRegistered: onlyLogged,
  PatientUpdated: onlyLogged,
  PatientsMerged: onlyLogged,
  AllergyRecorded: onlyLogged,
  CoverageRecorded: onlyLogged,
  DiagnosisRecorded: onlyLogged,
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
};

const apply = evolveByType(HANDLERS);

/** Every event is logged (volumes, lateness, duplicates); then its type's handler. */
export function evolve(draft: Draft<AnalyticsTables>, e: ClinicalEvent, resolve: Resolve): void {
  logEvent(draft, e);
  apply(draft, e, resolve);
}
