import type { Extension, Patient, PatientContact as FhirPatientContact } from '@medplum/fhirtypes';
import type { Code, Demographics, PatientContact } from '../events/index.js';
import { enterprisePatientId, type IdentityPolicy } from '../identity/index.js';
import {
  address,
  code,
  codeNotInBinding,
  concept,
  concepts,
  humanName,
  identifiers,
  instant,
  metaFor,
  practitioner,
  telecom,
  type MapContext,
  type MapInput,
  type MapResult,
} from './map-common.js';
import { textCode } from '../terminology/code-systems.js';
import { errorIssue } from './outcome.js';
import { invalid } from './validate.js';

/** US Core race and ethnicity (complex extensions: ombCategory, detailed, text). */
export const US_CORE_RACE = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race';
export const US_CORE_ETHNICITY = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity';
/** Core extension patient-religion (valueCodeableConcept, v3-ReligiousAffiliation). */
export const PATIENT_RELIGION = 'http://hl7.org/fhir/StructureDefinition/patient-religion';

/**
 * A US Core race or ethnicity extension → one Code per coding (ombCategory first, then detailed, in
 * the order sent); the `text` sub-extension is the first Code's text, or a text-only Code when no
 * coding was sent. Several extensions with the URL (not allowed by US Core, seen in practice) add up.
 */
function omb(exts: readonly Extension[] | undefined, url: string): Code[] {
  const out: Code[] = [];
  for (const ext of (exts ?? []).filter((e) => e.url === url)) {
    const parts = ext.extension ?? [];
    const codes = ['ombCategory', 'detailed'].flatMap((k) =>
      parts.filter((p) => p.url === k).map((p) => code(p.valueCoding)),
    );
    const coded = codes.filter((c): c is Code => c !== null);
    const text = parts.find((p) => p.url === 'text')?.valueString ?? null;
    const [first, ...rest] = coded;
    if (first) out.push({ ...first, text }, ...rest);
    else if (text) out.push(textCode(text));
  }
  return out;
}

function contactOf(c: FhirPatientContact): PatientContact {
  return {
    relationships: concepts(c.relationship),
    name: c.name ? humanName(c.name) : null,
    telecom: telecom(c.telecom),
    address: c.address ? address(c.address) : null,
    organization: c.organization?.display ?? null,
    periodStart: c.period?.start ?? null,
    periodEnd: c.period?.end ?? null,
  };
}

export function demographicsOf(p: Patient, policy: IdentityPolicy): Demographics {
  return {
    identifiers: identifiers(p.identifier, policy),
    names: (p.name ?? []).map(humanName),
    birthDate: p.birthDate ?? null,
    administrativeGender: p.gender ?? null,
    deceased: p.deceasedBoolean ?? (p.deceasedDateTime ? true : null),
    deceasedAt: instant(p.deceasedDateTime),
    addresses: (p.address ?? []).map(address),
    telecom: telecom(p.telecom),
    maritalStatus: concept(p.maritalStatus),
    language: concept(p.communication?.find((c) => c.preferred)?.language ?? p.communication?.[0]?.language),
    // A FHIR create or update (PUT) is the whole resource: an absent element is no value, not
    // "keep the stored one" (FHIR R4 RESTful API, update). So every event is a full snapshot.
    race: omb(p.extension, US_CORE_RACE),
    ethnicity: omb(p.extension, US_CORE_ETHNICITY),
    religion: concept(p.extension?.find((e) => e.url === PATIENT_RELIGION)?.valueCodeableConcept),
    contacts: (p.contact ?? []).map(contactOf),
    primaryCareProvider: practitioner(p.generalPractitioner?.[0], policy),
    notSent: [],
    cleared: [],
  };
}

// Required bindings whose codes reach an event; the validator does not check terminology.
const GENDERS = new Set(['male', 'female', 'other', 'unknown']);
const TELECOM_SYSTEMS = new Set(['phone', 'fax', 'email', 'pager', 'url', 'sms', 'other']);

export function mapPatient(p: Patient, input: MapInput, ctx: MapContext): MapResult {
  if (p.gender !== undefined && !GENDERS.has(p.gender)) {
    return codeNotInBinding('Patient.gender', 'administrative-gender');
  }
  const badTelecom = (p.telecom ?? []).findIndex(
    (t) => t.system !== undefined && !TELECOM_SYSTEMS.has(t.system),
  );
  if (badTelecom >= 0)
    return codeNotInBinding(`Patient.telecom[${badTelecom}].system`, 'contact-point-system');
  const demographics = demographicsOf(p, ctx.policy);
  const key = enterprisePatientId(demographics.identifiers, ctx.policy);
  if (!key) {
    return invalid('unmappable', 422, [
      errorIssue(
        'required',
        'a Patient needs at least one identifier with a value: the hub keys patients by identifier',
        'Patient.identifier',
      ),
    ]);
  }
  const type = input.previous ? 'PatientUpdated' : 'PatientRegistered';
  const occurredAt = instant(p.meta?.lastUpdated) ?? ctx.recordedAt;
  const data = {
    meta: metaFor(type, 0, input, ctx, occurredAt, {
      'meta.occurredAt': p.meta?.lastUpdated,
      'demographics.deceasedAt': p.deceasedDateTime,
    }),
    patientId: key,
    demographics,
  };
  return {
    ok: true,
    events: [{ type, data }],
    state: {
      hubId: key,
      patientKey: key,
      status: p.active === false ? 'inactive' : 'active',
      location: null,
    },
  };
}
