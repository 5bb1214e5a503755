import { resolve } from 'node:path';
import { ensureDevKeys, mintToken } from '../auth/jwt.js';
import { INGEST_AUDIENCE } from '../auth/system-scopes.js';

/**
 * Local credentials for the FHIR adapter: the clients file `hub up` gives it
 * (unless FHIR_CLIENTS_FILE is set) and a token from the local development
 * key, which the adapter trusts only without AUTH_JWKS_URL. For scripts,
 * drills and benchmarks on this machine; a hospital's clients get theirs
 * from its identity provider.
 */
export const LOCAL_FHIR_CLIENTS_FILE = 'deploy/local/fhir-clients.sample.yaml';
export const LOCAL_INGEST_CLIENT = 'hub-local';

export async function localIngestAuth(
  o: { keysDir?: string; scopes?: readonly string[]; ttlSec?: number } = {},
): Promise<{ authorization: string }> {
  const keys = await ensureDevKeys(resolve(o.keysDir ?? process.env['AUTH_DEV_KEYS_DIR'] ?? '.hub/dev-keys'));
  const token = await mintToken({
    keys,
    subject: LOCAL_INGEST_CLIENT,
    scope: o.scopes ?? ['system/*.cud', 'system/*.rs'],
    ttlSec: o.ttlSec ?? 3600,
    audience: INGEST_AUDIENCE,
  });
  return { authorization: `Bearer ${token}` };
}
