import { randomBytes } from 'node:crypto';
import {
  ALLOWED,
  INTERNALS,
  REFUSED,
  is2xx,
  leaked,
  markerIn,
  type HttpAnswer,
  type HttpProbe,
  type Verdict,
} from './security-runner.js';
import {
  PUBLIC_PATHS,
  apiProbe,
  fillPath,
  pathValue,
  qs,
  requestFor,
  routeKind,
  sampleValue,
  type ApiRoute,
} from './security-routes.js';
import { attackPatient } from './security-tokens.js';
import type { SecurityTarget, TokenRole } from './security-target.js';
import { PAGES } from '../../services/console/layout.js';
import { CONSOLE_POST_ROUTES } from './console-app.js';

/**
 * Unauthenticated probes of every service port, and input hardening (NUL,
 * control characters, invalid UTF-8, oversize, deep and hostile JSON,
 * unicode look-alikes, a forged Host header).
 */
const FORM = 'application/x-www-form-urlencoded';
const FHIR = 'application/fhir+json';

/** Paths that hold PHI on one service port or another, today or in the past. */
function phiPaths(t: SecurityTarget): string[] {
  const { a } = t.patients;
  const enc = encodeURIComponent;
  return [
    `/patients/${enc(a.id)}`,
    `/patients/${enc(a.id)}/record`,
    `/accounts/${enc(a.encounterId ?? a.id)}`,
    `/accounts/${enc(a.encounterId ?? a.id)}/charges`,
    `/Patient/${enc(a.id)}`,
    `/Encounter/${enc(a.encounterId ?? a.id)}`,
    ...t.ingestResources.map((r) => `/${r}`),
    `/fhir/Patient/${enc(a.id)}`,
    `/fhir/Patient/${enc(a.id)}/$everything`,
    `/fhir/Observation?patient=${enc(a.id)}`,
    '/version',
    '/views',
    '/admin/audit/events',
    '/',
  ];
}

/** Operator routes: an operator token may open them (they must still carry no PHI). */
const OPERATOR_PATHS = ['/version', '/views'];

/**
 * Not 2xx and no PHI: refused. Public routes may answer, but never with PHI.
 * PHI the request itself carried (an id in its path, echoed by an error
 * text) is noted, not counted: it discloses nothing the caller did not send.
 */
const doorJudge =
  (t: SecurityTarget, isPublic: boolean, what: string, path = '', note?: (n: string) => void) =>
  (a: HttpAnswer): Verdict => {
    const sent = decodeURIComponent(path);
    const m = markerIn(
      a.body,
      t.phiMarkers.filter((x) => !sent.includes(x)),
    );
    if (m) return leaked(`${what}: ${a.status} holds test PHI "${m}"`);
    if (markerIn(a.body, t.phiMarkers))
      note?.(`an answer echoes the patient id of its request path (${a.status})`);
    if (!is2xx(a)) return REFUSED;
    return isPublic ? ALLOWED : leaked(`${what}: ${a.status}`);
  };

/** Writes with a valid body, so that only authentication can refuse them. */
function writes(): { method: string; path: string; type: string; body: string }[] {
  const id = `sec-unauth-${randomBytes(4).toString('hex')}`;
  const p = attackPatient(id);
  const obs = {
    resourceType: 'Observation',
    id: `${id}-obs`,
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '2345-7', display: 'Glucose' }] },
    subject: { identifier: { system: 'urn:oid:2.16.840.1.113883.3.999', value: `SECPROBE-${id}` } },
    effectiveDateTime: '2026-01-01T10:00:00Z',
    valueQuantity: { value: 42, unit: 'mmol/L' },
  };
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [{ resource: p, request: { method: 'PUT', url: `Patient/${id}` } }],
  };
  return [
    { method: 'PUT', path: `/Patient/${id}`, type: FHIR, body: JSON.stringify(p) },
    { method: 'POST', path: '/Patient', type: FHIR, body: JSON.stringify(p) },
    { method: 'PUT', path: `/Observation/${id}-obs`, type: FHIR, body: JSON.stringify(obs) },
    { method: 'POST', path: '/', type: FHIR, body: JSON.stringify(bundle) },
    { method: 'POST', path: '/$import', type: 'application/fhir+ndjson', body: `${JSON.stringify(p)}\n` },
  ];
}

