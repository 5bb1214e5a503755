import {
  ALLOWED,
  REFUSED,
  is2xx,
  leaked,
  markerIn,
  type HttpAnswer,
  type HttpProbe,
  type Verdict,
} from './security-runner.js';
import {
  apiProbe,
  fillPath,
  pathValue,
  qs,
  requestFor,
  routeKind,
  sampleValue,
  type ApiRoute,
  type RouteKind,
} from './security-routes.js';
import { SCOPE_MATRIX, scopeRole, type SecurityTarget, type TokenSpec } from './security-target.js';

/**
 * The HTTP probes of the security suite, per area, as plain data: a request
 * and a judge of its answer. Which answers are leaks:
 *
 *   bola             2xx holding patient B's data, asked for with patient A's token
 *   scopes           2xx outside the token's scopes (or resource types beyond them)
 *   tokens           any 2xx with a forged, expired, misaddressed or unknown-patient token
 *   unauthenticated  2xx without a token (outside /health, /ready, /metrics, docs),
 *                    or any answer holding test PHI
 *   input            5xx, database/stack text, or 2xx holding another patient's data
 */
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

/** 2xx with B's data leaks; other 2xx is allowed; the rest refused. */
const judgeFor =
  (markers: readonly string[], what: string) =>
  (a: HttpAnswer): Verdict => {
    if (!is2xx(a)) return REFUSED;
    const m = markerIn(a.body, markers);
    return m ? leaked(`${what} (${a.status} holds "${m}")`) : ALLOWED;
  };

/** Query/form parameter sets naming patient B, and parameters a server might honour without declaring. */
function bolaParamSets(r: ApiRoute, a: string, b: string): [string, string][][] {
  const params = r.method === 'GET' ? r.query : r.form;
  const sets: [string, string][][] = [];
  const hasPatient = params.some((p) => p.name === 'patient');
  const withB: [string, string][] = hasPatient ? [['patient', b]] : [];
  if (hasPatient) {
    sets.push(
      [['patient', b]],
      [['patient', `Patient/${b}`]],
      [['patient', `https://hub.example/fhir/Patient/${b}`]],
    );
    sets.push(
      [
        ['patient', a],
        ['patient', b],
      ],
      [
        ['patient', b],
        ['patient', a],
      ],
      [['patient', `${a},${b}`]],
    );
  }
  for (const p of params) {
    if (p.name === 'patient') continue;
    const values = p.enumValues.length > 0 ? p.enumValues.slice(0, 3) : [sampleValue(p)];
    for (const v of values) sets.push([...withB, [p.name, v]]);
    if (p.name === 'agent') sets.push([[p.name, b]]);
  }
  // Not declared by the API: each must be refused, never honoured.
  for (const extra of [
    ['subject', b],
    ['subject', `Patient/${b}`],
    ['patient:Patient', b],
    ['_id', b],
    ['_include', '*'],
    ['_include', 'Observation:patient'],
    ['_revinclude', '*'],
    ['_has:Observation:patient:_id', b],
    ['patient.identifier', `MRN-${b}`],
    ['patient[]', b],
  ] as [string, string][]) {
    sets.push([extra]);
    if (hasPatient) sets.push([['patient', a], extra]);
  }
  if (sets.length === 0) sets.push([]);
  return sets;
}

/** Patient A's token asking for patient B through every route and every search parameter. */
export async function bolaProbes(t: SecurityTarget, routes: readonly ApiRoute[]): Promise<HttpProbe[]> {
  const token = await t.tokens.role('patientA');
  if (!token) return [];
  const { a, b } = t.patients;
  const judge = judgeFor(b.markers, "patient B's data on patient A's token");
  const out: HttpProbe[] = [];
  for (const r of routes) {
    if (routeKind(r).kind === 'public') continue;
    // The path names B where it names anything; also A's own path with B in the parameters.
    const pathB = fillPath(r, (p) => pathValue(r, p, b));
    const pathA = fillPath(r, (p) => pathValue(r, p, a));
    const paths = pathA === pathB ? [pathB] : [pathB, pathA];
    for (const path of paths) {
      for (const set of bolaParamSets(r, a.id, b.id)) {
        const enc = qs(set);
        const req = r.method === 'GET' ? { path, query: enc } : { path, form: enc };
        out.push(
          apiProbe(t, 'bola', r, { ...req, headers: bearer(token) }, `A asks ${enc || 'path'}`, judge),
        );
      }
      if (r.method === 'POST' && r.form.some((p) => p.name === 'patient')) {
        // FHIR allows parameters in both the URL and the body of _search.
        const req = { path, query: qs([['patient', a.id]]), form: qs([['patient', b.id]]) };
        out.push(
          apiProbe(t, 'bola', r, { ...req, headers: bearer(token) }, 'URL patient=A, body patient=B', judge),
        );
      }
    }
  }
  return out;
}

