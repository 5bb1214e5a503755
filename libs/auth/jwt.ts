import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  SignJWT,
  createLocalJWKSet,
  createRemoteJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
} from 'jose';
import { HubError } from '../errors/index.js';
import type { Principal } from './scopes.js';

/**
 * Bearer token verification. Production: the identity provider's JWKS URL
 * (keys fetched and cached, rotated by `kid`). Development: a local key pair
 * in .hub/dev-keys, whose public half is used exactly like a JWKS.
 *
 * Only asymmetric algorithms are accepted: `alg: none` and HS256 (which would
 * let anyone holding the public key forge tokens) fail before any key lookup.
 */
export const ACCEPTED_ALGORITHMS = ['ES256', 'RS256', 'PS256', 'EdDSA'] as const;

export interface VerifierConfig {
  issuer: string;
  audience: string;
  /** Production: the IdP's JWKS endpoint. */
  jwksUrl?: string;
  /** Development / tests: a public key set held locally. */
  jwks?: JSONWebKeySet;
  clockToleranceSec?: number;
  /** Least time between two JWKS fetches (an unknown `kid` refetches only after it); 30 s by default. */
  jwksCooldownMs?: number;
  /** For tests of expiry. */
  currentDate?: () => Date;
}

export type TokenVerifier = (token: string) => Promise<Principal>;

/** Why a token was refused; never the token or its claims' values. */
export type TokenProblem =
  'malformed' | 'expired' | 'bad-signature' | 'bad-claims' | 'unsupported-alg' | 'no-key';

export function tokenProblem(err: unknown): TokenProblem {
  const code = (err as { code?: unknown }).code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad-signature';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return 'bad-claims';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'unsupported-alg';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'no-key';
    default:
      return 'malformed';
  }
}

/** The JWKS endpoint is down, slow or answering garbage (as opposed to a bad token). */
function keysUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  if (e.code === 'ERR_JWKS_TIMEOUT' || e.code === 'ERR_JWKS_INVALID') return true;
  if (e.code === 'ERR_JOSE_GENERIC' && typeof e.message === 'string' && /JSON Web Key Set/.test(e.message))
    return true;
  // fetch() itself failed: connection refused, DNS, TLS.
  return e.name === 'TypeError' && typeof e.message === 'string' && /fetch/i.test(e.message);
}

function principalOf(p: JWTPayload): Principal {
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : null);
  const subject = str(p.sub);
  if (!subject)
    throw new HubError('HUB_UNAUTHENTICATED', 'token has no subject', { details: { problem: 'bad-claims' } });
  const rawScope = p['scope'] ?? p['scp'];
  const scopes =
    typeof rawScope === 'string'
      ? rawScope.split(/\s+/).filter(Boolean)
      : Array.isArray(rawScope)
        ? rawScope.filter((s): s is string => typeof s === 'string')
        : [];
  return {
    subject,
    clientId: str(p['client_id']) ?? str(p['azp']) ?? subject,
    scopes,
    patient: str(p['patient']),
    ...(typeof p.exp === 'number' ? { expiresAt: p.exp * 1000 } : {}),
  };
}

/** The verifier's keys: exactly one of a JWKS URL or a local key set, else a configuration error. */
function keySetOf(cfg: VerifierConfig) {
  if (cfg.jwksUrl && !cfg.jwks) {
    return createRemoteJWKSet(new URL(cfg.jwksUrl), {
      cooldownDuration: cfg.jwksCooldownMs ?? 30_000,
      cacheMaxAge: 10 * 60_000,
    });
  }
  if (cfg.jwks && !cfg.jwksUrl) return createLocalJWKSet(cfg.jwks);
  throw new HubError('HUB_CONFIG_INVALID', 'give exactly one of a JWKS URL or a local key set');
}

export function createTokenVerifier(cfg: VerifierConfig): TokenVerifier {
  const keys = keySetOf(cfg);
  return async (token) => {
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        algorithms: [...ACCEPTED_ALGORITHMS],
        requiredClaims: ['exp', 'sub'],
        clockTolerance: cfg.clockToleranceSec ?? 30,
        ...(cfg.currentDate ? { currentDate: cfg.currentDate() } : {}),
      });
      return principalOf(payload);
    } catch (err) {
      if (err instanceof HubError) throw err;
      if (keysUnavailable(err)) {
        // Not the client's fault: a 503 makes it retry instead of discarding a good token.
        throw new HubError('HUB_AUTH_UNAVAILABLE', 'identity provider keys could not be fetched', {
          cause: err,
        });
      }
      const problem = tokenProblem(err);
      throw new HubError('HUB_UNAUTHENTICATED', `invalid bearer token (${problem})`, {
        cause: err,
        details: { problem },
      });
    }
  };
}

/**
 * Reuses a successful verification for the same token string until the
 * token expires (at most `maxAgeMs`): a signature check costs ~0.3 ms of CPU
 * and a client sends the same token with every request. Failures are never
 * cached; the cache is bounded (oldest entries evicted first).
 */
