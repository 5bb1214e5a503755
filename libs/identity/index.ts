import type { Identifier } from '../events/index.js';
import { nameUuid } from '../events/name-uuid.js';

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
export interface IdentityPolicy {
  /**
   * Canonical identifier systems whose value is the enterprise identity, in
   * priority order. When none is present, the first identifier of type MR,
   * then the first identifier, is used (and the message is still accepted).
   */
  enterpriseSystems: readonly string[];
  /**
   * Spellings of one assigning authority → its canonical system URI. Keys are
   * matched case-insensitively against HL7 CX.4 namespace ids, HL7 universal
   * ids and FHIR Identifier.system, so `HOSP` over HL7 and
   * `urn:oid:1.2.3.4` over FHIR can be declared the same authority.
   */
  authorityAliases: Readonly<Record<string, string>>;
}

export const DEFAULT_IDENTITY_POLICY: IdentityPolicy = { enterpriseSystems: [], authorityAliases: {} };

// Changing this namespace changes every patient key: never do it on a live log.
const PATIENT_KEY_NAMESPACE = '0b9f6a3e-5d1c-4f7e-8a2b-6c4d3e2f1a90';

function alias(policy: IdentityPolicy, s: string): string | undefined {
  const k = s.trim().toLowerCase();
  for (const [from, to] of Object.entries(policy.authorityAliases)) {
    if (from.trim().toLowerCase() === k) return to;
  }
  return undefined;
}

/** Canonical system for a FHIR Identifier.system (or any URI-ish system string). */
export function canonicalSystem(system: string, policy: IdentityPolicy = DEFAULT_IDENTITY_POLICY): string {
  const s = system.trim();
  return alias(policy, s) ?? s;
}

/**
 * Canonical system for an HL7 assigning authority (HD: namespace id,
 * universal id, universal id type). An alias wins; an ISO OID becomes
 * `urn:oid:`; a URI stays as it is; a bare namespace becomes
 * `urn:hl7:authority:<namespace>` so it cannot collide with a URI.
 */
export function systemForHl7Authority(
  hd: {
    namespaceId?: string | undefined;
    universalId?: string | undefined;
    universalIdType?: string | undefined;
  },
  policy: IdentityPolicy = DEFAULT_IDENTITY_POLICY,
): string {
  const ns = hd.namespaceId?.trim() ?? '';
  const uid = hd.universalId?.trim() ?? '';
  const type = hd.universalIdType?.trim().toUpperCase() ?? '';
  const viaAlias = (ns && alias(policy, ns)) || (uid && alias(policy, uid));
  if (viaAlias) return viaAlias;
  if (uid && type === 'ISO') return `urn:oid:${uid}`;
  if (uid && (type === 'URI' || /^[a-z][a-z0-9+.-]*:/i.test(uid))) return uid;
  if (ns) return `urn:hl7:authority:${ns}`;
  if (uid) return `urn:hl7:authority:${uid}`;
  return 'urn:hl7:authority:unknown';
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

/**
 * Reads the policy from the environment, for a service's main.ts:
 * HUB_ENTERPRISE_ID_SYSTEMS="urn:oid:1.2.3.4,http://hospital.example/mrn"
 * HUB_AUTHORITY_ALIASES="HOSP=urn:oid:1.2.3.4,LAB=urn:oid:1.2.3.5"
 */
export function identityPolicyFromEnv(env: {
  HUB_ENTERPRISE_ID_SYSTEMS?: string | undefined;
  HUB_AUTHORITY_ALIASES?: string | undefined;
}): IdentityPolicy {
  const list = (s: string | undefined) =>
    (s ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const authorityAliases: Record<string, string> = {};
  for (const pair of list(env.HUB_AUTHORITY_ALIASES)) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) {
      throw new Error(`HUB_AUTHORITY_ALIASES: expected NAME=system, got an entry without "="`);
    }
    authorityAliases[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return { enterpriseSystems: list(env.HUB_ENTERPRISE_ID_SYSTEMS), authorityAliases };
}
