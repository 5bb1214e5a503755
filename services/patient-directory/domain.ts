import type { ClinicalEvent, Demographics, Identifier } from '../../libs/events/index.js';
import { applyField, fieldState } from '../../libs/events/demographics.js';
import {
  evolveByType,
  type Draft,
  type EvolveHandlers,
  type Needs,
  type Resolve,
} from '../../libs/projections/store.js';

/**
 * The patient directory: one row per enterprise patient id with current
 * demographics, the walking skeleton's read model. Pure: evolves a draft of
 * rows (libs/projections/store.ts), no I/O. Rows are in the table's own
 * shape; times are epoch ms.
 */
export interface PatientRow {
  patient_id: string;
  family: string | null;
  given: string[];
  birth_date: string | null;
  gender: string | null;
  identifiers: Identifier[];
  /** Set on the retired patient of a merge; its row stays, the survivor gains its identifiers. */
  merged_into: string | null;
  version: number;
  last_event_id: string;
  updated_at: number;
}

export interface DirectoryTables {
  patients: PatientRow;
}

/**
 * The row's latest event by occurrence time (then event id), not the last
 * applied: a retired patient's own events and the merge that retires it are
 * on different partitions (keyed by each patient), so which is applied last
 * differs between two builds of the same log (one instance or several, a
 * rebalance in between); the latest by time does not.
 */
function latest(
  prev: PatientRow | undefined,
  eventId: string,
  at: number,
): Pick<PatientRow, 'last_event_id' | 'updated_at'> {
  const newer =
    !prev ||
    prev.version === 0 ||
    at > prev.updated_at ||
    (at === prev.updated_at && eventId > prev.last_event_id);
  return newer
    ? { last_event_id: eventId, updated_at: at }
    : { last_event_id: prev.last_event_id, updated_at: prev.updated_at };
}

/**
 * HL7 null semantics (libs/events/demographics.ts): a field the sender did not send keeps the
 * stored value, one sent as `""` is deleted, a sent one replaces it; a full snapshot (FHIR, old
 * events) replaces everything.
 */
function fromDemographics(
  prev: PatientRow | undefined,
  patientId: string,
  d: Demographics,
  eventId: string,
  at: number,
): PatientRow {
  const name = d.names.find((n) => n.use === 'official') ?? d.names[0];
  const names = fieldState(d, 'names');
  return {
    patient_id: patientId,
    family: applyField(names, name?.family ?? null, prev?.family, null),
    given: applyField(names, name?.given ?? [], prev?.given, []),
    birth_date: applyField(fieldState(d, 'birthDate'), d.birthDate, prev?.birth_date, null),
    gender: applyField(fieldState(d, 'administrativeGender'), d.administrativeGender, prev?.gender, null),
    identifiers: d.identifiers,
    merged_into: prev?.merged_into ?? null,
    version: (prev?.version ?? 0) + 1,
    ...latest(prev, eventId, at),
  };
}

function stub(patientId: string, eventId: string, at: number): PatientRow {
  return {
    patient_id: patientId,
    family: null,
    given: [],
    birth_date: null,
    gender: null,
    identifiers: [],
    merged_into: null,
    version: 0,
    last_event_id: eventId,
    updated_at: at,
  };
}

/** Patient ids whose rows an event reads or writes. */
export function touchedPatients(e: ClinicalEvent): string[] {
  if (e.type === 'PatientsMerged') return [e.data.patientId, e.data.mergedPatientId];
  if (e.type === 'PatientRegistered' || e.type === 'PatientUpdated') return [e.data.patientId];
  return [];
}

/**
 * The directory keeps each id's own row (a retired id's row is marked, not
 * moved), so ids are used as sent; the final survivor's row (`resolve`) is
 * read too, because identifiers that reach a retired patient after its
 * merge also belong to it.
 */
export function needs(e: ClinicalEvent, resolve: Resolve = (id) => id): Needs<DirectoryTables> {
  const ids = touchedPatients(e);
  return ids.length > 0 ? { patients: [...new Set([...ids, ...ids.map(resolve)])] } : {};
}

const identifierKey = (i: Identifier) => `${i.system}|${i.value}`;

