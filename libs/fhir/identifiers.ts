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

function allPlain(node: unknown): boolean {
  if (typeof node === 'string') return PLAIN.test(node);
  if (Array.isArray(node)) return node.every(allPlain);
  if (typeof node === 'object' && node !== null) return Object.values(node).every(allPlain);
  return true;
}

export function identifierIssues(resource: unknown): FhirIssue[] {
  // Nearly every resource is plain ASCII: skip the typed walk for those.
  if (allPlain(resource)) return [];
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
