import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { EntryRequest, Planned, PlannedOk } from '../../../libs/fhir/import/ingest.js';
import type { MappableResource } from '../../../libs/fhir/mapping.js';
import { systemAllows } from '../../../libs/auth/system-scopes.js';
import { toHubError } from '../../../libs/errors/index.js';
import { errorIssue, outcome, toOperationOutcome } from '../../../libs/fhir/outcome.js';
import { FHIR_ID, invalid, type Invalid } from '../../../libs/fhir/validate.js';
import { inlineValidator, type ResourceValidator, type Verdict } from '../../../libs/fhir/validate-pool.js';
import { FHIR_JSON } from '../../../libs/http/errors.js';
import type { Writer } from '../writer.js';
import {
  fhirJsonScope,
  isRefused,
  jsonBody,
  permitted,
  refusal,
  requestIdOf,
  sendRefusal,
  type Caller,
  type CallerOf,
  type Links,
  type Refusal,
} from './common.js';

/** POST / with a Bundle of type transaction (all or nothing, one Kafka transaction) or batch (per entry). */
export interface BundleRoutesOptions {
  writer: Writer;
  maxBodyBytes: number;
  baseUrl?: string | undefined;
  /** Who calls (security.ts): what it may write as. */
  callerOf: CallerOf;
  /** Where entries are validated (libs/fhir/validate-pool.ts); in line by default. */
  validator?: ResourceValidator | undefined;
}

/** A failed batch commit, answered on every entry. */
type CommitError = ReturnType<typeof toOperationOutcome>;
type Outcome = { refused: Invalid[] } | { results: (PlannedOk | Invalid)[]; commitError: CommitError | null };

const statusLine = (status: number): string => `${status} ${STATUS_CODES[status]}`;

function bundleOf(body: unknown): { atomic: boolean; entries: BundleEntry[] } | Refusal {
  const b = body as Partial<Bundle>;
  if (b.resourceType !== 'Bundle' || (b.type !== 'batch' && b.type !== 'transaction')) {
    return refusal(400, 'invalid', 'POST / takes a Bundle of type batch or transaction', 'Bundle.type');
  }
  if (b.entry !== undefined && !Array.isArray(b.entry)) {
    return refusal(400, 'structure', 'Bundle.entry must be an array', 'Bundle.entry');
  }
  return { atomic: b.type === 'transaction', entries: b.entry ?? [] };
}

/** Validation issues name the element from the entry (`Bundle.entry[i].resource...`). */
function prefixed(bad: Invalid, type: string, prefix: string): Invalid {
  return {
    ...bad,
    issues: bad.issues.map((i) => ({
      ...i,
      ...(i.expression
        ? { expression: i.expression.map((x) => x.replace(new RegExp(`^(${type}|\\$)`), prefix)) }
        : {}),
    })),
  };
}

function resourceTypeOf(v: unknown): string {
  const t = (v as { resourceType?: unknown } | undefined)?.resourceType;
  return typeof t === 'string' ? t : '$';
}

/** An entry the token may not write at all (a POST needs `c`, a PUT `u` or `c` on its type). */
function outOfScope(caller: Caller, method: 'POST' | 'PUT', type: string, where: string): Invalid | null {
  const ok =
    systemAllows(caller.scopes, { kind: 'create', resourceType: type }) ||
    (method === 'PUT' && systemAllows(caller.scopes, { kind: 'update', resourceType: type }));
  if (ok) return null;
  return invalid('insufficient-scope', 403, [
    errorIssue('forbidden', `the token does not allow writing ${type}`, `${where}.request`),
  ]);
}

