import type { Identifier } from '../events/index.js';
import { nameUuid } from '../events/name-uuid.js';
import { HubError } from '../errors/index.js';
import type { SiteConfig } from '../site-config/index.js';

/**
 * The enterprise patient id: the Kafka key of every clinical topic and the
 * join key of every read model. Both adapters (HL7 and FHIR) derive it here,
 * so that the same patient arriving by either route lands on the same key.
 *
 * There is no MPI in front of the hub, so the key is derived from one
 * identifier chosen by policy (normally the hospital MRN). It is a name-based
 * UUID of (system, value), not the MRN itself: keys appear in broker logs,
 * tool output and consumer-group lag listings, where an MRN would be PHI.
 */

/**
 * One assigning authority as the site configuration registers it
 * (libs/site-config): how senders name it (HL7 HD namespace id, universal id
 * and its type) and the system the hub records for it.
 */
export interface Authority {
  namespaceId?: string | undefined;
  universalId?: string | undefined;
  universalIdType?: string | undefined;
  /** HL7 table 0203 type of the identifiers it assigns; recorded when CX-5 is empty. Never used to match. */
  identifierType?: string | undefined;
  system: string;
}

export interface IdentityPolicy {
  /**
   * Canonical identifier systems whose value is the enterprise identity, in
   * priority order. When none is present, the first identifier of type MR,
   * then the first identifier, is used (and the message is still accepted).
   */
  enterpriseSystems: readonly string[];
  /**
   * Deprecated (HUB_AUTHORITY_ALIASES; use `authorities`): spellings of one
   * assigning authority → its canonical system URI. Keys are matched
   * case-insensitively against HL7 CX.4 namespace ids, HL7 universal ids and
   * FHIR Identifier.system. Consulted only when no `authorities` entry matches.
   */
  authorityAliases: Readonly<Record<string, string>>;
  /**
   * Registered assigning authorities (site configuration `authorities`). An
   * authority sent as namespace id only, as universal id only, or as both
   * resolves to its `system`; see resolveHl7Authority. Absent: none.
   */
  authorities?: readonly Authority[];
}

export const DEFAULT_IDENTITY_POLICY: IdentityPolicy = {
  enterpriseSystems: [],
  authorityAliases: {},
  authorities: [],
};

// Changing this namespace changes every patient key: never do it on a live log.
const PATIENT_KEY_NAMESPACE = '0b9f6a3e-5d1c-4f7e-8a2b-6c4d3e2f1a90';

/** The prefix of the deterministic system of an authority sent as a bare namespace id. */
export const NAMESPACE_SYSTEM_PREFIX = 'urn:hl7:authority:';

const OID = /^[0-2](\.(0|[1-9][0-9]*))+$/;
const URI_LIKE = /^[a-z][a-z0-9+.-]*:/i;
const fold = (s: string) => s.trim().toLowerCase();

function alias(policy: IdentityPolicy, s: string): string | undefined {
  const k = fold(s);
  for (const [from, to] of Object.entries(policy.authorityAliases)) {
    if (fold(from) === k) return to;
  }
  return undefined;
}

/**
 * The system a universal id has without registration (unchanged from before
 * authorities existed, so existing keys stay): ISO becomes `urn:oid:`; a URI
 * stays as it is. Undefined otherwise (DNS, GUID, an untyped OID, ...): the
 * namespace id then names it.
 */
function uidSystem(uid: string, type: string): string | undefined {
  if (type === 'ISO') return `urn:oid:${uid}`;
  if (type === 'URI' || URI_LIKE.test(uid)) return uid;
  return undefined;
}

const byUniversalId = (auths: readonly Authority[], uid: string) =>
  auths.find((a) => a.universalId !== undefined && fold(a.universalId) === fold(uid));
const byNamespace = (auths: readonly Authority[], ns: string) =>
  auths.find((a) => a.namespaceId !== undefined && fold(a.namespaceId) === fold(ns));
const bySystem = (auths: readonly Authority[], system: string) =>
  auths.find((a) => fold(a.system) === fold(system));

export interface ResolvedAuthority {
  system: string;
  /** The registered authority it resolved to; undefined when unregistered (deterministic system). */
  authority?: Authority | undefined;
}

/**
 * Resolves an HL7 assigning authority (HD: namespace id, universal id,
 * universal id type) against the registered authorities, case-insensitively:
 *
 * 1. The universal id names a registered authority (its `universalId`, or
 *    its `system` as `urn:oid:<oid>` / the URI itself): that authority. The
 *    universal id wins over the namespace id when the two name different
 *    registered authorities: a universal id is globally unique, a namespace
 *    id only means something within one sender's configuration.
 * 2. The namespace id names a registered authority, and the message sends
 *    no universal id or the authority declares none: that authority. (When
 *    both declare one and they differ, the message names another authority
 *    that happens to share a local name: it is not this one.)
 * 3. A deprecated alias (HUB_AUTHORITY_ALIASES) of the namespace or universal id.
 * 4. Unregistered, deterministic: an ISO OID becomes `urn:oid:<oid>`; a URI
 *    stays as it is; a bare namespace becomes `urn:hl7:authority:<namespace>`
 *    (so it cannot collide with a URI).
 */
