import type { EventSkipping } from '../../events/codec.js';
import { undonePart, classOf, isReleasedStatus, restatement } from '../../projections/clinical.js';
import {
  evolveByType,
  type Draft,
  type EventOf,
  type EvolveHandlers,
  type Needs,
  type ReadModelSkips,
  type Resolve,
} from '../../projections/store.js';

/** A proposed or rejected link decides nothing billable: none of its details are read. */
const LINK_DECISION_DETAILS = [
  'otherPatientId',
  'score',
  'weightsVersion',
  'evidence',
  'rules',
  'decidedBy',
  'reason',
] as const;

/**
 * What billing never reads of the events it consumes: its runner leaves
 * these fields undecoded (a replay spends most of its bytes on results'
 * observations and patients' demographics), and the handlers below see the
 * events without them (BillingEvent), so reading one does not compile. A
 * field billing starts to read comes off this list.
 */
export const BILLING_SKIP = {
  PatientRegistered: ['demographics'],
  PatientUpdated: ['demographics'],
  PatientsMerged: [
    'mergedIdentifiers',
    'mergedNames',
    'mergedAccountNumber',
    'mergedVisitNumber',
    'mergedDemographics',
  ],
  AllergyRecorded: [
    'allergyId',
    'allergen',
    'allergyType',
    'category',
    'severity',
    'criticality',
    'reactions',
    'identifiedOn',
    'clinicalStatus',
    'verificationStatus',
    'encounterId',
  ],
  CoverageRecorded: ['subscriberName'],
  EncounterStarted: [
    'visitNumber',
    'status',
    'location',
    'hospitalService',
    'attendingPractitioner',
    'admitReason',
    'admitSource',
    'admissionType',
    'dischargeDisposition',
  ],
  EncounterTransferred: [
    'fromLocation',
    'toLocation',
    'transferredAt',
    'encounterClass',
    'hospitalService',
    'attendingPractitioner',
  ],
  EncounterEnded: [
    'dischargeDisposition',
    'encounterClass',
    'hospitalService',
    'attendingPractitioner',
    'location',
  ],
  EncounterCancelled: ['reason', 'encounterClass'],
  EncounterTransferCancelled: ['location', 'cancelledLocation', 'cancelledAt'],
  EncounterDischargeCancelled: ['location', 'cancelledAt'],
  DiagnosisRecorded: [
    'diagnosisId',
    'encounterId',
    'code',
    'category',
    'diagnosisType',
    'rank',
    'diagnosedAt',
    'clinician',
    'clinicalStatus',
    'verificationStatus',
  ],
  OrderPlaced: [
    'placerOrderNumber',
    'fillerOrderNumber',
    'orderingProvider',
    'placerGroupNumber',
    'specimens',
    'notes',
    'reasons',
    'orderStatus',
  ],
  OrderCancelled: ['reason', 'cancelledAt', 'placerOrderNumber', 'fillerOrderNumber'],
  OrderStatusChanged: [
    'status',
    'fillerStatus',
    'changedAt',
    'placerOrderNumber',
    'fillerOrderNumber',
    'resultStatus',
    'notes',
  ],
  ResultReported: [
    'effectiveAt',
    'observations',
    'reportText',
    'performer',
    'notes',
    'specimens',
    'placerOrderNumber',
    'fillerOrderNumber',
    'orderCode',
  ],
  ResultCorrected: [
    'effectiveAt',
    'observations',
    'reportText',
    'performer',
    'correctionReason',
    'notes',
    'specimens',
    'placerOrderNumber',
    'fillerOrderNumber',
    'orderCode',
  ],
  AttachmentStored: ['sha256', 'size', 'contentType', 'data'],
  PatientLinkProposed: LINK_DECISION_DETAILS,
  PatientsLinked: ['score', 'weightsVersion', 'evidence', 'rules', 'decidedBy', 'reason'],
  PatientsUnlinked: ['decidedBy', 'reason'],
  PatientLinkRejected: LINK_DECISION_DETAILS,
} as const satisfies ReadModelSkips;

