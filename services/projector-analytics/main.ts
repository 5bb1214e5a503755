// Entry point: config, connections and signals are handled by the shared
// projector composition root, identically for every projector.
import { z } from '../../libs/config/index.js';
import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import { runProjectorMain } from '../../libs/projections/main.js';
import { buildAnalyticsProjector } from './app.js';

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
  },
  build: (deps, cfg, env) =>
    buildAnalyticsProjector(deps, {
      ...cfg,
      deadLetterTopics: env.DEAD_LETTER_TOPICS.split(',')
        .map((t) => t.trim())
        .filter(Boolean)
        .map(cfg.topicFor),
    }),
});
