/**
 * SMART-on-FHIR style scopes and the access decision, as pure functions.
 *
 * Scope grammar: `<context>/<resource>.<permissions>` where context is
 * patient | user | system, resource is a FHIR type, `*`, or one of the hub's
 * own areas (billing, analytics, hub, Identity), and permissions are SMART v2 letters
 * (`rs`, `cruds`) or the v1 words `read` / `write` / `*`.
 */
export type ScopeContext = 'patient' | 'user' | 'system';
export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

export interface Scope {
  context: ScopeContext;
  resource: string;
  perms: ReadonlySet<Permission>;
}

/** The hub's non-FHIR scopes. */
export const HUB_SCOPES = {
  billing: 'system/billing.read',
  analytics: 'system/analytics.read',
  admin: 'system/hub.admin',
  /** Operator routes on the services' own ports (/version, /views): no PHI, but not for everyone. */
  operator: 'system/hub.operator',
} as const;

export const FHIR_TYPES = [
  'Patient',
  'Encounter',
  'Observation',
  'DiagnosticReport',
  'ServiceRequest',
  'AllergyIntolerance',
  'Condition',
  'Coverage',
] as const;
export type FhirType = (typeof FHIR_TYPES)[number];

export interface Principal {
  /** `sub`: the user or client the token was issued to. */
  subject: string;
  /** `client_id` / `azp`: the application acting; the subject when absent. */
  clientId: string;
  scopes: readonly string[];
  /** SMART launch context: the patient a `patient/` scope is bound to. */
  patient: string | null;
  /** Token expiry (epoch ms), when known: bounds how long a verification may be reused. */
  expiresAt?: number;
}

const LETTERS = new Set<string>(['c', 'r', 'u', 'd', 's']);

function permsOf(p: string): Set<Permission> | null {
  if (p === 'read') return new Set<Permission>(['r', 's']);
  if (p === 'write') return new Set<Permission>(['c', 'u', 'd']);
  if (p === '*') return new Set<Permission>(['c', 'r', 'u', 'd', 's']);
  if (p.length === 0 || p.length > 5) return null;
  const out = new Set<Permission>();
  for (const ch of p) {
    if (!LETTERS.has(ch) || out.has(ch as Permission)) return null;
    out.add(ch as Permission);
  }
  return out;
}

/** Parses one scope; anything that is not a resource scope (openid, launch/patient, ...) is null. */
export function parseScope(s: string): Scope | null {
  const m = /^(patient|user|system)\/([A-Za-z*]+)\.([a-z*]+)$/.exec(s);
  const [, context, resource, letters] = m ?? [];
  if (context === undefined || resource === undefined || letters === undefined) return null;
  const perms = permsOf(letters);
  if (!perms) return null;
  return { context: context as ScopeContext, resource, perms };
}

export function parseScopes(scope: string | readonly string[]): Scope[] {
  const list = typeof scope === 'string' ? scope.split(/\s+/) : scope;
  return list.map(parseScope).filter((s): s is Scope => s !== null);
}

export type AccessRequest =
  | { kind: 'fhir'; interaction: 'read' | 'search'; resourceType: FhirType; patientId: string | null }
  | { kind: 'everything'; patientId: string }
  | { kind: 'billing' }
  | { kind: 'analytics' }
  | { kind: 'admin' }
  /** Outbound subscriptions (issue 20): who may see or change where the hub sends data. */
  | { kind: 'subscription'; interaction: SubscriptionInteraction }
  /** The master patient index's steward surfaces (issue 21): the review worklist and link decisions. */
  | { kind: 'identity'; interaction: IdentityInteraction };

/** What a subscription route does, as the SMART permission it needs on `Subscription`. */
export type SubscriptionInteraction = 'read' | 'search' | 'create' | 'update' | 'delete';

const SUBSCRIPTION_PERM: Record<SubscriptionInteraction, Permission> = {
  read: 'r',
  search: 's',
  create: 'c',
  update: 'u',
  delete: 'd',
};

/** The scope letter a subscription interaction needs (`system/Subscription.<letter>`). */
export const subscriptionPermission = (i: SubscriptionInteraction): Permission => SUBSCRIPTION_PERM[i];

/**
 * Subscriptions are granted by `system/Subscription.<perms>` only (SMART v2
 * letters or v1 `read` / `write`): not by a wildcard (`system/*.rs`, an
 * ingest client's `system/*.cud`), not to a person's `user/` or `patient/`
 * scope. A subscription sends every matching patient's data to an endpoint
 * of its creator's choosing, for as long as it lives: that power is granted
 * by name, to a backend client.
 */
function grantsSubscription(scopes: readonly Scope[], i: SubscriptionInteraction): boolean {
  const perm = SUBSCRIPTION_PERM[i];
  return scopes.some((s) => s.context === 'system' && s.resource === 'Subscription' && s.perms.has(perm));
}

/**
 * What an identity route does: read one record's explanation, search the
 * review worklist, or create a decision (link, unlink, reject).
 */