/** The events as billing's runner decodes them (without BILLING_SKIP's fields). */
export type BillingEvent = EventSkipping<typeof BILLING_SKIP>;

/**
 * Billing's read model: an account per encounter and one charge line per
 * order. Pure: evolves a draft of rows, no I/O.
 *
 * A line's own lifecycle is decided here (`lineStatus`): pending when
 * ordered, billable once a final (or corrected) result exists, voided when
 * the order is cancelled. Keyed by order id, so a correction or a resend
 * can never add a second charge. Voiding by a cancelled encounter, and the
 * price, are joined at read time (views `charges`, `billing_problems`), so an
 * encounter cancelled before or after its orders arrive, or a chargemaster
 * edit, gives the same answer.
 *
 * Coverage (insurance) is a patient's, not an account's: one row per
 * coverage id, and an account's primary coverage is chosen at read time
 * (view `account_coverage`, model.ts) from its patient's rows. So a coverage
 * that arrives after the charges (or before the visit, or on another topic
 * partition than a merged-away record's charges) gives the same account and
 * worklist, live and on replay; no account row is rewritten when coverage
 * changes, and no event has to find every account of a patient.
 */
export type AccountStatus = 'placeholder' | 'open' | 'discharged' | 'cancelled';
export type LineStatus = 'pending' | 'billable' | 'voided' | 'unordered';

export interface AccountRow {
  encounter_id: string;
  patient_id: string;
  encounter_class: string | null;
  admitted_at: number | null;
  discharged_at: number | null;
  status: AccountStatus;
  payer: string | null;
}

export interface ChargeLineRow {
  line_id: string;
  patient_id: string;
  order_id: string | null;
  encounter_id: string | null;
  code: string;
  code_system: string;
  description: string | null;
  category: string;
  priority: string | null;
  ordered_at: number | null;
  placed: boolean;
  order_cancelled: boolean;
  first_final_at: number | null;
  final_result_id: string | null;
  status: LineStatus;
}

/** One coverage (insurance) of a patient, as last stated by its sender (CoverageRecorded). */
export interface CoverageRow {
  coverage_id: string;
  patient_id: string;
  /** Coordination of benefits: 1 = primary. Null when the sender gave none (sorted last). */
  coverage_order: number | null;
  payer_id: string | null;
  payer_id_system: string | null;
  payer_name: string | null;
  plan_code: string | null;
  plan_display: string | null;
  plan_type: string | null;
  group_number: string | null;
  group_name: string | null;
  member_id: string | null;
  relationship: string | null;
  /** Whole dates (YYYY-MM-DD): a partial start is its first day, a partial end its last. */
  period_start: string | null;
  period_end: string | null;
  /** active | cancelled | draft | entered-in-error: only active coverage covers an account. */
  status: string;
  encounter_id: string | null;
  /** Which statement of the coverage this row holds (latest clinical time, then event id). */
  version_at: number;
  version_event: string;
}

export interface BillingTables {
  accounts: AccountRow;
  charge_lines: ChargeLineRow;
  coverages: CoverageRow;
}

export function lineStatus(
  l: Pick<ChargeLineRow, 'placed' | 'order_cancelled' | 'first_final_at'>,
): LineStatus {
  if (l.order_cancelled) return 'voided';
  if (!l.placed) return 'unordered';
  return l.first_final_at !== null ? 'billable' : 'pending';
}

const lineKeyOfResult = (d: { orderId: string | null; resultId: string }) =>
  d.orderId ?? `result:${d.resultId}`;

function stubAccount(encounterId: string, patientId: string): AccountRow {
  return {
    encounter_id: encounterId,
    patient_id: patientId,
    encounter_class: null,
    admitted_at: null,
    discharged_at: null,
    status: 'placeholder',
    payer: null,
  };
}

function stubLine(key: string, patientId: string): ChargeLineRow {
  return {
    line_id: key,
    patient_id: patientId,
    order_id: null,
    encounter_id: null,
    code: '',
    code_system: '',
    description: null,
    category: 'other',
    priority: null,
    ordered_at: null,
    placed: false,
    order_cancelled: false,
    first_final_at: null,
    final_result_id: null,
    status: 'unordered',
  };
}

