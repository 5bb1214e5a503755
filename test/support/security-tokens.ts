import { randomBytes } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { REFUSED, is2xx, leaked, type HttpAnswer, type HttpProbe, type Verdict } from './security-runner.js';
import { apiProbe, requestFor, routeKind, type ApiRoute } from './security-routes.js';
import { publicPem, strangerKey, type SecurityTarget } from './security-target.js';

/**
 * Token attacks: every token here must be refused on every protected route
 * of the API and on the FHIR adapter (leaked = any 2xx). Those that need the
 * deployment's signing key (expired, wrong audience or issuer, no subject,
 * unknown patient) are made only when the suite holds it.
 */
const b64 = (o: object | string) =>
  Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

/** Every scope the hub knows, so that an accepted forgery would reach every route. */
const ALL_SCOPES = [
  'user/*.rs',
  'system/*.rs',
  'system/*.cud',
  'system/$import',
  'system/billing.read',
  'system/analytics.read',
  'system/hub.admin',
  'system/hub.operator',
].join(' ');

interface Attack {
  name: string;
  token: string;
  /** Which service's audience it pretends to be for. */
  for: 'api' | 'ingest';
  /** The patient its claims name, when not patient A: the requests name that one. */
  patient?: string;
}

function claims(t: SecurityTarget, audience: string, extra: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    sub: 'attacker',
    client_id: 'attacker',
    scope: ALL_SCOPES,
    iss: t.tokens.issuer,
    aud: audience,
    iat: now,
    exp: now + 600,
    ...extra,
  };
}

/** Forgeries that need no key of the deployment. */
async function forgeries(t: SecurityTarget, aud: string, kind: Attack['for']): Promise<Attack[]> {
  const c = claims(t, aud);
  const jwk = t.tokens.publicJwk();
  const kid = typeof jwk?.kid === 'string' ? jwk.kid : 'dev';
  const out: Attack[] = [];
  for (const alg of ['none', 'None', 'NONE']) {
    out.push({ name: `alg ${alg}`, token: `${b64({ alg, typ: 'JWT' })}.${b64(c)}.`, for: kind });
  }
  out.push({ name: 'alg none with kid', token: `${b64({ alg: 'none', kid })}.${b64(c)}.`, for: kind });
  if (jwk) {
    const secrets = [JSON.stringify(jwk), await publicPem(jwk)].filter(Boolean);
    for (const [i, s] of secrets.entries()) {
      const token = await new SignJWT(c)
        .setProtectedHeader({ alg: 'HS256', kid, typ: 'JWT' })
        .sign(new TextEncoder().encode(s));
      out.push({ name: `HS256 keyed with the public key (${i === 0 ? 'JWK' : 'PEM'})`, token, for: kind });
    }
  }
  const stranger = await strangerKey();
  out.push({ name: 'stranger key, real kid', token: await stranger.sign(c, { kid }), for: kind });
  out.push({
    name: 'stranger key, unknown kid',
    token: await stranger.sign(c, { kid: 'attacker-kid' }),
    for: kind,
  });
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const embedded = await new SignJWT(c)
    .setProtectedHeader({ alg: 'ES256', jwk: await exportJWK(publicKey) })
    .sign(privateKey);
  out.push({ name: 'embedded jwk header', token: embedded, for: kind });
  out.push({
    name: 'jku header to an attacker URL',
    token: await stranger.sign(c, { kid: 'attacker-kid', jku: 'http://127.0.0.1:9/jwks.json' }),
    for: kind,
  });
  out.push({ name: 'random bytes', token: randomBytes(48).toString('base64url'), for: kind });
  return out;
}