export type IdentityInteraction = 'read' | 'search' | 'create';

const IDENTITY_PERM: Record<IdentityInteraction, Permission> = { read: 'r', search: 's', create: 'c' };

/** The scope letter an identity interaction needs (`system/Identity.<letter>` or `user/Identity.<letter>`). */
export const identityPermission = (i: IdentityInteraction): Permission => IDENTITY_PERM[i];

/**
 * The steward surfaces are granted by `Identity.<perms>` only (SMART v2
 * letters or v1 `read` / `write`), in system context (a steward tool's
 * backend) or user context (a data steward signed in): not by a wildcard
 * (`user/*.rs` is every clinician's, and a link decides whose records the
 * portal shows as one person), not to a `patient/` scope (the worklist shows
 * other people's records).
 */
function grantsIdentity(scopes: readonly Scope[], i: IdentityInteraction): boolean {
  const perm = IDENTITY_PERM[i];
  return scopes.some(
    (s) => (s.context === 'system' || s.context === 'user') && s.resource === 'Identity' && s.perms.has(perm),
  );
}

export type DenyReason =
  'unauthenticated' | 'insufficient-scope' | 'patient-mismatch' | 'no-patient-context' | 'patient-required';

export type Decision =
  | {
      allow: true;
      /** The patient the request is confined to (null: any patient, staff or system access). */
      patientId: string | null;
      /** For $everything: the types the scopes allow. */
      resourceTypes: readonly FhirType[];
    }
  | { allow: false; reason: DenyReason };

const deny = (reason: DenyReason): Decision => ({ allow: false, reason });

function grants(s: Scope, context: ScopeContext, resource: string, perm: Permission): boolean {
  return s.context === context && (s.resource === resource || s.resource === '*') && s.perms.has(perm);
}

/**
 * What a principal may do. Patient-context scopes win only if no staff scope
 * grants the same thing; a patient scope without a patient claim grants
 * nothing (a token that forgot the launch context must not become staff).
 */
export function decide(principal: Principal | null, req: AccessRequest): Decision {
  if (!principal) return deny('unauthenticated');
  const scopes = parseScopes(principal.scopes);
  const has = (full: string) => principal.scopes.includes(full);
  switch (req.kind) {
    case 'billing':
      return has(HUB_SCOPES.billing)
        ? { allow: true, patientId: null, resourceTypes: [] }
        : deny('insufficient-scope');
    case 'analytics':
      return has(HUB_SCOPES.analytics)
        ? { allow: true, patientId: null, resourceTypes: [] }
        : deny('insufficient-scope');
    case 'admin':
      return has(HUB_SCOPES.admin)
        ? { allow: true, patientId: null, resourceTypes: [] }
        : deny('insufficient-scope');
    case 'subscription':
      return grantsSubscription(scopes, req.interaction)
        ? { allow: true, patientId: null, resourceTypes: [] }
        : deny('insufficient-scope');
    case 'identity':
      return grantsIdentity(scopes, req.interaction)
        ? { allow: true, patientId: null, resourceTypes: [] }
        : deny('insufficient-scope');
    case 'fhir':
    case 'everything': {
      const wanted: readonly { type: FhirType; perm: Permission }[] =
        req.kind === 'fhir'
          ? [{ type: req.resourceType, perm: req.interaction === 'read' ? 'r' : 's' }]
          : FHIR_TYPES.map((type) => ({ type, perm: type === 'Patient' ? 'r' : 's' }));
      const staff = (ctx: ScopeContext) =>
        wanted.filter((w) => scopes.some((s) => grants(s, ctx, w.type, w.perm))).map((w) => w.type);
      const staffTypes = [...new Set([...staff('user'), ...staff('system')])];
      const patientTypes = staff('patient');
      const requested = req.patientId;
      // $everything needs at least the Patient itself; a search needs its type.
      const enough = (types: readonly FhirType[]) =>
        req.kind === 'fhir' ? types.length > 0 : types.includes('Patient');
      if (enough(staffTypes)) {
        if (req.kind === 'fhir' && req.interaction === 'search' && requested === null) {
          return deny('patient-required');
        }
        return { allow: true, patientId: requested, resourceTypes: staffTypes };
      }
      if (!enough(patientTypes)) return deny('insufficient-scope');
      if (!principal.patient) return deny('no-patient-context');
      if (requested !== null && requested !== principal.patient) return deny('patient-mismatch');
      return { allow: true, patientId: principal.patient, resourceTypes: patientTypes };
    }
  }
}

/** HTTP status for a denial: 401 asks for (new) credentials, 403 says these will never do. */
export function denyStatus(reason: DenyReason): 400 | 401 | 403 {
  switch (reason) {
    case 'unauthenticated':
      return 401;
    case 'patient-required':
      return 400;
    case 'insufficient-scope':
    case 'patient-mismatch':
    case 'no-patient-context':
      return 403;
  }
}