function putLine(draft: Draft<BillingTables>, l: ChargeLineRow): void {
  draft.put('charge_lines', l.line_id, { ...l, status: lineStatus(l) });
}

/** Only the account's existence is read: its row is loaded as presence (see `presence`). */
function ensureAccount(draft: Draft<BillingTables>, encounterId: string | null, patientId: string): void {
  if (encounterId && !draft.has('accounts', encounterId))
    draft.put('accounts', encounterId, stubAccount(encounterId, patientId));
}

function applyResult(
  draft: Draft<BillingTables>,
  d: EventOf<'ResultReported' | 'ResultCorrected', BillingEvent>['data'],
  patientId: string,
): void {
  const key = lineKeyOfResult(d);
  const prev = draft.get('charge_lines', key) ?? {
    ...stubLine(key, patientId),
    order_id: d.orderId,
    code: d.code.code,
    code_system: d.code.system,
    description: d.code.display,
    category: d.category,
  };
  const encounterId = prev.encounter_id ?? d.encounterId;
  // Only the event's own encounter was loaded; a line's earlier encounter got its account then.
  if (prev.encounter_id === null) ensureAccount(draft, d.encounterId, patientId);
  if (!isReleasedStatus(d.status)) {
    if (!draft.get('charge_lines', key)) putLine(draft, { ...prev, encounter_id: encounterId });
    return;
  }
  const at = d.issuedAt ?? d.meta.occurredAt;
  // The first release bills; a correction or a resend finds it already there.
  const first =
    prev.first_final_at === null ||
    at < prev.first_final_at ||
    (at === prev.first_final_at && d.resultId < (prev.final_result_id ?? ''));
  putLine(draft, {
    ...prev,
    encounter_id: encounterId,
    ...(first ? { first_final_at: at, final_result_id: d.resultId } : {}),
  });
}

export function needs(e: BillingEvent, resolve: Resolve): Needs<BillingTables> {
  switch (e.type) {
    // Attachments (PDF reports) carry nothing billable: the result event bills.
    case 'AttachmentStored':
    case 'PatientRegistered':
    case 'PatientUpdated':
    case 'PatientsMerged':
    case 'AllergyRecorded':
    case 'DiagnosisRecorded':
    case 'PatientLinkProposed':
    case 'PatientsLinked':
    case 'PatientsUnlinked':
    case 'PatientLinkRejected':
      return {};
    case 'CoverageRecorded':
      return { coverages: [e.data.coverageId] };
    case 'EncounterTransferred':
      return {};
    case 'EncounterStarted':
    case 'EncounterEnded':
    case 'EncounterCancelled':
    case 'EncounterTransferCancelled':
    case 'EncounterDischargeCancelled':
      return { accounts: [e.data.encounterId] };
    case 'OrderPlaced':
    case 'OrderCancelled':
    case 'OrderStatusChanged':
      return { charge_lines: [e.data.orderId] };
    case 'ResultReported':
    case 'ResultCorrected':
      void resolve;
      return { charge_lines: [lineKeyOfResult(e.data)] };
  }
}

/**
 * Rows an event only needs to exist: the account an order, a result or a
 * transfer makes sure of (`ensureAccount`, Draft.has), so its row is not
 * read back per batch. Draft.get on such a row throws (libs/projections/store.ts).
 */
export function presence(e: BillingEvent): Needs<BillingTables> {
  switch (e.type) {
    case 'OrderPlaced':
    case 'ResultReported':
    case 'ResultCorrected':
      return e.data.encounterId ? { accounts: [e.data.encounterId] } : {};
    case 'EncounterTransferred':
      return { accounts: [e.data.encounterId] };
    case 'AttachmentStored':
    case 'PatientRegistered':
    case 'PatientUpdated':
    case 'PatientsMerged':
    case 'AllergyRecorded':
    case 'DiagnosisRecorded':
    case 'PatientLinkProposed':
    case 'PatientsLinked':
    case 'PatientsUnlinked':
    case 'PatientLinkRejected':
    case 'CoverageRecorded':
    case 'EncounterStarted':
    case 'EncounterEnded':
    case 'EncounterCancelled':
    case 'EncounterTransferCancelled':
    case 'EncounterDischargeCancelled':
    case 'OrderCancelled':
    case 'OrderStatusChanged':
      return {};
  }
}