/** The type and id an entry's request URL names (`Patient/1`, `/Patient?x=y`). */
function urlParts(e: BundleEntry): [string | undefined, string | undefined] {
  const [urlType, urlId] = (e.request?.url ?? '').replace(/^\//, '').replace(/\?.*/s, '').split('/');
  return [urlType, urlId];
}

/** One entry, validated (`verdict`: validateFhirResource's on its resource): an EntryRequest to plan, or why it is refused. */
function entryRequestOf(
  e: BundleEntry,
  i: number,
  requestId: string | null,
  caller: Caller,
  verdict: Verdict,
): EntryRequest | Invalid {
  const where = `Bundle.entry[${i}]`;
  const method = e.request?.method;
  const [, urlId] = urlParts(e);
  if (method !== 'POST' && method !== 'PUT') {
    return invalid('unmappable', 400, [
      errorIssue('not-supported', 'entry.request.method must be POST or PUT', `${where}.request.method`),
    ]);
  }
  if (!verdict.ok) return prefixed(verdict, resourceTypeOf(e.resource), `${where}.resource`);
  // Validated: a resource of a supported type (or a Bundle, refused next).
  const resource = e.resource as MappableResource | Bundle;
  if (resource.resourceType === 'Bundle') {
    return invalid('unsupported-type', 422, [
      errorIssue('not-supported', 'nested Bundle', `${where}.resource`),
    ]);
  }
  const denied = outOfScope(caller, method, resource.resourceType, where);
  if (denied) return denied;
  // The URL's id becomes the stored id (and a store key): the same rule as a resource's own id.
  if (
    method === 'PUT' &&
    (!urlId || !FHIR_ID.test(urlId) || (resource.id !== undefined && resource.id !== urlId))
  ) {
    return invalid('unmappable', 400, [
      errorIssue('invalid', 'PUT needs {type}/{id} matching the resource id', `${where}.request.url`),
    ]);
  }
  return {
    resource,
    method,
    id: method === 'PUT' ? urlId : undefined,
    ifNoneExist: method === 'POST' ? e.request?.ifNoneExist : undefined,
    fullUrl: e.fullUrl,
    requestKey: requestId ? `${requestId}#${i}` : null,
    messageId: requestId,
  };
}

/**
 * The order entries are planned in: what others reference first (a reference into the bundle
 * resolves only to an entry planned before it), whatever order the client listed them in. A
 * Condition goes before the Encounter whose diagnosis names it, so the Encounter's restatement
 * (with use and rank) is the last word; Observations before the report that lists them.
 * Answers keep the client's order.
 */
const PLAN_RANK: Readonly<Record<string, number>> = {
  Patient: 0,
  Specimen: 1,
  Condition: 2,
  Encounter: 3,
  ServiceRequest: 4,
  Observation: 5,
  DiagnosticReport: 6,
};

function planningOrder(prepared: readonly (EntryRequest | Invalid)[]): [number, EntryRequest | Invalid][] {
  const rank = (p: EntryRequest | Invalid): number =>
    isRefused(p) ? 99 : (PLAN_RANK[p.resource.resourceType] ?? 7);
  return [...prepared.entries()].sort(([a, pa], [b, pb]) => rank(pa) - rank(pb) || a - b);
}

/**
 * An Observation that a DiagnosticReport of the same bundle lists in result[] (by fullUrl, or by
 * `Observation/{id}`) is carried by that report's event and makes no result of its own: one
 * report with n values reads back as one report, not 1 + n results.
 */
function markReportMembers(prepared: readonly (EntryRequest | Invalid)[]): void {
  const listed = new Set<string>();
  for (const p of prepared) {
    if (isRefused(p) || p.resource.resourceType !== 'DiagnosticReport') continue;
    for (const r of p.resource.result ?? []) if (r.reference) listed.add(r.reference);
  }
  if (listed.size === 0) return;
  for (const p of prepared) {
    if (isRefused(p) || p.resource.resourceType !== 'Observation') continue;
    const names = [
      p.fullUrl,
      p.id ? `Observation/${p.id}` : undefined,
      p.resource.id ? `Observation/${p.resource.id}` : undefined,
    ];
    if (names.some((n) => n !== undefined && listed.has(n))) p.partOfReport = true;
  }
}

/**
 * Plans every entry under the lock of all their targets, then commits: a transaction
 * with any refused entry writes nothing; a batch commits what is valid, and a failed
 * batch commit is reported on every entry rather than failing the request.
 */
async function planAndCommit(
  writer: Writer,
  prepared: readonly (EntryRequest | Invalid)[],
  atomic: boolean,
  requestId: string | null,
  req: FastifyRequest,
  caller: Caller,
): Promise<Outcome> {
  const pl = writer.planner(requestId, caller.sourceSystem);
  const valid = prepared.filter((p): p is EntryRequest => !isRefused(p));
  return writer.lock.run(
    valid.map((e) => pl.targetKey(e)),
    async (): Promise<Outcome> => {
      await pl.prefetch(valid);
      const results: Planned[] = new Array<Planned>(prepared.length);
      for (const [i, p] of planningOrder(prepared)) {
        results[i] = isRefused(p) ? p : permitted(caller, await pl.plan(p, `Bundle.entry[${i}].resource`));
      }
      const failed = results.filter((r): r is Invalid => isRefused(r));
      if (atomic && failed.length > 0) return { refused: failed };
      try {
        await writer.commit(
          results.filter((r): r is PlannedOk => !isRefused(r)),
          atomic,
        );
        return { results, commitError: null };
      } catch (err) {
        if (atomic) throw err;
        req.log.error({ code: toHubError(err).code }, 'batch commit failed');
        return { results, commitError: toOperationOutcome(err) };
      }
    },
  );
}

function responseBundle(
  results: readonly (PlannedOk | Invalid)[],
  commitError: CommitError | null,
  atomic: boolean,
  link: Links,
): Bundle {
  return {
    resourceType: 'Bundle',
    type: atomic ? 'transaction-response' : 'batch-response',
    entry: results.map((r): BundleEntry => {
      if (isRefused(r)) return { response: { status: statusLine(r.status), outcome: outcome(r.issues) } };
      if (commitError)
        return { response: { status: statusLine(commitError.status), outcome: commitError.outcome } };
      return {
        fullUrl: link.resource(r),
        resource: r.kind === 'write' ? r.row.resource : r.resource,
        response: {
          status: statusLine(r.kind === 'write' && r.created ? 201 : 200),
          location: link.location(r),
          etag: `W/"${r.version}"`,
        },
      };
    }),
  };
}

export const bundleRoutes: FastifyPluginAsync<BundleRoutesOptions> = (scope, o) => {
  const link = fhirJsonScope(scope, o);
  const validator = o.validator ?? inlineValidator();

  scope.post('/', async (req, reply) => {
    const requestId = requestIdOf(req);
    if (isRefused(requestId)) return sendRefusal(reply, requestId);
    const parsed = jsonBody(req);
    if (!parsed.ok) return sendRefusal(reply, parsed);
    const bundle = bundleOf(parsed.value);
    if (isRefused(bundle)) return sendRefusal(reply, bundle);
    const caller = o.callerOf(req);
    const verdicts = await validator.validate(
      bundle.entries.map((e) => ({ value: e.resource, expectedType: urlParts(e)[0] })),
    );
    const prepared = bundle.entries.map((e, i) =>
      entryRequestOf(e, i, requestId, caller, verdicts[i] as Verdict),
    );
    markReportMembers(prepared);
    const done = await planAndCommit(o.writer, prepared, bundle.atomic, requestId, req, caller);
    if ('refused' in done) {
      // Malformed input first, then what the client may not do, then invalid content.
      const status = ([400, 403] as const).find((s) => done.refused.some((f) => f.status === s)) ?? 422;
      return sendRefusal(reply, { ok: false, status, issues: done.refused.flatMap((f) => f.issues) });
    }
    const response = responseBundle(done.results, done.commitError, bundle.atomic, link);
    return reply.status(200).type(FHIR_JSON).send(response);
  });
  return Promise.resolve();
};
