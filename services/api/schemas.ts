/**
 * Response schemas. Fastify serialises responses with these (fast-json-
 * stringify), which writes declared properties only: a column or field added
 * to a read model later cannot reach a client until it is declared here
 * (for FHIR resources: unless it is a FHIR element of a served type).
 */
const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const int = { type: 'integer' } as const;
const strArr = { type: 'array', items: str } as const;

const coding = {
  type: 'object',
  properties: { system: str, code: str, display: str },
} as const;
const codeableConcept = {
  type: 'object',
  properties: { coding: { type: 'array', items: coding }, text: str },
} as const;

/** Any JSON value, written as JSON.stringify writes it (fast-json-stringify's schema without a type). */
const anyJson = {} as const;

/**
 * The elements of the resources the portal serves (FHIR R4 4.0.1: Resource and DomainResource,
 * then Patient, Encounter, Observation, DiagnosticReport, ServiceRequest, AllergyIntolerance,
 * Condition, Coverage, and the Specimen and Practitioner a resource may contain), by name.
 */
const FHIR_ELEMENTS = [
  // Resource, DomainResource
  'meta implicitRules language text contained extension modifierExtension',
  // Patient
  'identifier active name telecom gender birthDate deceasedBoolean deceasedDateTime address',
  'maritalStatus multipleBirthBoolean multipleBirthInteger photo contact communication',
  'generalPractitioner managingOrganization link',
  // Encounter
  'status statusHistory class classHistory type serviceType priority subject episodeOfCare',
  'basedOn participant appointment period length reasonCode reasonReference diagnosis account',
  'hospitalization location serviceProvider partOf',
  // Observation
  'partOf category code focus encounter effectiveDateTime effectivePeriod effectiveTiming',
  'effectiveInstant issued performer valueQuantity valueCodeableConcept valueString valueBoolean',
  'valueInteger valueRange valueRatio valueSampledData valueTime valueDateTime valuePeriod',
  'dataAbsentReason interpretation note bodySite method specimen device referenceRange',
  'hasMember derivedFrom component',
  // DiagnosticReport
  'resultsInterpreter result imagingStudy media conclusion conclusionCode presentedForm',
  // ServiceRequest
  'instantiatesCanonical instantiatesUri replaces requisition intent doNotPerform orderDetail',
  'quantityQuantity quantityRatio quantityRange occurrenceDateTime occurrencePeriod',
  'occurrenceTiming asNeededBoolean asNeededCodeableConcept authoredOn requester performerType',
  'locationCode locationReference insurance supportingInfo patientInstruction relevantHistory',
  // AllergyIntolerance
  'clinicalStatus verificationStatus criticality patient onsetDateTime onsetAge onsetPeriod',
  'onsetRange onsetString recordedDate recorder asserter lastOccurrence reaction',
  // Condition
  'severity abatementDateTime abatementAge abatementPeriod abatementRange abatementString',
  'stage evidence',
  // Coverage
  'policyHolder subscriber subscriberId beneficiary dependent relationship payor order',
  'network costToBeneficiary subrogation contract',
  // Specimen, Practitioner (contained)
  'accessionIdentifier receivedTime parent request collection processing container condition',
  'qualification',
]
  .join(' ')
  .split(' ');

/**
 * Every served resource: its FHIR elements by name (resourceType and id first), each written as
 * the read model stored it. One schema for all types, so Bundles of mixed types serialise
 * without anyOf. A name that is not a FHIR element of these resources (a column or an internal
 * field a read model adds) is not written; the values are FHIR datatypes built by the read
 * model, kept whole so that no sub-element (a coding's version, a contained resource's parts)
 * is silently dropped on the way out.
 */
export const resourceSchema = {
  type: 'object',
  required: ['resourceType', 'id'],
  properties: {
    resourceType: str,
    id: str,
    ...Object.fromEntries(FHIR_ELEMENTS.map((e) => [e, anyJson])),
  },
} as const;

export const operationOutcomeSchema = {
  type: 'object',
  required: ['resourceType', 'issue'],
  properties: {
    resourceType: str,
    issue: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          severity: str,
          code: str,
          diagnostics: str,
          details: { type: 'object', properties: { text: str } },
        },
      },
    },
  },
} as const;

export const bundleSchema = {
  type: 'object',
  required: ['resourceType', 'type'],
  properties: {
    resourceType: str,
    id: str,
    type: str,
    total: int,
    link: { type: 'array', items: { type: 'object', properties: { relation: str, url: str } } },
    entry: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          fullUrl: str,
          resource: resourceSchema,
          search: { type: 'object', properties: { mode: str } },
        },
      },
    },
  },
} as const;

const restResource = {
  type: 'object',
  properties: {
    type: str,
    interaction: { type: 'array', items: { type: 'object', properties: { code: str } } },
    searchParam: {
      type: 'array',
      items: { type: 'object', properties: { name: str, type: str, documentation: str } },
    },
    operation: { type: 'array', items: { type: 'object', properties: { name: str, definition: str } } },
    supportedProfile: strArr,
    // The backport IG's capabilitystatement-subscriptiontopic-canonical (the topics a server offers).
    extension: { type: 'array', items: { type: 'object', properties: { url: str, valueCanonical: str } } },
  },
} as const;

export const capabilitySchema = {
  type: 'object',
  properties: {
    resourceType: str,
    status: str,
    date: str,
    kind: str,
    fhirVersion: str,
    instantiates: strArr,
    format: strArr,
    software: { type: 'object', properties: { name: str, version: str } },
    implementation: { type: 'object', properties: { description: str, url: str } },
    rest: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          mode: str,
          security: {
            type: 'object',
            properties: { cors: bool, service: { type: 'array', items: codeableConcept }, description: str },
          },
          resource: { type: 'array', items: restResource },
        },
      },
    },
  },
} as const;

/** Standard error answers of every protected FHIR route. */
export const fhirErrors = {
  400: operationOutcomeSchema,
  401: operationOutcomeSchema,
  403: operationOutcomeSchema,
  404: operationOutcomeSchema,
  413: operationOutcomeSchema,
  429: operationOutcomeSchema,
  500: operationOutcomeSchema,
  503: operationOutcomeSchema,
} as const;

/** A JSON array of objects with these properties. */
export const arrayOf = (properties: Record<string, object>) =>
  ({ type: 'array', items: { type: 'object', properties } }) as const;

export const problemSchema = {
  type: 'object',
  properties: { code: str, message: str, retriable: bool },
} as const;

export const jsonErrors = {
  400: problemSchema,
  401: problemSchema,
  403: problemSchema,
  404: problemSchema,
  429: problemSchema,
  500: problemSchema,
  503: problemSchema,
} as const;
