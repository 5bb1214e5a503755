/**
 * Response schemas. Fastify serialises responses with these (fast-json-
 * stringify), which writes declared properties only: a column or field added
 * to a read model later cannot reach a client until it is declared here.
 */
const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;
const num = { type: 'number' } as const;
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
const reference = { type: 'object', properties: { reference: str, display: str } } as const;
const period = { type: 'object', properties: { start: str, end: str } } as const;
const identifier = {
  type: 'object',
  properties: { system: str, value: str, type: codeableConcept },
} as const;

/**
 * The union of the fields the portal read model writes into Patient,
 * Encounter, ServiceRequest, DiagnosticReport and Observation resources
 * (libs/read-models/portal/resources.ts). One schema for all, so Bundles of
 * mixed types serialise without anyOf; each resource only has its own fields.
 */
export const resourceSchema = {
  type: 'object',
  required: ['resourceType', 'id'],
  properties: {
    resourceType: str,
    id: str,
    active: bool,
    identifier: { type: 'array', items: identifier },
    name: {
      type: 'array',
      items: {
        type: 'object',
        properties: { use: str, family: str, given: strArr, prefix: strArr, suffix: strArr },
      },
    },
    telecom: { type: 'array', items: { type: 'object', properties: { system: str, value: str, use: str } } },
    gender: str,
    birthDate: str,
    deceasedBoolean: bool,
    deceasedDateTime: str,
    address: {
      type: 'array',
      items: {
        type: 'object',
        properties: { use: str, line: strArr, city: str, state: str, postalCode: str, country: str },
      },
    },
    maritalStatus: codeableConcept,
    communication: { type: 'array', items: { type: 'object', properties: { language: codeableConcept } } },
    link: {
      type: 'array',
      items: { type: 'object', properties: { other: reference, type: str } },
    },
    status: str,
    intent: str,
    priority: str,
    class: coding,
    category: { type: 'array', items: codeableConcept },
    code: codeableConcept,
    subject: reference,
    encounter: reference,
    basedOn: { type: 'array', items: reference },
    period,
    serviceType: codeableConcept,
    location: {
      type: 'array',
      items: { type: 'object', properties: { location: reference, status: str, period } },
    },
    authoredOn: str,
    effectiveDateTime: str,
    issued: str,
    result: { type: 'array', items: reference },
    conclusion: str,
    valueQuantity: {
      type: 'object',
      properties: { value: num, comparator: str, unit: str, system: str, code: str },
    },
    valueCodeableConcept: codeableConcept,
    valueString: str,
    interpretation: { type: 'array', items: codeableConcept },
    referenceRange: { type: 'array', items: { type: 'object', properties: { text: str } } },
    presentedForm: {
      type: 'array',
      items: {
        type: 'object',
        properties: { contentType: str, url: str, size: int, hash: str, title: str },
      },
    },
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
