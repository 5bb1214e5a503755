import { z } from '../config/index.js';
import {
  deprecatedIdentityVariables,
  identityEnvDeprecation,
  identityPolicyFromSite,
  type IdentityPolicy,
} from '../identity/index.js';
import { siteConfigFromEnv, type SiteConfig } from '../site-config/index.js';
import type { Logger } from '../telemetry/logger.js';

/** The site configuration's variables, read by every service that names patients or senders. */
export const siteEnv = {
  /** Path of the site configuration (JSON or YAML): sender time zones, assigning authorities, enterprise systems. */
  HUB_SITE_CONFIG: z.string().optional(),
  /** Deprecated (one release): use `enterpriseSystems` / `authorities` in HUB_SITE_CONFIG. */
  HUB_ENTERPRISE_ID_SYSTEMS: z.string().optional(),
  HUB_AUTHORITY_ALIASES: z.string().optional(),
};

export type SiteEnv = z.infer<z.ZodObject<typeof siteEnv>>;

/**
 * The site configuration and the identity policy from it, validated once at
 * start (HUB_CONFIG_INVALID listing every problem of the file; unset: no
 * registered authorities). Warns once when deprecated identity variables are set.
 */
export function loadSite(env: SiteEnv, logger: Logger): { site: SiteConfig; policy: IdentityPolicy } {
  const site = siteConfigFromEnv(env.HUB_SITE_CONFIG);
  const policy = identityPolicyFromSite(site, env);
  const deprecation = identityEnvDeprecation(env);
  if (deprecation) logger.warn({ deprecated: deprecatedIdentityVariables(env) }, deprecation);
  return { site, policy };
}