/**
 * The console's doors: every page (as a page and as an htmx fragment) and
 * every POST, with no cookie, a forged session cookie and the API's operator
 * token (the console takes sessions only); its development sign-in, which a
 * deployment must not offer; and a callback with a state it never issued.
 */
async function consoleDoors(t: SecurityTarget, base: string): Promise<HttpProbe[]> {
  const operator = await t.tokens.role('operator');
  const ways: [string, Record<string, string>][] = [
    ['no session', {}],
    ['forged session cookie', { cookie: `hub_console=${randomBytes(32).toString('base64url')}` }],
    ...(operator
      ? [
          ["the API's operator token", { authorization: `Bearer ${operator}` }] as [
            string,
            Record<string, string>,
          ],
        ]
      : []),
  ];
  const probe = (
    method: string,
    path: string,
    headers: Record<string, string>,
    label: string,
    body?: string,
  ): HttpProbe => ({
    area: 'unauthenticated',
    service: 'console',
    base,
    method,
    path,
    headers,
    ...(body === undefined ? {} : { body }),
    label: `console: ${label}`,
    judge: doorJudge(t, false, `console ${label}`, path),
  });
  const out: HttpProbe[] = [];
  for (const [label, headers] of ways) {
    for (const p of ['/', ...PAGES.map((x) => x.path)]) {
      out.push(probe('GET', p, headers, `${label}, page`));
      out.push(probe('GET', p, { ...headers, 'hx-request': 'true' }, `${label}, htmx fragment`));
    }
    for (const p of CONSOLE_POST_ROUTES)
      out.push(
        probe('POST', p, { ...headers, 'content-type': FORM }, `${label}, write`, '_csrf=guess&reason=probe'),
      );
  }
  out.push(
    probe(
      'POST',
      '/login/dev',
      { 'content-type': FORM },
      'development sign-in',
      'user=attacker&role=operator&role=steward',
    ),
    probe('GET', '/login/callback?code=forged&state=forged', {}, 'callback with a forged state'),
  );
  return out;
}

/** Every service port without a token (and with tokens meant for something else); `notes` gets observations. */
export async function unauthProbes(
  t: SecurityTarget,
  routes: readonly ApiRoute[],
  note: (n: string) => void = () => undefined,
): Promise<HttpProbe[]> {
  const out: HttpProbe[] = [];
  const services: [string, string][] = [['api', t.api], ...Object.entries(t.services)];
  const wrongTokens: [string, string | null][] = [
    ['no token', null],
    ["patient A's API token", await t.tokens.role('patientA')],
    ['staff API token', await t.tokens.role('staff')],
    ['operator token', await t.tokens.role('operator')],
  ];
  for (const [service, base] of services) {
    for (const path of PUBLIC_PATHS) {
      out.push({
        area: 'unauthenticated',
        service,
        base,
        method: 'GET',
        path,
        label: 'public route',
        judge: doorJudge(t, true, 'public route'),
      });
    }
    if (service === 'api') continue;
    for (const [label, token] of wrongTokens) {
      if (label !== 'no token' && !token) continue;
      const headers = token ? { authorization: `Bearer ${token}` } : {};
      for (const path of phiPaths(t)) {
        const open = label === 'operator token' && OPERATOR_PATHS.includes(path);
        const judge = doorJudge(t, open, label, path, (n) => note(`${service}: ${n}`));
        out.push({ area: 'unauthenticated', service, base, method: 'GET', path, headers, label, judge });
      }
      for (const w of writes()) {
        out.push({
          area: 'unauthenticated',
          service,
          base,
          method: w.method,
          path: w.path,
          headers: { ...headers, 'content-type': w.type },
          body: w.body,
          label: `${label}, write`,
          judge: doorJudge(t, false, `write with ${label}`),
        });
      }
    }
  }
  if (t.services['console']) out.push(...(await consoleDoors(t, t.services['console'])));
  for (const r of routes) {
    if (routeKind(r).kind === 'public') continue;
    out.push(
      apiProbe(
        t,
        'unauthenticated',
        r,
        requestFor(r, t.patients.a),
        'no token',
        doorJudge(t, false, 'no token'),
      ),
    );
  }
  return out;
}

