import type { ClinicalEvent, Demographics, Identifier } from '../../libs/events/index.js';
import { applyField, fieldState } from '../../libs/events/demographics.js';

/**
 * The patient directory: one row per enterprise patient id with current
 * demographics, the walking skeleton's read model. Pure: given rows and an
 * event, returns the rows after it.
 */
export interface PatientRow {
  patientId: string;
  family: string | null;
  given: string[];
  birthDate: string | null;
  gender: string | null;
  identifiers: Identifier[];
  mergedInto: string | null;
  version: number;
  lastEventId: string;
  updatedAt: number;
}

export type Rows = ReadonlyMap<string, PatientRow>;

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
    patientId,
    family: applyField(names, name?.family ?? null, prev?.family, null),
    given: applyField(names, name?.given ?? [], prev?.given, []),
    birthDate: applyField(fieldState(d, 'birthDate'), d.birthDate, prev?.birthDate, null),
    gender: applyField(fieldState(d, 'administrativeGender'), d.administrativeGender, prev?.gender, null),
    identifiers: d.identifiers,
    mergedInto: prev?.mergedInto ?? null,
    version: (prev?.version ?? 0) + 1,
    lastEventId: eventId,
    updatedAt: at,
  };
}

function stub(patientId: string, eventId: string, at: number): PatientRow {
  return {
    patientId,
    family: null,
    given: [],
    birthDate: null,
    gender: null,
    identifiers: [],
    mergedInto: null,
    version: 0,
    lastEventId: eventId,
    updatedAt: at,
  };
}

/** Patient ids whose rows an event reads or writes. */
export function touchedPatients(e: ClinicalEvent): string[] {
  return e.type === 'PatientsMerged' ? [e.data.patientId, e.data.mergedPatientId] : [e.data.patientId];
}

export function evolve(rows: Rows, e: ClinicalEvent): Rows {
  const next = new Map(rows);
  const at = e.data.meta.occurredAt;
  switch (e.type) {
    case 'PatientRegistered':
    case 'PatientUpdated': {
      // Registered twice (two sources) or updated before registered (cross-source
      // disorder) both converge on "latest snapshot wins".
      const prev = rows.get(e.data.patientId);
      next.set(
        e.data.patientId,
        fromDemographics(prev, e.data.patientId, e.data.demographics, e.data.meta.eventId, at),
      );
      return next;
    }
    case 'PatientsMerged': {
      const survivorPrev = rows.get(e.data.patientId) ?? stub(e.data.patientId, e.data.meta.eventId, at);
      const retiredPrev =
        rows.get(e.data.mergedPatientId) ?? stub(e.data.mergedPatientId, e.data.meta.eventId, at);
      const known = new Set(survivorPrev.identifiers.map((i) => `${i.system}|${i.value}`));
      const moved = [...retiredPrev.identifiers, ...e.data.mergedIdentifiers].filter((i) => {
        const k = `${i.system}|${i.value}`;
        if (known.has(k)) return false;
        known.add(k);
        return true;
      });
      next.set(e.data.patientId, {
        ...survivorPrev,
        identifiers: [...survivorPrev.identifiers, ...moved],
        version: survivorPrev.version + 1,
        lastEventId: e.data.meta.eventId,
        updatedAt: at,
      });
      next.set(e.data.mergedPatientId, {
        ...retiredPrev,
        mergedInto: e.data.patientId,
        version: retiredPrev.version + 1,
        lastEventId: e.data.meta.eventId,
        updatedAt: at,
      });
      return next;
    }
    case 'EncounterStarted':
    case 'EncounterTransferred':
    case 'EncounterEnded':
    case 'EncounterCancelled':
    case 'EncounterTransferCancelled':
    case 'EncounterDischargeCancelled':
    case 'OrderPlaced':
    case 'OrderCancelled':
    case 'OrderStatusChanged':
    case 'ResultReported':
    case 'ResultCorrected':
    case 'AttachmentStored':
      return rows;
  }
}