/** `extra` identifiers the row does not have yet, in their order. */
function unknown(row: PatientRow, extra: readonly Identifier[]): Identifier[] {
  const known = new Set(row.identifiers.map(identifierKey));
  return extra.filter((i) => {
    const k = identifierKey(i);
    if (known.has(k)) return false;
    known.add(k);
    return true;
  });
}

/**
 * A retired patient's identifiers that reach it after its merge (its own
 * later events, or a merge into it applied after the one that retired it:
 * each merge is on its survivor's partition) are added to its final
 * survivor, as they would have been had they come first. Only the
 * identifiers: the survivor's version and latest event stay its own.
 */
function passToSurvivor(
  draft: Draft<DirectoryTables>,
  retiredId: string,
  identifiers: readonly Identifier[],
  resolve: Resolve,
): void {
  const rootId = resolve(retiredId);
  const root = rootId === retiredId ? undefined : draft.get('patients', rootId);
  if (!root) return;
  const added = unknown(root, identifiers);
  if (added.length > 0)
    draft.put('patients', rootId, { ...root, identifiers: [...root.identifiers, ...added] });
}

function merge(
  draft: Draft<DirectoryTables>,
  e: Extract<ClinicalEvent, { type: 'PatientsMerged' }>,
  resolve: Resolve,
): void {
  const { patientId, mergedPatientId, meta } = e.data;
  const at = meta.occurredAt;
  const survivor = draft.get('patients', patientId) ?? stub(patientId, meta.eventId, at);
  const retired = draft.get('patients', mergedPatientId) ?? stub(mergedPatientId, meta.eventId, at);
  const moved = unknown(survivor, [...retired.identifiers, ...e.data.mergedIdentifiers]);
  draft.put('patients', patientId, {
    ...survivor,
    identifiers: [...survivor.identifiers, ...moved],
    version: survivor.version + 1,
    ...latest(survivor, meta.eventId, at),
  });
  draft.put('patients', mergedPatientId, {
    ...retired,
    merged_into: patientId,
    version: retired.version + 1,
    ...latest(retired, meta.eventId, at),
  });
  if (survivor.merged_into !== null) passToSurvivor(draft, patientId, moved, resolve);
}

/** Registered twice (two sources) or updated before registered (cross-source disorder) both converge on "latest snapshot wins". */
function demographicsSnapshot(
  draft: Draft<DirectoryTables>,
  e: Extract<ClinicalEvent, { type: 'PatientRegistered' | 'PatientUpdated' }>,
  resolve: Resolve,
): void {
  const { patientId, demographics, meta } = e.data;
  const prev = draft.get('patients', patientId);
  draft.put(
    'patients',
    patientId,
    fromDemographics(prev, patientId, demographics, meta.eventId, meta.occurredAt),
  );
  if (prev?.merged_into) passToSurvivor(draft, patientId, demographics.identifiers, resolve);
}

/** The directory holds patients only: visits, orders, results and attachments change nothing in it. */
const notAPatientFact = (): void => undefined;

/**
 * A link between two records of one person is recorded by the store
 * (person_links, libs/projections/store.ts) and followed when read (view
 * patient_persons): unlike a merge it marks no row, so an unlink has
 * nothing to take back. Proposals and rejections decide nothing.
 */
const identityDecision = (): void => undefined;

const HANDLERS: EvolveHandlers<DirectoryTables> = {
  PatientRegistered: demographicsSnapshot,
  PatientUpdated: demographicsSnapshot,
  PatientsMerged: merge,
  EncounterStarted: notAPatientFact,
  EncounterTransferred: notAPatientFact,
  EncounterEnded: notAPatientFact,
  EncounterCancelled: notAPatientFact,
  EncounterTransferCancelled: notAPatientFact,
  EncounterDischargeCancelled: notAPatientFact,
  OrderPlaced: notAPatientFact,
  OrderCancelled: notAPatientFact,
  OrderStatusChanged: notAPatientFact,
  ResultReported: notAPatientFact,
  ResultCorrected: notAPatientFact,
  AttachmentStored: notAPatientFact,
  PatientLinkProposed: identityDecision,
  PatientsLinked: identityDecision,
  PatientsUnlinked: identityDecision,
  PatientLinkRejected: identityDecision,
  AllergyRecorded: notAPatientFact,
  CoverageRecorded: notAPatientFact,
  DiagnosisRecorded: notAPatientFact,
};

export const evolve = evolveByType(HANDLERS);
