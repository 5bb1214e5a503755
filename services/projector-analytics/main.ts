// Entry point: config, connections and signals are handled by the shared
// projector composition root, identically for every projector.
import { z } from '../../libs/config/index.js';
import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import {
  deprecatedIdentityVariables,
  identityEnvDeprecation,
  identityPolicyFromSite,
  isRegisteredSystem,
} from '../../libs/identity/index.js';
import { runProjectorMain } from '../../libs/projections/main.js';
import { siteConfigFromEnv } from '../../libs/site-config/index.js';
import { buildAnalyticsProjector } from './app.js';
import { reportingTimeZone } from './reporting-zone.js';

await runProjectorMain({
  name: 'projector-analytics',
  defaultPort: 8096,
  defaultSchema: 'analytics',
  env: {
    /** Comma-separated dead-letter topics to count (catalog names; the topic suffix is applied). */
    DEAD_LETTER_TOPICS: z
      .string()
      .default(
        `${INGEST_TOPICS.hl7Dlq},hub.dlq.adapter-fhir,hub.dlq.patient-directory,hub.dlq.projector-billing,hub.dlq.projector-portal,hub.dlq.projector-analytics`,
      ),
    /**
     * The adapters' site configuration: its authorities are not listed as
     * unregistered; its defaultTimeZone is the zone days are counted in.
     */
    HUB_SITE_CONFIG: z.string().optional(),
    /** Deprecated (one release): use the site configuration. */
    HUB_ENTERPRISE_ID_SYSTEMS: z.string().optional(),
    HUB_AUTHORITY_ALIASES: z.string().optional(),
  },
  build: (deps, cfg, env) => {
    const deprecation = identityEnvDeprecation(env);
    if (deprecation) deps.logger.warn({ deprecated: deprecatedIdentityVariables(env) }, deprecation);
    const site = siteConfigFromEnv(env.HUB_SITE_CONFIG);
    const policy = identityPolicyFromSite(site, env);
    return buildAnalyticsProjector(deps, {
      ...cfg,
      isRegistered: (system) => isRegisteredSystem(system, policy),
      // Analysts' days are the site's local days (its defaultTimeZone; UTC when none).
      reportingTimeZone: reportingTimeZone(site),
      deadLetterTopics: env.DEAD_LETTER_TOPICS.split(',')
        .map((t) => t.trim())
        .filter(Boolean)
        .map(cfg.topicFor),
    });
  },
});