function encounterStarted(
  draft: Draft<BillingTables>,
  e: EventOf<'EncounterStarted', BillingEvent>,
  resolve: Resolve,
): void {
  const d = e.data;
  const pid = resolve(d.patientId);
  const prev = draft.get('accounts', d.encounterId);
  draft.put('accounts', d.encounterId, {
    encounter_id: d.encounterId,
    patient_id: pid,
    encounter_class: classOf(d.encounterClass),
    admitted_at: d.admittedAt ?? d.meta.occurredAt,
    discharged_at: prev?.discharged_at ?? null,
    status: prev?.status === 'cancelled' ? 'cancelled' : prev?.discharged_at ? 'discharged' : 'open',
    payer: d.payer ?? prev?.payer ?? null,
  });
}

const accountOf = (draft: Draft<BillingTables>, encounterId: string, patientId: string): AccountRow =>
  draft.get('accounts', encounterId) ?? stubAccount(encounterId, patientId);

function encounterEnded(
  draft: Draft<BillingTables>,
  e: EventOf<'EncounterEnded', BillingEvent>,
  resolve: Resolve,
): void {
  const prev = accountOf(draft, e.data.encounterId, resolve(e.data.patientId));
  draft.put('accounts', e.data.encounterId, {
    ...prev,
    discharged_at: e.data.endedAt,
    status: prev.status === 'cancelled' ? 'cancelled' : 'discharged',
  });
}

function encounterUndone(
  draft: Draft<BillingTables>,
  e: EventOf<
    'EncounterCancelled' | 'EncounterTransferCancelled' | 'EncounterDischargeCancelled',
    BillingEvent
  >,
  resolve: Resolve,
): void {
  const prev = accountOf(draft, e.data.encounterId, resolve(e.data.patientId));
  const part = undonePart(e);
  if (part === 'visit') draft.put('accounts', e.data.encounterId, { ...prev, status: 'cancelled' });
  else if (part === 'discharge')
    draft.put('accounts', e.data.encounterId, {
      ...prev,
      discharged_at: null,
      status: prev.status === 'cancelled' ? 'cancelled' : 'open',
    });
  else if (!draft.has('accounts', e.data.encounterId)) draft.put('accounts', e.data.encounterId, prev);
}

function orderPlaced(
  draft: Draft<BillingTables>,
  e: EventOf<'OrderPlaced', BillingEvent>,
  resolve: Resolve,
): void {
  const d = e.data;
  const pid = resolve(d.patientId);
  const prev = draft.get('charge_lines', d.orderId) ?? stubLine(d.orderId, pid);
  const encounterId = d.encounterId ?? prev.encounter_id;
  ensureAccount(draft, d.encounterId, pid);
  putLine(draft, {
    ...prev,
    patient_id: pid,
    order_id: d.orderId,
    encounter_id: encounterId,
    code: d.code.code,
    code_system: d.code.system,
    description: d.code.display,
    category: d.category,
    priority: d.priority,
    ordered_at: d.orderedAt,
    placed: true,
  });
}

function orderCancelled(
  draft: Draft<BillingTables>,
  e: EventOf<'OrderCancelled', BillingEvent>,
  resolve: Resolve,
): void {
  const pid = resolve(e.data.patientId);
  const prev = draft.get('charge_lines', e.data.orderId) ?? {
    ...stubLine(e.data.orderId, pid),
    order_id: e.data.orderId,
  };
  putLine(draft, { ...prev, order_cancelled: true });
}

const ISO_DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?=$|T)/;

