import { FHIR_TYPES, parseScopes, type Permission } from './scopes.js';

/**
 * What a backend client (SMART Backend Services, client-credentials) may do
 * at the ingest edge, from the `system/` scopes of its token. Pure. Only the
 * `system/` context counts: a `patient/` or `user/` scope is a person's grant
 * and never lets a machine write. SMART v2 letters (`system/Observation.cu`,
 * `system/*.cud`, `system/Patient.rs`) and the v1 words (`.write`, `.read`,
 * `.*`) are both accepted (libs/auth/scopes parseScope); a v2 scope with a
 * search restriction (`?category=…`) grants nothing here.
 */
export type IngestAccess =
  | { kind: 'create' | 'update' | 'delete' | 'read'; resourceType: string }
  /** `$import`: a write of any type it may contain, so create and update on every type. */
  | { kind: 'import' };

/** The default audience (and WWW-Authenticate realm) of tokens for the ingest edge: its own, not the API's. */
export const INGEST_AUDIENCE = 'hub-ingest';

/** The one literal scope that grants `$import` without listing types. */
export const IMPORT_SCOPE = 'system/$import';

const PERMISSION: Record<Exclude<IngestAccess['kind'], 'import'>, Permission> = {
  create: 'c',
  update: 'u',
  delete: 'd',
  read: 'r',
};

/** Whether one of the `system/` scopes grants `perm` on `resourceType`. */
export function systemGrants(scopes: readonly string[], resourceType: string, perm: Permission): boolean {
  return parseScopes(scopes).some(
    (s) => s.context === 'system' && (s.resource === resourceType || s.resource === '*') && s.perms.has(perm),
  );
}

export function systemAllows(scopes: readonly string[], access: IngestAccess): boolean {
  if (access.kind === 'import') {
    return (
      scopes.includes(IMPORT_SCOPE) ||
      FHIR_TYPES.every((t) => systemGrants(scopes, t, 'c') && systemGrants(scopes, t, 'u'))
    );
  }
  return systemGrants(scopes, access.resourceType, PERMISSION[access.kind]);
}

/** Whether the scopes grant any write at all (the bundle route's first check; entries are checked one by one). */
export function systemWritesAny(scopes: readonly string[]): boolean {
  return parseScopes(scopes).some(
    (s) => s.context === 'system' && (s.perms.has('c') || s.perms.has('u') || s.perms.has('d')),
  );
}
