import { crawlTypedValue, toTypedValue } from '@medplum/core';
import { checkIdentifier } from '../identity/hygiene.js';
import { errorIssue, type FhirIssue } from './outcome.js';

/**
 * Identifier hygiene for FHIR input (libs/identity/hygiene.ts): every
 * element of type Identifier, wherever it is (Resource.identifier,
 * Reference.identifier, ServiceRequest.requisition, contained resources...),
 * must have a `value` and `system` that look like what they are. Problems
 * come back as issues naming the element (`Patient.identifier[0].value`),
 * never the value. The mapping (toHubIdentifier) then uses the canonical
 * form (NFC, trimmed), so " MRN1" and "MRN1" are one patient.
 *
 * Typed by the StructureDefinitions, so the caller must have loaded them
 * (validate.ts loadFhirDefinitions).
 */

// A string of printable ASCII without surrounding blanks cannot fail any check.
const PLAIN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * Whether every string under a `system` or `value` key, at any depth, is plain. Every string the
 * typed walk checks is an Identifier's `system` or `value`, so when this holds it cannot find
 * anything: names, addresses and notes with accents or other scripts (common in real data) no
 * longer cost a second walk of the whole resource by type.
 */
export function identifierTextPlain(node: unknown): boolean {
  if (Array.isArray(node)) return node.every(identifierTextPlain);
  if (typeof node !== 'object' || node === null) return true;
  const o = node as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (typeof v === 'string') {
      if ((k === 'system' || k === 'value') && !PLAIN.test(v)) return false;
    } else if (!identifierTextPlain(v)) return false;
  }
  return true;
}

export function identifierIssues(resource: unknown): FhirIssue[] {
  // Nearly every resource's identifiers are plain ASCII: skip the typed walk for those.
  if (identifierTextPlain(resource)) return [];
  const issues: FhirIssue[] = [];
  try {
    crawlTypedValue(
      toTypedValue(resource),
      {
        visitProperty(_parent, _key, _path, values) {
          for (const v of values.flat()) {
            if (v.type !== 'Identifier' || typeof v.value !== 'object' || v.value === null) continue;
            const id = v.value as { system?: unknown; value?: unknown };
            for (const part of ['system', 'value'] as const) {
              const s = id[part];
              if (typeof s !== 'string') continue;
              const r = checkIdentifier(s);
              if (!r.ok) {
                issues.push(errorIssue('value', `Identifier.${part} ${r.message}`, `${v.path}.${part}`));
              }
            }
          }
        },
      },
      { skipMissingProperties: true },
    );
  } catch {
    // A structure the crawler cannot type is refused by validateResource with its own issues.
  }
  return issues;
}
