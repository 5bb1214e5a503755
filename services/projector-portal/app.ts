import {
  buildProjectorService,
  type ProjectorConfig,
  type ProjectorDeps,
  type ProjectorService,
} from '../../libs/projections/service.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { portalProjection } from '../../libs/read-models/portal/model.js';

export interface PortalConfig extends ProjectorConfig {
  /** Names the clinical topics (catalog name → actual name, e.g. with a suffix). */
  topicFor?: (catalogName: string) => string;
}

/**
 * projector-portal: clinical topics → a patient's own record as FHIR
 * resources (portal schema). Its port serves no record: the query API
 * serves it (GET /fhir/Patient/{id}/$everything and the FHIR searches),
 * with a token, scopes and an audit record for every read.
 */
export function buildPortalProjector(deps: ProjectorDeps, cfg: PortalConfig): ProjectorService {
  return buildProjectorService(deps, cfg, portalProjection(clinicalTopics(cfg.topicFor)));
}