/**
 * An ISO 8601 date, possibly partial (HL7 DT, FHIR date/dateTime), as the
 * whole day a period bound means: the first day of a partial start, the
 * last day of a partial end. Not a date: null (an open bound).
 */
export function periodBound(value: string | null, bound: 'start' | 'end'): string | null {
  const m = ISO_DATE.exec(value ?? '');
  if (!m) return null;
  const y = Number(m[1]);
  const month = m[2] === undefined ? (bound === 'start' ? 1 : 12) : Number(m[2]);
  // Day 0 of the next month is the last day of this one (UTC: no zone in a date).
  const lastDay = new Date(Date.UTC(y, month, 0)).getUTCDate();
  const day = m[3] === undefined ? (bound === 'start' ? 1 : lastDay) : Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > lastDay) return null;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${m[1]}-${pad(month)}-${pad(day)}`;
}

/** The same coverage id again restates it: the latest statement wins, whatever order they arrive in. */
function coverageRecorded(
  draft: Draft<BillingTables>,
  e: EventOf<'CoverageRecorded', BillingEvent>,
  resolve: Resolve,
): void {
  const d = e.data;
  const version = restatement(d.meta, draft.get('coverages', d.coverageId));
  if (!version) return;
  draft.put('coverages', d.coverageId, {
    coverage_id: d.coverageId,
    // The winning statement's patient (a merge then moves the row with the patient_id column).
    patient_id: resolve(d.patientId),
    coverage_order: d.order,
    payer_id: d.payerId?.value ?? null,
    payer_id_system: d.payerId?.system ?? null,
    payer_name: d.payerName,
    plan_code: d.plan?.code ?? null,
    plan_display: d.plan?.display ?? d.plan?.text ?? null,
    plan_type: d.planType?.code ?? null,
    group_number: d.groupNumber,
    group_name: d.groupName,
    member_id: d.memberId,
    relationship: d.relationship?.code ?? null,
    period_start: periodBound(d.periodStart, 'start'),
    period_end: periodBound(d.periodEnd, 'end'),
    status: d.status.toLowerCase(),
    encounter_id: d.encounterId,
    ...version,
  });
}

/** Events that change nothing billable. */
const nothingBillable = (): void => undefined;

/**
 * Links between records of one person (PatientsLinked / PatientsUnlinked) are
 * recorded by the store (person_links, libs/projections/store.ts) and followed
 * when read (view person_accounts): they move no account or charge, so an
 * unlink has nothing to take back. Proposals and rejections decide nothing.
 */
const identityDecision = (): void => undefined;

const HANDLERS: EvolveHandlers<BillingTables, BillingEvent> = {
  // Merges move rows in the store (patient_id columns); nothing else changes. Billing keeps no
  // demographics, so an update's notSent / cleared (HL7 null semantics) have nothing to apply to.
  PatientRegistered: nothingBillable,
  PatientUpdated: nothingBillable,
  PatientsMerged: nothingBillable,
  AllergyRecorded: nothingBillable,
  CoverageRecorded: coverageRecorded,
  DiagnosisRecorded: nothingBillable,
  EncounterStarted: encounterStarted,
  EncounterTransferred: (draft, e, resolve) =>
    ensureAccount(draft, e.data.encounterId, resolve(e.data.patientId)),
  EncounterEnded: encounterEnded,
  EncounterCancelled: encounterUndone,
  EncounterTransferCancelled: encounterUndone,
  EncounterDischargeCancelled: encounterUndone,
  OrderPlaced: orderPlaced,
  OrderCancelled: orderCancelled,
  OrderStatusChanged: nothingBillable,
  ResultReported: (draft, e, resolve) => applyResult(draft, e.data, resolve(e.data.patientId)),
  ResultCorrected: (draft, e, resolve) => applyResult(draft, e.data, resolve(e.data.patientId)),
  AttachmentStored: nothingBillable,
  PatientLinkProposed: identityDecision,
  PatientsLinked: identityDecision,
  PatientsUnlinked: identityDecision,
  PatientLinkRejected: identityDecision,
};

export const evolve = evolveByType(HANDLERS);
