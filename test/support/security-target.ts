import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SignJWT, exportSPKI, generateKeyPair, importJWK, type JWK } from 'jose';
import { z } from '../../libs/config/index.js';
import { DEV_AUDIENCE, DEV_ISSUER, mintToken, readDevKeys, type DevKeys } from '../../libs/auth/jwt.js';

/**
 * What the security suite probes: a deployment's URLs, MLLP listener, test
 * patients and a way to get tokens. The suite either starts the hub itself
 * (security-local.ts) and describes it with this, or reads it from the file
 * HUB_SECURITY_TARGET names (docs/security-suite.md).
 */
export interface TestPatient {
  id: string;
  encounterId?: string | undefined;
  /** sha256 of an attachment of one of its released reports (Binary id). */
  binaryId?: string | undefined;
  /** Strings only this patient's data contains (family name, MRN, ids of its resources). */
  markers: string[];
}

export interface MllpTarget {
  host: string;
  port: number;
  /** A connection with no bytes for this long must be closed. */
  idleTimeoutMs: number;
  /** A frame must end this long after its start block. */
  frameTimeoutMs: number;
  maxMessageBytes: number;
  /** Connections one peer address may hold; unset: the per-peer probe is not run. */
  maxConnectionsPerPeer?: number | undefined;
  /** Slack on every bound (scheduling, a loaded host). */
  slackMs: number;
}

export interface SecurityTarget {
  name: string;
  /** Query API base URL (no trailing slash). */
  api: string;
  /** Every other service's HTTP base URL, by service name (adapter-fhir, projector-portal, ...). */
  services: Record<string, string>;
  mllp?: MllpTarget | undefined;
  patients: { a: TestPatient; b: TestPatient };
  /** Resource ids the FHIR adapter holds (type/id), for its unauthenticated read probes. */
  ingestResources: string[];
  /** Every string of test PHI: none may appear on an unauthenticated answer or a health/metrics body. */
  phiMarkers: string[];
  tokens: TokenSource;
}

/** The roles the suite asks tokens for; `scope:<scopes>` is one token of the scope matrix. */
export type TokenRole =
  | 'patientA'
  | 'staff'
  | 'billing'
  | 'analytics'
  | 'admin'
  | 'ingest'
  | 'ingestRead'
  | 'operator'
  | `scope:${string}`;

/** A token spec for a role: scopes, patient context, audience. */
export interface TokenSpec {
  scope: string[];
  patient?: string;
  audience?: string;
}

/** Tokens by role, and the forged / misissued ones of the token-attack area (null: cannot be made here). */
export interface TokenSource {
  issuer: string;
  apiAudience: string;
  ingestAudience: string;
  role(role: TokenRole): Promise<string | null>;
  /** A token signed with the deployment's own key but with claims of the caller's choosing. */
  signed(claims: Record<string, unknown>, header?: Record<string, unknown>): Promise<string | null>;
  /** The issuer's public key set, when known (for key-confusion attacks). */
  publicJwk(): JWK | null;
}

/** The scope-matrix tokens: each with the patient it is bound to (A) when patient-context. */
export const SCOPE_MATRIX: readonly TokenSpec[] = [
  { scope: ['patient/*.rs'] },
  { scope: ['patient/Patient.rs'] },
  { scope: ['patient/Observation.rs'] },
  { scope: ['patient/DiagnosticReport.rs'] },
  { scope: ['user/Patient.rs'] },
  { scope: ['user/Observation.rs'] },
  { scope: ['user/Encounter.rs'] },
  { scope: ['user/ServiceRequest.rs'] },
  { scope: ['user/*.cud'] },
  { scope: ['system/*.rs'] },
  { scope: ['system/billing.read'] },
  { scope: ['system/analytics.read'] },
  { scope: ['system/hub.admin'] },
  { scope: ['system/hub.operator'] },
  { scope: ['openid', 'fhirUser', 'launch/patient'] },
];

export const scopeRole = (s: TokenSpec): TokenRole => `scope:${s.scope.join(' ')}`;

/** The spec of each named role, given patient A's id. */
export function roleSpec(role: TokenRole, patientA: string, ingestAudience: string): TokenSpec {
  switch (role) {
    case 'patientA':
      return { scope: ['patient/*.rs'], patient: patientA };
    case 'staff':
      return { scope: ['user/*.rs'] };
    case 'billing':
      return { scope: ['system/billing.read'] };
    case 'analytics':
      return { scope: ['system/analytics.read'] };
    case 'admin':
      return { scope: ['system/hub.admin'] };
    case 'ingest':
      return { scope: ['system/*.cud', 'system/*.rs', 'system/$import'], audience: ingestAudience };
    case 'ingestRead':
      return { scope: ['system/*.rs'], audience: ingestAudience };
    case 'operator':
      // Operator routes on service ports take tokens of their own audience (libs/http/operator.ts).
      return { scope: ['system/hub.operator'], audience: 'hub-ops' };
    default: {
      const scope = role.slice('scope:'.length).split(' ');
      return { scope, ...(scope.some((s) => s.startsWith('patient/')) ? { patient: patientA } : {}) };
    }
  }
}

