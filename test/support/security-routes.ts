import type { HttpProbe } from './security-runner.js';
import type { SecurityTarget, TestPatient } from './security-target.js';

/**
 * The query API's routes as its own OpenAPI document lists them (GET
 * /docs/json, @fastify/swagger): a route added to the API is probed by the
 * security suite without anyone editing the suite. Pure, apart from `fetchRoutes`.
 */
export interface ParamSpec {
  name: string;
  enumValues: string[];
}

export interface ApiRoute {
  method: 'GET' | 'POST';
  /** OpenAPI template, e.g. /fhir/Patient/{id}. */
  template: string;
  pathParams: ParamSpec[];
  query: ParamSpec[];
  /** Form-encoded body fields (POST _search). */
  form: ParamSpec[];
}

/** What a route gives access to, for the scope oracle. */
export type RouteKind =
  | { kind: 'public' }
  | { kind: 'read'; type: string }
  | { kind: 'search'; type: string }
  | { kind: 'everything' }
  | { kind: 'binary' }
  | { kind: 'billing' }
  | { kind: 'analytics' }
  | { kind: 'admin' }
  | { kind: 'unknown' };

/** Routes every service port may answer without a token (their bodies are still checked for PHI). */
export const PUBLIC_PATHS = ['/health', '/ready', '/metrics', '/docs', '/docs/json', '/fhir/metadata'];

interface OpenApiParam {
  in?: string;
  name?: string;
  schema?: { enum?: unknown[] };
}
interface OpenApiOperation {
  parameters?: OpenApiParam[];
  requestBody?: {
    content?: Record<string, { schema?: { properties?: Record<string, { enum?: unknown[] }> } }>;
  };
}

const enumOf = (s: { enum?: unknown[] } | undefined) => (s?.enum ?? []).map(String);

/** The routes of an OpenAPI 3 document (GET and POST only: the API has no others). */
export function routesOf(doc: unknown): ApiRoute[] {
  const paths = (doc as { paths?: Record<string, Record<string, OpenApiOperation>> }).paths ?? {};
  const out: ApiRoute[] = [];
  for (const [template, ops] of Object.entries(paths)) {
    for (const [m, op] of Object.entries(ops)) {
      const method = m.toUpperCase();
      if (method !== 'GET' && method !== 'POST') continue;
      const params = op.parameters ?? [];
      const pick = (where: string) =>
        params
          .filter((p) => p.in === where && p.name)
          .map((p) => ({ name: p.name ?? '', enumValues: enumOf(p.schema) }));
      const formSchema = op.requestBody?.content?.['application/x-www-form-urlencoded']?.schema;
      out.push({
        method,
        template,
        pathParams: pick('path'),
        query: pick('query'),
        form: Object.entries(formSchema?.properties ?? {}).map(([name, s]) => ({
          name,
          enumValues: enumOf(s),
        })),
      });
    }
  }
  return out;
}

/** The API's route table from its OpenAPI document. */
export async function fetchRoutes(api: string): Promise<ApiRoute[]> {
  const res = await fetch(`${api}/docs/json`);
  if (!res.ok)
    throw new Error(`GET ${api}/docs/json answered ${res.status}: the suite enumerates routes from it`);
  const routes = routesOf(await res.json());
  if (routes.length === 0) throw new Error('the OpenAPI document lists no routes');
  return routes;
}

export function routeKind(r: ApiRoute): RouteKind {
  const t = r.template;
  if (PUBLIC_PATHS.includes(t) || t.startsWith('/docs')) return { kind: 'public' };
  if (t.startsWith('/billing/')) return { kind: 'billing' };
  if (t.startsWith('/analytics/')) return { kind: 'analytics' };
  if (t.startsWith('/admin/')) return { kind: 'admin' };
  if (t === '/fhir/Patient/{id}/$everything') return { kind: 'everything' };
  if (t === '/fhir/Binary/{id}') return { kind: 'binary' };
  const read = /^\/fhir\/([A-Za-z]+)\/\{id\}$/.exec(t);
  if (read?.[1]) return { kind: 'read', type: read[1] };
  const search = /^\/fhir\/([A-Za-z]+)(?:\/_search)?$/.exec(t);
  if (search?.[1]) return { kind: 'search', type: search[1] };
  return { kind: 'unknown' };
}

/** A path parameter's value for a patient's data. */
export function pathValue(r: ApiRoute, p: ParamSpec, patient: TestPatient): string {
  if (p.enumValues.length > 0) return p.enumValues[0] ?? '';
  if (r.template.startsWith('/fhir/Binary/')) return patient.binaryId ?? '0'.repeat(64);
  if (/encounter/i.test(p.name)) return patient.encounterId ?? patient.id;
  return patient.id;
}

/** The route's path with its parameters filled (URL-encoded) from `values`. */
export function fillPath(r: ApiRoute, values: (p: ParamSpec) => string): string {
  let path = r.template;
  for (const p of r.pathParams) path = path.replace(`{${p.name}}`, encodeURIComponent(values(p)));
  return path;
}

/** A plausible value of a query parameter (not the patient), so that the request is otherwise valid. */
export function sampleValue(p: ParamSpec): string {
  if (p.enumValues.length > 0) return p.enumValues[0] ?? '';
  switch (p.name) {
    case 'code':
      return 'http://loinc.org|718-7';
    case 'date':
      return 'ge2000-01-01';
    case 'status':
      return 'final';
    case '_count':
      return '50';
    case '_offset':
      return '0';
    case '_type':
      return 'Patient,Observation,DiagnosticReport,Encounter,ServiceRequest';
    case 'from':
      return '2000-01-01';
    case 'to':
      return '2100-01-01';
    case 'before':
      return '999999999';
    default:
      return 'x';
  }
}

export const qs = (pairs: readonly (readonly [string, string])[]) =>
  pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

/** A route as its own request for a patient: path filled, `patient` set where the route takes one. */
export function requestFor(
  r: ApiRoute,
  patient: TestPatient,
): { path: string; query: string; form: string | undefined } {
  const path = fillPath(r, (p) => pathValue(r, p, patient));
  const withPatient = (ps: ParamSpec[]) =>
    ps.some((p) => p.name === 'patient') ? qs([['patient', patient.id]]) : '';
  return {
    path,
    query: r.method === 'GET' ? withPatient(r.query) : '',
    form: r.method === 'POST' ? withPatient(r.form) : undefined,
  };
}

/** A request to the API for a route: `query` in the URL, `form` as the body of a POST. */
export function apiProbe(
  t: Pick<SecurityTarget, 'api'>,
  area: HttpProbe['area'],
  r: ApiRoute,
  req: { path: string; query?: string; form?: string | undefined; headers?: Record<string, string> },
  label: string,
  judge: HttpProbe['judge'],
): HttpProbe {
  const body = r.method === 'POST' ? (req.form ?? '') : undefined;
  return {
    area,
    service: 'api',
    base: t.api,
    method: r.method,
    path: req.query ? `${req.path}?${req.query}` : req.path,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      ...(req.headers ?? {}),
    },
    ...(body !== undefined ? { body } : {}),
    label,
    judge,
  };
}
