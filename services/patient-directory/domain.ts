import type { ClinicalEvent, Demographics, Identifier } from '../../libs/events/index.js';
import { applyField, fieldState } from '../../libs/events/demographics.js';
import { evolveByType, type Draft, type EvolveHandlers, type Needs } from '../../libs/projections/store.js';

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
    last_event_id: eventId,
    updated_at: at,
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
 * moved), so ids are used as sent: `resolve` is not needed.
 */
export function needs(e: ClinicalEvent): Needs<DirectoryTables> {
  const ids = touchedPatients(e);
  return ids.length > 0 ? { patients: ids } : {};
}

function merge(draft: Draft<DirectoryTables>, e: Extract<ClinicalEvent, { type: 'PatientsMerged' }>): void {
  const { patientId, mergedPatientId, meta } = e.data;
  const at = meta.occurredAt;
  const survivor = draft.get('patients', patientId) ?? stub(patientId, meta.eventId, at);
  const retired = draft.get('patients', mergedPatientId) ?? stub(mergedPatientId, meta.eventId, at);
  const known = new Set(survivor.identifiers.map((i) => `${i.system}|${i.value}`));
  const moved = [...retired.identifiers, ...e.data.mergedIdentifiers].filter((i) => {
    const k = `${i.system}|${i.value}`;
    if (known.has(k)) return false;
    known.add(k);
    return true;
  });
  draft.put('patients', patientId, {
    ...survivor,
    identifiers: [...survivor.identifiers, ...moved],
    version: survivor.version + 1,
    last_event_id: meta.eventId,
    updated_at: at,
  });
  draft.put('patients', mergedPatientId, {
    ...retired,
    merged_into: patientId,
    version: retired.version + 1,
    last_event_id: meta.eventId,
    updated_at: at,
  });
}

/** Registered twice (two sources) or updated before registered (cross-source disorder) both converge on "latest snapshot wins". */
function demographicsSnapshot(
  draft: Draft<DirectoryTables>,
  e: Extract<ClinicalEvent, { type: 'PatientRegistered' | 'PatientUpdated' }>,
): void {
  const { patientId, demographics, meta } = e.data;
  const prev = draft.get('patients', patientId);
  draft.put(
    'patients',
    patientId,
    fromDemographics(prev, patientId, demographics, meta.eventId, meta.occurredAt),
  );
}

/** The directory holds patients only: visits, orders, results and attachments change nothing in it. */
const notAPatientFact = (): void => undefined;

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
  AllergyRecorded: notAPatientFact,
  CoverageRecorded: notAPatientFact,
  DiagnosisRecorded: notAPatientFact,
};

export const evolve = evolveByType(HANDLERS);