export function resolveHl7Authority(
  hd: {
    namespaceId?: string | undefined;
    universalId?: string | undefined;
    universalIdType?: string | undefined;
  },
  policy: IdentityPolicy = DEFAULT_IDENTITY_POLICY,
): ResolvedAuthority {
  const ns = hd.namespaceId?.trim() ?? '';
  const uid = hd.universalId?.trim() ?? '';
  const type = hd.universalIdType?.trim().toUpperCase() ?? '';
  const auths = policy.authorities ?? [];
  const asSystem = uid ? uidSystem(uid, type) : undefined;
  // For matching only, an untyped OID is read as one: `urn:oid:<oid>` may be how the authority is registered.
  const matchSystem = asSystem ?? (OID.test(uid) ? `urn:oid:${uid}` : undefined);
  const viaUid = uid
    ? (byUniversalId(auths, uid) ?? (matchSystem ? bySystem(auths, matchSystem) : undefined))
    : undefined;
  if (viaUid) return { system: viaUid.system, authority: viaUid };
  const viaNs = ns ? byNamespace(auths, ns) : undefined;
  if (viaNs && (!uid || viaNs.universalId === undefined)) return { system: viaNs.system, authority: viaNs };
  const viaAlias = (ns && alias(policy, ns)) || (uid && alias(policy, uid));
  if (viaAlias) return { system: viaAlias };
  if (asSystem) return { system: asSystem };
  if (ns) return { system: `${NAMESPACE_SYSTEM_PREFIX}${ns}` };
  if (uid) return { system: `${NAMESPACE_SYSTEM_PREFIX}${uid}` };
  return { system: `${NAMESPACE_SYSTEM_PREFIX}unknown` };
}

/** Canonical system for an HL7 assigning authority (see resolveHl7Authority). */
export function systemForHl7Authority(
  hd: {
    namespaceId?: string | undefined;
    universalId?: string | undefined;
    universalIdType?: string | undefined;
  },
  policy: IdentityPolicy = DEFAULT_IDENTITY_POLICY,
): string {
  return resolveHl7Authority(hd, policy).system;
}

/**
 * Resolves a FHIR Identifier.system (or any URI-ish system string) against
 * the registered authorities, case-insensitively: a registered `system`
 * itself; `urn:oid:<oid>` or a URI that is an authority's `universalId`;
 * `urn:hl7:authority:<ns>` (the hub's own spelling of a bare HL7 namespace)
 * or a bare namespace id; then a deprecated alias; else the system as sent.
 */
export function resolveSystem(
  system: string,
  policy: IdentityPolicy = DEFAULT_IDENTITY_POLICY,
): ResolvedAuthority {
  const s = system.trim();
  const auths = policy.authorities ?? [];
  const lower = s.toLowerCase();
  const oid = lower.startsWith('urn:oid:') ? s.slice('urn:oid:'.length) : undefined;
  const ns = lower.startsWith(NAMESPACE_SYSTEM_PREFIX) ? s.slice(NAMESPACE_SYSTEM_PREFIX.length) : undefined;
  const hit =
    bySystem(auths, s) ??
    byUniversalId(auths, oid ?? s) ??
    (ns !== undefined ? byNamespace(auths, ns) : URI_LIKE.test(s) ? undefined : byNamespace(auths, s));
  if (hit) return { system: hit.system, authority: hit };
  return { system: alias(policy, s) ?? s };
}

/** Canonical system for a FHIR Identifier.system (see resolveSystem). */
export function canonicalSystem(system: string, policy: IdentityPolicy = DEFAULT_IDENTITY_POLICY): string {
  return resolveSystem(system, policy).system;
}

/**
 * Whether a (canonical) identifier system belongs to an authority the site
 * has registered: an `authorities` system, a deprecated alias target or an
 * enterprise system. The rest are "unregistered authorities": accepted, with
 * their deterministic system, and listed by the analytics data-quality view
 * and `hub status` so that an operator registers them.
 */
export function isRegisteredSystem(
  system: string,
  policy: IdentityPolicy = DEFAULT_IDENTITY_POLICY,
): boolean {
  const k = fold(system);
  return (
    (policy.authorities ?? []).some((a) => fold(a.system) === k) ||
    Object.values(policy.authorityAliases).some((to) => fold(to) === k) ||
    policy.enterpriseSystems.some((e) => fold(e) === k)
  );
}

