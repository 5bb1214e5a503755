/**
 * The services `hub up` runs and where they listen locally, and the one
 * readiness probe `hub up` and `hub status` share. No I/O at import time; kept
 * apart from up.ts so that ops.ts can use it without an import cycle.
 */

import { LOCAL_FHIR_CLIENTS_FILE } from './ingest-token.js';

/**
 * The services `hub up` runs, each as its own process from its own main.ts,
 * exactly as in production: a crash or a memory leak in one cannot take the
 * others down, and there is one wiring per service, not a second copy here.
 */
export interface ServiceSpec {
  name: string;
  httpPort: number;
  /** Extra environment (ports of other listeners). */
  env?: Record<string, string>;
  /**
   * What `hub up --secure` sets instead (over `env`): a dev convenience such
   * as the console's development sign-in is turned off explicitly, so that
   * a variable left in the caller's shell cannot turn it back on.
   */
  secureEnv?: Record<string, string>;
  /** What to tell the user, given the HTTP base URL and the service's extra environment. */
  endpoints(base: string, env: Readonly<Record<string, string>>): string;
}

export const SERVICES: readonly ServiceSpec[] = [
  {
    name: 'adapter-hl7',
    httpPort: 8092,
    env: { MLLP_HOST: '127.0.0.1', MLLP_PORT: '2575' },
    endpoints: (b, env) => `mllp://127.0.0.1:${env['MLLP_PORT'] ?? '?'}  (${b}/health /ready /metrics)`,
  },
  {
    name: 'adapter-fhir',
    httpPort: 8093,
    // Which backend clients it accepts: the operator's file, else the local sample.
    env: { FHIR_CLIENTS_FILE: process.env['FHIR_CLIENTS_FILE'] ?? LOCAL_FHIR_CLIENTS_FILE },
    endpoints: (b) =>
      `${b}  (bearer token: hub auth token --scope system/*.cud --client lab-system --audience hub-ingest; POST /Patient, /Encounter, ..., Bundle at /, NDJSON at /$import)`,
  },
  // A projector's port serves /health, /ready, /metrics and, for an operator token, /version:
  // never a patient (PHI is read through the API, scoped and audited).
  {
    name: 'patient-directory',
    httpPort: 8091,
    endpoints: (b) => `${b}/ready  (schema patient_directory, read in SQL)`,
  },
  { name: 'projector-billing', httpPort: 8095, endpoints: (b) => `${b}/ready  (schema billing)` },
  { name: 'projector-analytics', httpPort: 8096, endpoints: (b) => `${b}/ready  (schema analytics)` },
  { name: 'projector-portal', httpPort: 8097, endpoints: (b) => `${b}/ready  (schema portal)` },
  { name: 'api', httpPort: 8098, endpoints: (b) => `${b}/docs  (FHIR at ${b}/fhir, billing, analytics)` },
  // Outbound subscriptions: managed through the API and `hub subscriptions`; its port is health and metrics only.
  { name: 'delivery', httpPort: 8099, endpoints: (b) => `${b}/ready  (schema delivery; hub subscriptions)` },
  // The master patient index: link decisions on clinical.identity.v1; the worklist is the API's and `hub identity`'s.
  {
    name: 'identity-matcher',
    httpPort: 8100,
    endpoints: (b) => `${b}/ready  (schema identity; hub identity review)`,
  },
  // The operations console (a browser UI). Its cookie is not Secure: `hub up` serves plain http on
  // loopback. The dev hub has its development sign-in; the secure profile signs in through
  // CONSOLE_OIDC_* only (the caller's environment), as production does.
  {
    name: 'console',
    httpPort: 8110,
    env: { CONSOLE_DEV_LOGIN: 'true', CONSOLE_SECURE_COOKIES: 'false' },
    secureEnv: { CONSOLE_DEV_LOGIN: 'false' },
    endpoints: (b, env) =>
      env['CONSOLE_DEV_LOGIN'] === 'true'
        ? `${b}/  (operations console; development sign-in)`
        : `${b}/  (operations console; sign-in through CONSOLE_OIDC_ISSUER only)`,
  },
];

/**
 * `hub up --secure` puts every listener of a service this far above its dev
 * port (HTTP 28091-28110, MLLP 22575): a secure hub then runs beside a dev
 * one (and beside tests that hold the dev ports), as its infrastructure does.
 * Below Linux's ephemeral range (32768-60999): a port the OS hands out to a
 * test's listen(0) or an outbound connection never takes one of them.
 */
export const SECURE_PORT_OFFSET = 20_000;

/** A service's ports (HTTP, and MLLP when it has one) moved up by `offset`. Pure. */
export function withPortOffset(spec: ServiceSpec, offset: number): ServiceSpec {
  const mllp = spec.env?.['MLLP_PORT'];
  return {
    ...spec,
    httpPort: spec.httpPort + offset,
    ...(spec.env
      ? { env: { ...spec.env, ...(mllp ? { MLLP_PORT: String(Number(mllp) + offset) } : {}) } }
      : {}),
  };
}

/** A service with its secure-profile environment over its dev one. Pure. */
export function withSecureEnv(spec: ServiceSpec): ServiceSpec {
  return spec.secureEnv ? { ...spec, env: { ...spec.env, ...spec.secureEnv } } : spec;
}

/**
 * The services of `hub up` (dev ports) or `hub up --secure` (ports moved up by
 * SECURE_PORT_OFFSET, and without the dev profile's conveniences: no
 * development sign-in beside a hub that is meant to show the production rules).
 */
export function servicesFor(profile: 'dev' | 'secure'): readonly ServiceSpec[] {
  return profile === 'secure'
    ? SERVICES.map((s) => withPortOffset(withSecureEnv(s), SECURE_PORT_OFFSET))
    : SERVICES;
}

/** Where `hub up` makes a service listen. */
export function localBaseUrl(spec: Pick<ServiceSpec, 'httpPort'>): string {
  return `http://127.0.0.1:${spec.httpPort}`;
}

export interface Readiness {
  /** `not running`: nothing listens there (connection refused). */
  state: 'ready' | 'not-ready' | 'not running';
  /** Failing checks of /ready with their detail (codes, not data), or why there was no answer. */
  failing: string;
}

/** The failing checks of a /ready body (`checks: {name: {ok, detail}}`). Pure. */
export function failingChecks(body: unknown): string {
  const checks = (body as { checks?: unknown } | null)?.checks;
  if (typeof checks !== 'object' || checks === null) return '';
  return Object.entries(checks as Record<string, { ok?: unknown; detail?: unknown }>)
    .filter(([, c]) => c?.ok !== true)
    .map(([k, c]) => (typeof c?.detail === 'string' && c.detail ? `${k}: ${c.detail}` : k))
    .join('; ');
}

function refused(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e && typeof e === 'object' && i < 4; i++) {
    if ((e as { code?: unknown }).code === 'ECONNREFUSED') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** GET {base}/ready, bounded; never throws. */
export async function probeReadiness(base: string, timeoutMs = 3000): Promise<Readiness> {
  try {
    const res = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(timeoutMs) });
    const body: unknown = await res.json().catch(() => ({}));
    if (res.status === 200) return { state: 'ready', failing: '' };
    return { state: 'not-ready', failing: failingChecks(body) || `HTTP ${res.status}` };
  } catch (err) {
    if (refused(err)) return { state: 'not running', failing: '' };
    const e = err as { name?: unknown; message?: unknown };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : String(e.message ?? err);
    return { state: 'not-ready', failing: why.replace(/\n.*/s, '').slice(0, 160) };
  }
}
