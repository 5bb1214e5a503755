import {
  buildProjectorService,
  type ProjectorConfig,
  type ProjectorDeps,
  type ProjectorService,
} from '../../libs/projections/service.js';
import { operatorRoutes } from '../../libs/http/operator.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import type { IsRegistered } from '../../libs/read-models/analytics/authorities.js';
import { ANALYTICS_VERSION_HOOKS, analyticsProjection } from '../../libs/read-models/analytics/model.js';
import { ANALYTICS_VIEWS } from '../../libs/read-models/analytics/views.js';
import { createDeadLetterTally } from './dead-letters.js';
import { checkReportingTimeZone, writeReportingTimeZone } from './reporting-zone.js';

export interface AnalyticsConfig extends ProjectorConfig {
  topicFor?: (catalogName: string) => string;
  /** Dead-letter topics whose records are counted in v_rejected_input (missing ones are skipped). */
  deadLetterTopics?: readonly string[];
  /**
   * Identifier systems the site configuration registers (libs/identity
   * isRegisteredSystem); the rest are listed in v_unregistered_authorities.
   * Default: none registered.
   */
  isRegistered?: IsRegistered;
  /**
   * IANA zone the views count days in (reportingTimeZone: the site
   * configuration's defaultTimeZone). Default UTC.
   */
  reportingTimeZone?: string;
}

/**
 * projector-analytics: clinical topics → facts and documented SQL views
 * (analytics schema) for analysts using the read-only role hub_analyst,
 * plus a tally of dead-lettered input. GET /views lists the views (operator
 * token only; the views themselves are read in SQL or through the API).
 */
export function buildAnalyticsProjector(deps: ProjectorDeps, cfg: AnalyticsConfig): ProjectorService {
  const svc = buildProjectorService(
    deps,
    cfg,
    analyticsProjection(clinicalTopics(cfg.topicFor), cfg.isRegistered),
    ANALYTICS_VERSION_HOOKS,
  );
  const tally = createDeadLetterTally({
    db: deps.db,
    kafka: deps.kafka,
    stable: cfg.stableSchema,
    topics: cfg.deadLetterTopics ?? [],
    groupId: `${cfg.groupPrefix ?? 'hub.projection'}.analytics-dead-letters.${cfg.stableSchema}`,
    logger: deps.logger,
  });
  void svc.http.register(operatorRoutes, {
    verifier: deps.operatorVerifier ?? null,
    routes: (scope) =>
      scope.get('/views', () =>
        ANALYTICS_VIEWS.map((v) => ({ view: `${cfg.stableSchema}.${v.name}`, doc: v.doc })),
      ),
  });
  return {
    ...svc,
    async start() {
      const zone = cfg.reportingTimeZone ?? 'UTC';
      await checkReportingTimeZone(deps.db, zone);
      await svc.start();
      await writeReportingTimeZone(deps.db, cfg.stableSchema, zone);
      deps.logger.info({ reportingTimeZone: zone }, 'analytics days are counted in the reporting time zone');
      await tally.start();
    },
    async stop() {
      // The projection first: the tally's disconnect can wait out a whole
      // fetch long-poll (seconds), during which the projection would go on
      // applying batches after a SIGTERM.
      await svc.stop();
      await tally.stop();
    },
  };
}