/** The identifier policy picks as the enterprise identity, if any. */
export function enterpriseIdentifier(
  identifiers: readonly Identifier[],
  policy: IdentityPolicy = DEFAULT_IDENTITY_POLICY,
): Identifier | undefined {
  const usable = identifiers.filter((i) => i.value.trim() !== '');
  for (const sys of policy.enterpriseSystems) {
    const want = canonicalSystem(sys, policy);
    const hit = usable.find((i) => canonicalSystem(i.system, policy) === want);
    if (hit) return hit;
  }
  return usable.find((i) => i.type === 'MR') ?? usable[0];
}

/** Key for one identifier: stable across adapters, free of the identifier's value. */
export function patientKeyFor(
  identifier: Identifier,
  policy: IdentityPolicy = DEFAULT_IDENTITY_POLICY,
): string {
  const system = canonicalSystem(identifier.system, policy);
  return `pat-${nameUuid(`${system}|${identifier.value.trim()}`, PATIENT_KEY_NAMESPACE)}`;
}

/** The enterprise patient id for a set of identifiers, or undefined when there is none. */
export function enterprisePatientId(
  identifiers: readonly Identifier[],
  policy: IdentityPolicy = DEFAULT_IDENTITY_POLICY,
): string | undefined {
  const id = enterpriseIdentifier(identifiers, policy);
  return id ? patientKeyFor(id, policy) : undefined;
}

/** The deprecated identity variables, replaced by the site configuration (docs/site-configuration.md). */
export const DEPRECATED_IDENTITY_ENV = ['HUB_AUTHORITY_ALIASES', 'HUB_ENTERPRISE_ID_SYSTEMS'] as const;

export interface IdentityEnv {
  HUB_ENTERPRISE_ID_SYSTEMS?: string | undefined;
  HUB_AUTHORITY_ALIASES?: string | undefined;
}

/** Which deprecated identity variables are set, for main.ts to warn about once at start. */
export function deprecatedIdentityVariables(env: IdentityEnv): string[] {
  return DEPRECATED_IDENTITY_ENV.filter((k) => (env[k] ?? '').trim() !== '');
}

/** The warning a main.ts logs once at start when deprecated identity variables are set; undefined otherwise. */
export function identityEnvDeprecation(env: IdentityEnv): string | undefined {
  const set = deprecatedIdentityVariables(env);
  if (set.length === 0) return undefined;
  return `${set.join(' and ')} ${set.length > 1 ? 'are' : 'is'} deprecated and will be removed in the next release: move ${set.length > 1 ? 'them' : 'it'} to enterpriseSystems / authorities in the site configuration (HUB_SITE_CONFIG; docs/site-configuration.md)`;
}

/**
 * Reads the deprecated policy variables:
 * HUB_ENTERPRISE_ID_SYSTEMS="urn:oid:1.2.3.4,http://hospital.example/mrn"
 * HUB_AUTHORITY_ALIASES="HOSP=urn:oid:1.2.3.4,LAB=urn:oid:1.2.3.5"
 * Kept for one release; identityPolicyFromSite merges them in. A malformed
 * alias list is HUB_CONFIG_INVALID here, so that no caller wraps it by hand.
 */
export function identityPolicyFromEnv(env: IdentityEnv): IdentityPolicy {
  const list = (s: string | undefined) =>
    (s ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const authorityAliases: Record<string, string> = {};
  for (const pair of list(env.HUB_AUTHORITY_ALIASES)) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) {
      throw new HubError(
        'HUB_CONFIG_INVALID',
        'HUB_AUTHORITY_ALIASES is malformed: expected NAME=system,... (an entry has no "=")',
      );
    }
    authorityAliases[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return { enterpriseSystems: list(env.HUB_ENTERPRISE_ID_SYSTEMS), authorityAliases };
}

/**
 * The identity policy of a site configuration, for a service's main.ts. The
 * deprecated HUB_ENTERPRISE_ID_SYSTEMS / HUB_AUTHORITY_ALIASES still work for
 * one release and are merged in: their enterprise systems come after the
 * file's, and their aliases are consulted only when no registered authority
 * matches (the file wins). A malformed alias list is HUB_CONFIG_INVALID
 * (thrown by identityPolicyFromEnv).
 */
export function identityPolicyFromSite(
  site: Pick<SiteConfig, 'authorities' | 'enterpriseSystems'>,
  env: IdentityEnv = {},
): IdentityPolicy {
  const legacy = identityPolicyFromEnv(env);
  const enterpriseSystems = [...site.enterpriseSystems];
  for (const e of legacy.enterpriseSystems) {
    if (!enterpriseSystems.some((x) => fold(x) === fold(e))) enterpriseSystems.push(e);
  }
  return {
    enterpriseSystems,
    authorityAliases: legacy.authorityAliases,
    authorities: site.authorities.map((a) => ({ ...a })),
  };
}
