import type { ImportItem } from '../stream.js';
import type { MappableResource } from '../mapping.js';
import { errorIssue } from '../outcome.js';
import { parseJsonBody, validateFhirResource, type Invalid } from '../validate.js';
import type { EntryRequest } from './ingest.js';

/**
 * The CPU-heavy, store-independent first stage of an import: strict parse and
 * FHIR validation of one line or entry. Pure, so it can run in a worker.
 */
export interface Prepared {
  item: ImportItem;
  entry?: EntryRequest;
  bad?: Invalid;
}

export function prepare(item: ImportItem, label: string): Prepared[] {
  if (item.invalidUtf8) {
    return [
      {
        item,
        bad: {
          ok: false,
          reason: 'json-invalid-utf8',
          status: 400,
          issues: [errorIssue('structure', 'the line is not valid UTF-8')],
        },
      },
    ];
  }
  if (item.text === '') {
    return [
      {
        item,
        bad: {
          ok: false,
          reason: 'json-too-large',
          status: 400,
          issues: [errorIssue('too-costly', 'line too long')],
        },
      },
    ];
  }
  const parsed = parseJsonBody(item.text);
  if (!parsed.ok) return [{ item, bad: parsed }];
  const toEntry = (value: unknown, fullUrl?: string, request?: unknown): Prepared => {
    const v = validateFhirResource(value);
    if (!v.ok) return { item, bad: v };
    if (v.value.resourceType === 'Bundle') {
      return {
        item,
        bad: {
          ok: false,
          reason: 'unsupported-type',
          status: 422,
          issues: [errorIssue('not-supported', 'nested Bundle')],
        },
      };
    }
    const res = v.value as MappableResource;
    const req = request as { method?: unknown; url?: unknown } | undefined;
    const putUrl = req?.method === 'PUT' && typeof req.url === 'string' ? req.url.split('/')[1] : undefined;
    // $export output keeps its ids, and other lines reference them (subject: Patient/{id}).
    const id = putUrl ?? res.id;
    return {
      item,
      entry: {
        resource: res,
        method: id ? 'PUT' : 'POST',
        id,
        fullUrl,
        requestKey: null,
        messageId: `${label}#${item.line}`,
      },
    };
  };
  const value = parsed.value as {
    resourceType?: unknown;
    entry?: unknown;
    resource?: unknown;
    fullUrl?: unknown;
    request?: unknown;
  };
  if (item.isEntry) {
    return [
      toEntry(value.resource, typeof value.fullUrl === 'string' ? value.fullUrl : undefined, value.request),
    ];
  }
  if (value.resourceType === 'Bundle' && Array.isArray(value.entry)) {
    return (value.entry as { resource?: unknown; fullUrl?: unknown; request?: unknown }[]).map((e) =>
      toEntry(e.resource, typeof e.fullUrl === 'string' ? e.fullUrl : undefined, e.request),
    );
  }
  return [toEntry(value)];
}