/** 5xx, driver or stack text leaks; so does 2xx holding data of a patient other than the one asked for. */
const inputJudge =
  (otherMarkers: readonly string[], what: string) =>
  (a: HttpAnswer): Verdict => {
    if (a.status >= 500) return leaked(`${what}: ${a.status}`);
    const internals = INTERNALS.exec(a.body);
    if (internals) return leaked(`${what}: answer quotes "${internals[0]}"`);
    if (!is2xx(a)) return REFUSED;
    const m = markerIn(a.body, otherMarkers);
    return m ? leaked(`${what}: ${a.status} holds another patient's "${m}"`) : ALLOWED;
  };

/** Encoded hostile values for an id or a parameter, given a valid one. */
export function hostileValues(valid: string): [string, string][] {
  const e = encodeURIComponent(valid);
  return [
    ['NUL after', `${e}%00`],
    ['NUL alone', '%00'],
    ['SOH', `${e}%01`],
    ['LF', `${e}%0A`],
    ['CR LF', `${e}%0D%0Aset-cookie:x=1`],
    ['ESC', `${e}%1B%5B31m`],
    ['DEL', `${e}%7F`],
    ['overlong NUL (C0 80)', `${e}%C0%80`],
    ['invalid UTF-8 (FF)', `${e}%FF`],
    ['lone surrogate (ED A0 80)', `${e}%ED%A0%80`],
    ['2,000 characters', 'x'.repeat(2000)],
    ['SQL quote', `${e}'%20or%20'1'='1`],
    ['path traversal', `..%2F..%2F${e}`],
  ];
}

/** Look-alikes of patient B's id: a server that normalises them must not serve B to A. */
export function lookalikes(id: string): [string, string][] {
  const cyr: Record<string, string> = {
    A: 'А',
    B: 'В',
    C: 'С',
    E: 'Е',
    H: 'Н',
    K: 'К',
    M: 'М',
    O: 'О',
    P: 'Р',
    T: 'Т',
    X: 'Х',
    a: 'а',
    c: 'с',
    e: 'е',
    o: 'о',
    p: 'р',
    x: 'х',
  };
  const i = [...id].findIndex((ch) => cyr[ch] !== undefined);
  const swapped = i < 0 ? id : [...id].map((ch, k) => (k === i ? (cyr[ch] ?? ch) : ch)).join('');
  const fullwidth = [...id]
    .map((ch) => (/[!-~]/.test(ch) ? String.fromCodePoint((ch.codePointAt(0) ?? 0) + 0xfee0) : ch))
    .join('');
  return [
    ['Cyrillic look-alike letter', swapped],
    ['fullwidth', fullwidth],
    ['RTL override', `${id}\u202e`],
    ['RTL override, reversed', `\u202e${[...id].reverse().join('')}`],
    ['zero-width space', `${id.slice(0, 2)}\u200b${id.slice(2)}`],
    ['combining mark', `${id}\u0301`],
    ['lower case', id.toLowerCase()],
    ['upper case', id.toUpperCase()],
    ['trailing space', `${id} `],
  ].map(([k, v]) => [k ?? '', encodeURIComponent(v ?? '')]);
}

/** Hostile values in every path and query parameter of every API route. */
function apiParamProbes(
  t: SecurityTarget,
  routes: readonly ApiRoute[],
  token: string,
  patientToken: string,
): HttpProbe[] {
  const { a, b } = t.patients;
  const out: HttpProbe[] = [];
  const judge = inputJudge(b.markers, 'hostile input');
  const push = (
    r: ApiRoute,
    path: string,
    query: string,
    form: string | undefined,
    label: string,
    tok = token,
  ) =>
    out.push(
      apiProbe(
        t,
        'input',
        r,
        { path, query, form, headers: { authorization: `Bearer ${tok}` } },
        label,
        judge,
      ),
    );
  for (const r of routes) {
    if (routeKind(r).kind === 'public') continue;
    const base = requestFor(r, a);
    for (const p of r.pathParams) {
      for (const [label, v] of hostileValues(pathValue(r, p, a))) {
        push(
          r,
          fillPath(r, (q) => (q.name === p.name ? '\u0000' : pathValue(r, q, a))).replace('%00', v),
          base.query,
          base.form,
          `path ${p.name}: ${label}`,
        );
      }
      for (const [label, v] of lookalikes(pathValue(r, p, b))) {
        push(
          r,
          fillPath(r, (q) => (q.name === p.name ? '\u0000' : pathValue(r, q, a))).replace('%00', v),
          base.query,
          base.form,
          `A asks path ${p.name}: ${label} of B`,
          patientToken,
        );
      }
    }
    const params = r.method === 'GET' ? r.query : r.form;
    for (const p of params) {
      const valid = p.name === 'patient' ? a.id : sampleValue(p);
      const others =
        params.some((q) => q.name === 'patient') && p.name !== 'patient'
          ? `patient=${encodeURIComponent(a.id)}&`
          : '';
      for (const [label, v] of hostileValues(valid).slice(0, 6)) {
        const enc = `${others}${encodeURIComponent(p.name)}=${v}`;
        push(
          r,
          base.path,
          r.method === 'GET' ? enc : '',
          r.method === 'POST' ? enc : undefined,
          `param ${p.name}: ${label}`,
        );
      }
      if (p.name === 'patient') {
        for (const [label, v] of lookalikes(b.id)) {
          const enc = `patient=${v}`;
          push(
            r,
            base.path,
            r.method === 'GET' ? enc : '',
            r.method === 'POST' ? enc : undefined,
            `A asks patient=${label} of B`,
            patientToken,
          );
        }
      }
    }
  }
  return out;
}

