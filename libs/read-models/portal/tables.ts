import type {
  AllergyIntolerance,
  Condition,
  Coverage,
  DiagnosticReport,
  Encounter,
  Observation,
  Patient,
  ServiceRequest,
} from '@medplum/fhirtypes';
import type { Demographics } from '../../events/index.js';

/**
 * The patient portal's read model: what a patient may see of their own
 * record, as FHIR R4 resources. Pure: evolves a draft of rows, no I/O.
 *
 * Visibility rules: demographics, encounters (not those entered in error),
 * orders with their status, and only released reports (final or corrected;
 * the highest version wins whatever the arrival order; preliminary never
 * shows; a cancelled report is withdrawn).
 *
 * Times: every dateTime/instant in a resource is rendered as the source sent
 * it (offset and precision from EventMeta.sourceTimes, libs/fhir/datetime.ts),
 * so every reader of the resource (API, GET /patients/:id/record) sees the
 * sender's local time; events without sourceTimes render in UTC as before.
 * Rendered strings with different offsets do not sort as instants, so each
 * searchable table keeps the instant its FHIR `date` parameter is about in
 * `date_at` (UTC timestamptz) for search and ordering.
 */
export interface PatientRow {
  patient_id: string;
  merged_into: string | null;
  /** Created by a fact about a patient not (yet) registered. */
  placeholder: boolean;
  replaces: string[];
  resource: Patient;
  /**
   * The demographics the resource shows, after HL7 null semantics (fields not sent kept, `""`
   * deleted): what the next partial update is applied to. Null on a placeholder.
   */
  demographics: Demographics | null;
}

export interface EncounterRow {
  encounter_id: string;
  patient_id: string;
  visible: boolean;
  resource: Encounter;
  /** period.start as an instant (search `date`, ordering). */
  date_at: number | null;
}

export interface ServiceRequestRow {
  order_id: string;
  patient_id: string;
  resource: ServiceRequest;
  /** authoredOn as an instant (search `date`, ordering). */
  date_at: number | null;
}

export interface ReportRow {
  result_id: string;
  patient_id: string;
  order_id: string | null;
  visible: boolean;
  version_rank: number;
  version_at: number;
  version_event: string;
  resource: DiagnosticReport;
  /** effectiveDateTime as an instant (search `date`, ordering). */
  date_at: number | null;
}

export interface ObservationRow {
  observation_id: string;
  result_id: string;
  patient_id: string;
  resource: Observation;
  /** effectiveDateTime as an instant (search `date`, ordering). */
  date_at: number | null;
}

/**
 * Content carried by AttachmentStored (a PDF report), stored once per
 * content: keyed by its SHA-256, whoever it belongs to. Who may read it
 * follows from the released reports that present it (services/api).
 */
export interface AttachmentRow {
  sha256: string;
  content_type: string;
  size: number;
  /** FHIR Attachment.hash: base64 SHA-1 of the data, computed when stored. */
  sha1: string;
  /** The bytes as Postgres bytea input (`\x` + hex): rows travel to the store as JSON. */
  data: string;
}

/** Clinical facts beside visits and results (clinical.ts): AllergyIntolerance, Condition, Coverage. */
export interface AllergyRow {
  allergy_id: string;
  patient_id: string;
  visible: boolean;
  resource: AllergyIntolerance & { id: string };
  /** recordedDate (AL1-6) as an instant: search `date`, ordering. */
  date_at: number | null;
}

export interface ConditionRow {
  condition_id: string;
  patient_id: string;
  encounter_id: string | null;
  visible: boolean;
  resource: Condition & { id: string };
  /** recordedDate (DG1-5) as an instant: ordering. */
  date_at: number | null;
}

export interface CoverageRow {
  coverage_id: string;
  patient_id: string;
  visible: boolean;
  resource: Coverage & { id: string };
  /** period.start as an instant: ordering. */
  date_at: number | null;
}

export interface PortalTables {
  patients: PatientRow;
  encounters: EncounterRow;
  service_requests: ServiceRequestRow;
  reports: ReportRow;
  observations: ObservationRow;
  attachments: AttachmentRow;
  allergies: AllergyRow;
  conditions: ConditionRow;
  coverages: CoverageRow;
}
