import type { Bundle, Resource } from '@medplum/fhirtypes';
import { HubError } from '../../libs/errors/index.js';
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

/** A patient's visible record as a FHIR searchset Bundle, read from the stable schema. */
export async function patientRecord(deps: Pick<ProjectorDeps, 'db'>, stable: string, patientId: string) {
  const rows: { resource: Resource }[] = await deps.db
    .withSchema(stable)
    .from('patient_record')
    .where({ patient_id: patientId })
    .orderBy([{ column: 'resource_type' }, { column: 'resource_id' }])
    .select('resource');
  if (rows.length === 0) throw new HubError('HUB_NOT_FOUND', 'no such patient');
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    total: rows.length,
    entry: rows.map((r) => ({ resource: r.resource })),
  };
  return bundle;
}

/**
 * projector-portal: clinical topics → a patient's own record as FHIR
 * resources (portal schema), served at GET /patients/:id/record.
 */
export function buildPortalProjector(deps: ProjectorDeps, cfg: PortalConfig): ProjectorService {
  const svc = buildProjectorService(deps, cfg, portalProjection(clinicalTopics(cfg.topicFor)));
  svc.http.get<{ Params: { id: string } }>(
    '/patients/:id/record',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } },
      },
    },
    async (req) => patientRecord(deps, cfg.stableSchema, req.params.id),
  );
  return svc;
}
