import { resolve } from 'node:path';
import { z } from '../config/index.js';
import type { Logger } from '../telemetry/logger.js';
import {
  DEV_AUDIENCE,
  DEV_ISSUER,
  cachedVerifier,
  createTokenVerifier,
  ensureDevKeys,
  type TokenVerifier,
} from './jwt.js';

/**
 * The bearer-token variables every service that checks tokens reads (the API,
 * the FHIR adapter, operator routes on every service port), under the same
 * names everywhere, so one identity provider configuration serves the hub.
 */
export function authEnv(defaultAudience: string = DEV_AUDIENCE) {
  return {
    /** Production: the identity provider's JWKS endpoint. Without it, the local dev key set is used. */
    AUTH_JWKS_URL: z.url().optional(),
    AUTH_DEV_KEYS_DIR: z.string().default('.hub/dev-keys'),
    AUTH_ISSUER: z.string().min(1).default(DEV_ISSUER),
    AUTH_AUDIENCE: z.string().min(1).default(defaultAudience),
  };
}

export interface AuthEnv {
  AUTH_JWKS_URL?: string | undefined;
  AUTH_DEV_KEYS_DIR: string;
  AUTH_ISSUER: string;
  AUTH_AUDIENCE: string;
}

/**
 * Production: the identity provider's key set. Without AUTH_JWKS_URL: the
 * local development key (created once), with a warning at start.
 */
export async function verifierFromEnv(env: AuthEnv, logger: Logger): Promise<TokenVerifier> {
  const claims = { issuer: env.AUTH_ISSUER, audience: env.AUTH_AUDIENCE };
  if (env.AUTH_JWKS_URL)
    return cachedVerifier(createTokenVerifier({ ...claims, jwksUrl: env.AUTH_JWKS_URL }));
  const keys = await ensureDevKeys(resolve(env.AUTH_DEV_KEYS_DIR));
  logger.warn(
    { dir: env.AUTH_DEV_KEYS_DIR },
    'no AUTH_JWKS_URL: accepting tokens signed by the local development key',
  );
  return cachedVerifier(createTokenVerifier({ ...claims, jwks: keys.jwks }));
}