/** Tokens minted with the deployment's (development) signing key: every role and every attack. */
export function keyTokenSource(
  keys: DevKeys,
  o: { issuer: string; apiAudience: string; ingestAudience: string; patientA: string },
): TokenSource {
  const cache = new Map<string, string>();
  return {
    issuer: o.issuer,
    apiAudience: o.apiAudience,
    ingestAudience: o.ingestAudience,
    async role(role) {
      const hit = cache.get(role);
      if (hit) return hit;
      const spec = roleSpec(role, o.patientA, o.ingestAudience);
      const token = await mintToken({
        keys,
        subject: `security-suite-${role.replace(/[^\w]/g, '-')}`.slice(0, 60),
        scope: spec.scope,
        ...(spec.patient ? { patient: spec.patient } : {}),
        issuer: o.issuer,
        audience: spec.audience ?? o.apiAudience,
        ttlSec: 900,
      });
      cache.set(role, token);
      return token;
    },
    async signed(claims, header = {}) {
      const key = await importJWK(keys.privateJwk, 'ES256');
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: keys.kid, typ: 'JWT', ...header })
        .sign(key);
    },
    publicJwk: () => keys.jwks.keys[0] ?? null,
  };
}

/** Tokens handed over in a file (role → token); attacks needing the signing key are not made. */
export function fileTokenSource(
  tokens: Record<string, string>,
  o: { issuer: string; apiAudience: string; ingestAudience: string; publicJwk?: JWK | undefined },
): TokenSource {
  return {
    issuer: o.issuer,
    apiAudience: o.apiAudience,
    ingestAudience: o.ingestAudience,
    role: (role) => Promise.resolve(tokens[role] ?? null),
    signed: () => Promise.resolve(null),
    publicJwk: () => o.publicJwk ?? null,
  };
}

/** An ES256 key pair nobody trusts: tokens signed with it must be refused whatever their `kid`. */
export async function strangerKey(): Promise<{ sign(claims: object, header: object): Promise<string> }> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return {
    sign: (claims, header) =>
      new SignJWT({ ...claims }).setProtectedHeader({ alg: 'ES256', ...header }).sign(privateKey),
  };
}

/** The public key as PEM (SPKI), the secret a naive HS256 verifier would use. */
export async function publicPem(jwk: JWK): Promise<string> {
  const key = await importJWK(jwk, jwk.alg ?? 'ES256');
  if (key instanceof Uint8Array) return '';
  return exportSPKI(key);
}

const patientSchema = z.strictObject({
  id: z.string().min(1),
  encounterId: z.string().optional(),
  binaryId: z.string().optional(),
  markers: z.array(z.string().min(3)).min(1),
});

/** The file HUB_SECURITY_TARGET names (JSON). */
const targetFileSchema = z.strictObject({
  name: z.string().default('deployment'),
  api: z.url(),
  services: z.record(z.string(), z.url()).default({}),
  mllp: z
    .strictObject({
      host: z.string(),
      port: z.number().int(),
      idleTimeoutMs: z.number().int().positive(),
      frameTimeoutMs: z.number().int().positive(),
      maxMessageBytes: z.number().int().positive(),
      maxConnectionsPerPeer: z.number().int().positive().optional(),
      slackMs: z.number().int().min(0).default(2000),
    })
    .optional(),
  patients: z.strictObject({ a: patientSchema, b: patientSchema }),
  ingestResources: z.array(z.string()).default([]),
  phiMarkers: z.array(z.string().min(3)).default([]),
  auth: z
    .strictObject({
      issuer: z.string().default(DEV_ISSUER),
      apiAudience: z.string().default(DEV_AUDIENCE),
      ingestAudience: z.string().default('hub-ingest'),
      /** The deployment's development key directory (private.jwk.json, jwks.json): every token can be minted. */
      keysDir: z.string().optional(),
      /** Or: a JSON file of role → token (patientA, staff, billing, analytics, admin, ingest, scope:<scopes>). */
      tokensFile: z.string().optional(),
    })
    .default({ issuer: DEV_ISSUER, apiAudience: DEV_AUDIENCE, ingestAudience: 'hub-ingest' }),
});

/** Reads the target file; HUB_SECURITY_TOKENS_FILE / HUB_SECURITY_KEYS_DIR override its auth part. */
export function loadTarget(path: string, env: NodeJS.ProcessEnv = process.env): SecurityTarget {
  const file = targetFileSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
  const auth = file.auth;
  const keysDir = env['HUB_SECURITY_KEYS_DIR'] ?? auth.keysDir;
  const tokensFile = env['HUB_SECURITY_TOKENS_FILE'] ?? auth.tokensFile;
  const claims = { issuer: auth.issuer, apiAudience: auth.apiAudience, ingestAudience: auth.ingestAudience };
  const trim = (u: string) => u.replace(/\/+$/, '');
  let tokens: TokenSource;
  if (keysDir) {
    tokens = keyTokenSource(readDevKeys(resolve(keysDir)), { ...claims, patientA: file.patients.a.id });
  } else if (tokensFile) {
    const map = z.record(z.string(), z.string()).parse(JSON.parse(readFileSync(tokensFile, 'utf8')));
    tokens = fileTokenSource(map, claims);
  } else {
    throw new Error('the security target needs auth.keysDir or auth.tokensFile (or HUB_SECURITY_KEYS_DIR)');
  }
  const patientMarkers = [...file.patients.a.markers, ...file.patients.b.markers];
  return {
    name: file.name,
    api: trim(file.api),
    services: Object.fromEntries(Object.entries(file.services).map(([k, v]) => [k, trim(v)])),
    mllp: file.mllp,
    patients: file.patients,
    ingestResources: file.ingestResources,
    phiMarkers: [...new Set([...patientMarkers, ...file.phiMarkers])],
    tokens,
  };
}