/** A JSON document nested `depth` levels (extension in extension ...). */
export function deepJson(depth: number): string {
  return `{"resourceType":"Patient",${'"extension":[{"url":"x",'.repeat(depth)}"valueString":"deep"${'}]'.repeat(depth)}}`;
}

const HOSTILE_JSON: [string, string][] = [
  ['100-deep JSON', deepJson(100)],
  ['10,000-deep JSON', deepJson(10_000)],
  [
    'duplicate keys',
    '{"resourceType":"Patient","id":"sec-dup","resourceType":"Observation","name":[{"family":"Secprobe"}]}',
  ],
  ['__proto__ key', '{"resourceType":"Patient","__proto__":{"isAdmin":true},"name":[{"family":"Secprobe"}]}'],
  ['constructor.prototype key', '{"resourceType":"Patient","constructor":{"prototype":{"isAdmin":true}}}'],
  ['NUL in a string', '{"resourceType":"Patient","name":[{"family":"Sec\\u0000probe"}]}'],
  ['raw control bytes in a string', '{"resourceType":"Patient","name":[{"family":"Sec\u0001\u001bprobe"}]}'],
  ['truncated JSON', '{"resourceType":"Patient","name":[{"fam'],
  ['huge number', `{"resourceType":"Patient","multipleBirthInteger":1${'0'.repeat(400)}}`],
];