/** Tokens signed with the deployment's own key, each wrong in one way. */
async function misissued(
  t: SecurityTarget,
  aud: string,
  kind: Attack['for'],
  patientA: string,
): Promise<Attack[]> {
  const now = Math.floor(Date.now() / 1000);
  const c = claims(t, aud);
  const variants: [string, Record<string, unknown>][] = [
    ['expired an hour ago', { ...c, iat: now - 7200, exp: now - 3600 }],
    ['wrong audience', { ...c, aud: 'some-other-api' }],
    ['audience list without ours', { ...c, aud: ['some-other-api', `${aud}-x`] }],
    ['wrong issuer', { ...c, iss: 'https://evil.example/issuer' }],
    ['issuer with a trailing slash', { ...c, iss: `${t.tokens.issuer}/` }],
    ['no subject', { ...c, sub: undefined }],
    ['empty subject', { ...c, sub: '' }],
    ['no expiry', { ...c, exp: undefined }],
    ['not valid for an hour (nbf)', { ...c, nbf: now + 3600 }],
    [
      'unknown patient',
      { ...c, scope: 'patient/*.rs', patient: `SEC-UNKNOWN-${randomBytes(3).toString('hex')}` },
    ],
    ['patient scope without patient claim', { ...c, scope: 'patient/*.rs' }],
    ['patient claim of A with no scope at all', { ...c, scope: '', patient: patientA }],
  ];
  if (kind === 'api') variants.push(['ingest audience on the API', { ...c, aud: t.tokens.ingestAudience }]);
  else variants.push(['API audience on the ingest adapter', { ...c, aud: t.tokens.apiAudience }]);
  const out: Attack[] = [];
  for (const [name, cl] of variants) {
    const clean = Object.fromEntries(Object.entries(cl).filter(([, v]) => v !== undefined));
    const token = await t.tokens.signed(clean);
    const patient =
      typeof cl['patient'] === 'string' && cl['patient'] !== patientA ? cl['patient'] : undefined;
    if (token) out.push({ name, token, for: kind, ...(patient ? { patient } : {}) });
  }
  // A real token with its payload swapped for more power: the signature no longer matches.
  const real = await t.tokens.role(kind === 'api' ? 'patientA' : 'ingestRead');
  if (real) {
    const [h, , s] = real.split('.');
    out.push({ name: 'payload swapped under a real signature', token: `${h}.${b64(c)}.${s}`, for: kind });
    out.push({ name: 'real token with its signature stripped', token: `${h}.${b64(c)}.`, for: kind });
  }
  return out;
}

const anyOk =
  (what: string) =>
  (a: HttpAnswer): Verdict =>
    is2xx(a) ? leaked(`${a.status} for ${what}`) : REFUSED;

export async function tokenProbes(t: SecurityTarget, routes: readonly ApiRoute[]): Promise<HttpProbe[]> {
  const { a } = t.patients;
  const api = [
    ...(await forgeries(t, t.tokens.apiAudience, 'api')),
    ...(await misissued(t, t.tokens.apiAudience, 'api', a.id)),
  ];
  const out: HttpProbe[] = [];
  for (const atk of api) {
    for (const r of routes) {
      if (routeKind(r).kind === 'public') continue;
      const req = requestFor(r, atk.patient ? { id: atk.patient, markers: [] } : a);
      const headers = { authorization: `Bearer ${atk.token}` };
      out.push(apiProbe(t, 'tokens', r, { ...req, headers }, atk.name, anyOk(atk.name)));
    }
  }
  const ingest = t.services['adapter-fhir'];
  if (ingest) {
    const aud = t.tokens.ingestAudience;
    const attacks = [...(await forgeries(t, aud, 'ingest')), ...(await misissued(t, aud, 'ingest', a.id))];
    const staff = await t.tokens.role('staff');
    if (staff) attacks.push({ name: 'API staff token (audience hub-api)', token: staff, for: 'ingest' });
    for (const atk of attacks) out.push(...ingestAttackProbes(t, ingest, atk));
  }
  return out;
}

function ingestAttackProbes(t: SecurityTarget, base: string, atk: Attack): HttpProbe[] {
  const auth = { authorization: `Bearer ${atk.token}` };
  const read = t.ingestResources[0] ?? `Patient/${t.patients.a.id}`;
  const id = `sec-tok-${randomBytes(4).toString('hex')}`;
  const patient = JSON.stringify(attackPatient(id));
  const common = {
    area: 'tokens' as const,
    service: 'adapter-fhir',
    base,
    label: atk.name,
    judge: anyOk(atk.name),
  };
  return [
    { ...common, method: 'GET', path: `/${read}`, headers: auth },
    {
      ...common,
      method: 'PUT',
      path: `/Patient/${id}`,
      headers: { ...auth, 'content-type': 'application/fhir+json' },
      body: patient,
    },
  ];
}

/** A made-up patient the probes try to write (never a real person: SECPROBE names). */
export function attackPatient(id: string): object {
  return {
    resourceType: 'Patient',
    id,
    identifier: [{ system: 'urn:oid:2.16.840.1.113883.3.999', value: `SECPROBE-${id}` }],
    name: [{ family: 'Secprobe', given: ['Mallory'] }],
    gender: 'other',
    birthDate: '1999-09-09',
  };
}
