// Entry point: config, connections and signals are handled by the shared
// projector composition root, identically for every projector.
import { z } from '../../libs/config/index.js';
import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import { isRegisteredSystem } from '../../libs/identity/index.js';
import { dlqTopicFor } from '../../libs/kafka/dlq.js';
import { runProjectorMain } from '../../libs/projections/main.js';
import { loadSite, siteEnv } from '../../libs/service/site.js';
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
        [
          INGEST_TOPICS.hl7Dlq,
          ...[
            'adapter-fhir',
            'patient-directory',
            'projector-billing',
            'projector-portal',
            'projector-analytics',
          ].map((c) => dlqTopicFor(c)),
        ].join(','),
      ),
    /**
     * The adapters' site configuration: its authorities are not listed as
     * unregistered; its defaultTimeZone is the zone days are counted in.
     */
    ...siteEnv,
  },
  build: (deps, cfg, env) => {
    const { site, policy } = loadSite(env, deps.logger);
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