const SCOPE_RE = /^(patient|user|system)\/([A-Za-z*$]+)\.([a-z*]+)$/;

/** Whether `scopes` grant `perm` ('r' read, 's' search) on a FHIR type, in any context. */
function grants(scopes: readonly string[], type: string, perm: 'r' | 's'): boolean {
  return scopes.some((s) => {
    const m = SCOPE_RE.exec(s);
    if (!m) return false;
    const [, , res, p = ''] = m;
    const perms = p === 'read' ? 'rs' : p === '*' ? 'cruds' : p;
    return (res === type || res === '*') && perms.includes(perm);
  });
}

const FHIR_TYPES = [
  'Patient',
  'Encounter',
  'Observation',
  'DiagnosticReport',
  'ServiceRequest',
  'AllergyIntolerance',
  'Condition',
  'Coverage',
];

/** The oracle of the scope matrix, written from the rules, not from the API's code. */
export function inScope(spec: TokenSpec, kind: RouteKind): boolean {
  const s = spec.scope;
  switch (kind.kind) {
    case 'public':
      return true;
    case 'read':
      return grants(s, kind.type, 'r');
    case 'search':
      return grants(s, kind.type, 's');
    case 'everything':
      return grants(s, 'Patient', 'r');
    case 'binary':
      return grants(s, 'DiagnosticReport', 'r');
    case 'billing':
      return s.includes('system/billing.read');
    case 'analytics':
      return s.includes('system/analytics.read');
    case 'admin':
      return s.includes('system/hub.admin');
    case 'unknown':
      return s.some((x) => SCOPE_RE.test(x));
  }
}

/** Resource types in a FHIR answer that the token's scopes do not grant. */
function typesBeyond(spec: TokenSpec, body: string): string[] {
  const found = new Set([...body.matchAll(/"resourceType":"([A-Za-z]+)"/g)].map((m) => m[1] ?? ''));
  return [...found].filter(
    (ty) => FHIR_TYPES.includes(ty) && !grants(spec.scope, ty, 'r') && !grants(spec.scope, ty, 's'),
  );
}

/** Each scope-matrix token on each route, for patient A's data. */
export async function scopeProbes(t: SecurityTarget, routes: readonly ApiRoute[]): Promise<HttpProbe[]> {
  const out: HttpProbe[] = [];
  for (const spec of SCOPE_MATRIX) {
    const token = await t.tokens.role(scopeRole(spec));
    if (!token) continue;
    for (const r of routes) {
      const kind = routeKind(r);
      if (kind.kind === 'public') continue;
      const expected = inScope(spec, kind);
      const judge = (a: HttpAnswer): Verdict => {
        if (!is2xx(a)) return REFUSED;
        if (!expected) return leaked(`${a.status} outside scope ${spec.scope.join(' ')}`);
        const extra = typesBeyond(spec, a.body);
        if (extra.length > 0)
          return leaked(`${extra.join(',')} returned beyond scope ${spec.scope.join(' ')}`);
        // Only a patient-context token is bound to A; staff and system scopes may see any patient.
        if (!spec.scope.some((x) => x.startsWith('patient/'))) return ALLOWED;
        const m = markerIn(a.body, t.patients.b.markers);
        return m ? leaked(`patient B's "${m}" on a token bound to A`) : ALLOWED;
      };
      const req = requestFor(r, t.patients.a);
      out.push(
        apiProbe(t, 'scopes', r, { ...req, headers: bearer(token) }, `scope ${spec.scope.join(' ')}`, judge),
      );
    }
  }
  return out;
}