/** Hostile bodies and headers on the API's POST routes and the FHIR adapter's writes. */
function bodyProbes(
  t: SecurityTarget,
  routes: readonly ApiRoute[],
  staff: string,
  ingest: string | null,
  maxIngestBytes: number,
): HttpProbe[] {
  const out: HttpProbe[] = [];
  const judge = inputJudge(t.patients.b.markers, 'hostile body');
  const a = t.patients.a;
  const search = routes.find((r) => r.method === 'POST' && r.form.some((p) => p.name === 'patient'));
  const getSearch = routes.find((r) => r.method === 'GET' && r.query.some((p) => p.name === 'patient'));
  const api = (
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    label: string,
    j = judge,
  ): HttpProbe => ({
    area: 'input',
    service: 'api',
    base: t.api,
    method,
    path,
    headers: { authorization: `Bearer ${staff}`, ...headers },
    ...(body !== undefined ? { body } : {}),
    label,
    judge: j,
  });
  if (search) {
    const p = search.template;
    const forms: [string, string][] = [
      ['__proto__ form field', `patient=${a.id}&__proto__=x`],
      ['constructor form field', `patient=${a.id}&constructor=x`],
      ['qs-style prototype path', `patient=${a.id}&constructor[prototype][isAdmin]=1`],
      ['NUL in a field name', `patient=${a.id}&pat%00ient=${a.id}`],
      ['64 KiB form', `patient=${a.id}&code=${'x'.repeat(64 * 1024)}`],
      ['2 MiB form', `patient=${a.id}&code=${'x'.repeat(2 * 1024 * 1024)}`],
    ];
    for (const [label, body] of forms) out.push(api('POST', p, { 'content-type': FORM }, body, label));
    for (const [label, body] of HOSTILE_JSON)
      out.push(api('POST', p, { 'content-type': 'application/json' }, body, `JSON body: ${label}`));
  }
  const url = getSearch
    ? `${getSearch.template}?${qs([['patient', a.id]])}`
    : `/fhir/Patient/${a.id}/$everything`;
  out.push(api('GET', `${url}&${'x'.repeat(100_000)}=1`, {}, undefined, '100 KB URL'));
  const hostJudge = (a2: HttpAnswer): Verdict =>
    a2.body.includes('evil.example') ? leaked('answer builds links from the Host header') : judge(a2);
  out.push(api('GET', url, { host: 'evil.example' }, undefined, 'forged Host header', hostJudge));
  out.push(
    api(
      'GET',
      url,
      { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' },
      undefined,
      'X-Forwarded-Host',
      hostJudge,
    ),
  );
  out.push(
    api('GET', url, { forwarded: 'host=evil.example;proto=https' }, undefined, 'Forwarded header', hostJudge),
  );
  const fhir = t.services['adapter-fhir'];
  if (fhir) out.push(...ingestInputProbes(t, fhir, ingest, maxIngestBytes));
  return out;
}

function ingestInputProbes(
  t: SecurityTarget,
  base: string,
  ingest: string | null,
  maxIngestBytes: number,
): HttpProbe[] {
  const judge = inputJudge([...t.patients.a.markers, ...t.patients.b.markers], 'hostile ingest input');
  const auth: Record<string, string> = ingest ? { authorization: `Bearer ${ingest}` } : {};
  const probe = (
    method: string,
    path: string,
    type: string | null,
    body: string | undefined,
    label: string,
  ): HttpProbe => ({
    area: 'input',
    service: 'adapter-fhir',
    base,
    method,
    path,
    headers: { ...auth, ...(type ? { 'content-type': type } : {}) },
    ...(body !== undefined ? { body } : {}),
    label,
    judge,
  });
  const out: HttpProbe[] = [];
  for (const [label, body] of HOSTILE_JSON) {
    out.push(probe('POST', '/Patient', FHIR, body, label));
    out.push(
      probe(
        'POST',
        '/$import',
        'application/fhir+ndjson',
        `${body.replace(/\n/g, ' ')}\n`,
        `$import line: ${label}`,
      ),
    );
  }
  for (const [label, v] of [...hostileValues('sec-input-1'), ...lookalikes(t.patients.a.id)]) {
    out.push(probe('GET', `/Patient/${v}`, null, undefined, `read id: ${label}`));
    out.push(
      probe('PUT', `/Patient/${v}`, FHIR, JSON.stringify(attackPatient('sec-input-1')), `write id: ${label}`),
    );
  }
  const big = 'x'.repeat(maxIngestBytes + 1024);
  out.push(
    probe(
      'POST',
      '/Patient',
      FHIR,
      `{"resourceType":"Patient","text":{"div":"${big}"}}`,
      'body over the limit',
    ),
  );
  out.push(
    probe(
      'POST',
      '/$import',
      'application/fhir+ndjson',
      `{"resourceType":"Patient","text":{"div":"${big}"}}\n`,
      '$import line over the limit',
    ),
  );
  return out;
}

/** NUL and friends in the ids of the other service ports' routes (no token: a 5xx or SQLSTATE is the leak). */
function servicePortProbes(t: SecurityTarget): HttpProbe[] {
  const judge = inputJudge(t.phiMarkers, 'hostile id on a service port');
  const out: HttpProbe[] = [];
  for (const [service, base] of Object.entries(t.services)) {
    for (const tmpl of ['/patients/{v}', '/patients/{v}/record', '/accounts/{v}', '/Observation/{v}']) {
      for (const [label, v] of hostileValues('sec-x').slice(0, 10)) {
        out.push({ area: 'input', service, base, method: 'GET', path: tmpl.replace('{v}', v), label, judge });
      }
    }
  }
  return out;
}

export async function inputProbes(
  t: SecurityTarget,
  routes: readonly ApiRoute[],
  o: { maxIngestBytes: number },
): Promise<HttpProbe[]> {
  const get = (r: TokenRole) => t.tokens.role(r);
  const [staff, patientA, ingest] = await Promise.all([get('staff'), get('patientA'), get('ingest')]);
  if (!staff || !patientA) return [];
  return [
    ...apiParamProbes(t, routes, staff, patientA),
    ...bodyProbes(t, routes, staff, ingest, o.maxIngestBytes),
    ...servicePortProbes(t),
  ];
}