export function cachedVerifier(
  verify: TokenVerifier,
  opts: { max?: number; maxAgeMs?: number; now?: () => number } = {},
): TokenVerifier {
  const max = opts.max ?? 10_000;
  const maxAge = opts.maxAgeMs ?? 5 * 60_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { principal: Principal; until: number }>();
  return async (token) => {
    const hit = cache.get(token);
    if (hit) {
      if (hit.until > now()) return hit.principal;
      cache.delete(token);
    }
    const principal = await verify(token);
    const until = Math.min(principal.expiresAt ?? 0, now() + maxAge);
    if (until > now()) {
      if (cache.size >= max) {
        const oldest = cache.keys().next();
        if (!oldest.done) cache.delete(oldest.value);
      }
      cache.set(token, { principal, until });
    }
    return principal;
  };
}

/** Development signing key: a private JWK plus the public key set the API verifies against. */
export interface DevKeys {
  privateJwk: JWK;
  jwks: JSONWebKeySet;
  kid: string;
}

export const DEV_ISSUER = 'https://hub.local/dev-issuer';
export const DEV_AUDIENCE = 'hub-api';

export async function generateDevKeys(kid = `dev-${Date.now().toString(36)}`): Promise<DevKeys> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const pub = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const priv = { ...(await exportJWK(privateKey)), kid, alg: 'ES256' };
  return { privateJwk: priv, jwks: { keys: [pub] }, kid };
}

/**
 * Reads the dev key pair from `dir`, creating it on first use (private key
 * file mode 0600). Services started together (`hub up`: the API, the FHIR
 * adapter and every projector verify tokens) race to create it: each file is
 * written whole under a private name first; the key set is published with an
 * exclusive link, so exactly one process's pair wins and the others read it.
 */
export async function ensureDevKeys(dir: string): Promise<DevKeys> {
  const privPath = join(dir, 'private.jwk.json');
  const pubPath = join(dir, 'jwks.json');
  if (existsSync(privPath) && existsSync(pubPath)) return readDevKeys(dir);
  mkdirSync(dir, { recursive: true });
  const keys = await generateDevKeys();
  const tmpPriv = join(dir, `.private.${randomUUID()}`);
  const tmpPub = join(dir, `.jwks.${randomUUID()}`);
  try {
    writeFileSync(tmpPriv, JSON.stringify(keys.privateJwk, null, 2), { mode: 0o600 });
    chmodSync(tmpPriv, 0o600);
    writeFileSync(tmpPub, JSON.stringify(keys.jwks, null, 2));
    try {
      linkSync(tmpPub, pubPath);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EEXIST') throw err;
      return await publishedKeys(dir, privPath);
    }
    renameSync(tmpPriv, privPath);
    return keys;
  } finally {
    rmSync(tmpPriv, { force: true });
    rmSync(tmpPub, { force: true });
  }
}

/** Another process won the race: its private key follows its key set within moments. */
async function publishedKeys(dir: string, privPath: string): Promise<DevKeys> {
  for (let i = 0; i < 100 && !existsSync(privPath); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(privPath)) {
    throw new HubError(
      'HUB_CONFIG_INVALID',
      `dev key set in ${dir} has no private key: remove the directory`,
    );
  }
  return readDevKeys(dir);
}

export function readDevKeys(dir: string): DevKeys {
  const privateJwk = JSON.parse(readFileSync(join(dir, 'private.jwk.json'), 'utf8')) as JWK;
  const jwks = JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8')) as JSONWebKeySet;
  return { privateJwk, jwks, kid: privateJwk.kid ?? '' };
}

export function readJwks(dir: string): JSONWebKeySet {
  const path = join(dir, 'jwks.json');
  if (!existsSync(path)) {
    throw new HubError('HUB_CONFIG_INVALID', `no dev key set at ${path}; run \`hub auth keys\``);
  }
  return JSON.parse(readFileSync(path, 'utf8')) as JSONWebKeySet;
}

export interface MintOptions {
  keys: DevKeys;
  subject: string;
  scope: readonly string[];
  patient?: string;
  clientId?: string;
  ttlSec: number;
  issuer?: string;
  audience?: string;
  /** Issued-at override (epoch seconds), e.g. to mint an already expired token in a test. */
  now?: number;
}

export async function mintToken(o: MintOptions): Promise<string> {
  const key = await importJWK(o.keys.privateJwk, 'ES256');
  const now = o.now ?? Math.floor(Date.now() / 1000);
  return new SignJWT({
    scope: o.scope.join(' '),
    ...(o.patient ? { patient: o.patient } : {}),
    client_id: o.clientId ?? o.subject,
  })
    .setProtectedHeader({ alg: 'ES256', kid: o.keys.kid, typ: 'JWT' })
    .setSubject(o.subject)
    .setIssuer(o.issuer ?? DEV_ISSUER)
    .setAudience(o.audience ?? DEV_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + o.ttlSec)
    .setJti(crypto.randomUUID())
    .sign(key);
}
