import {
  buildProjectorService,
  type ProjectorConfig,
  type ProjectorDeps,
  type ProjectorService,
} from '../../libs/projections/service.js';
import { adoptUnversionedSchema } from './legacy.js';
import { DIRECTORY_TOPICS, patientDirectoryProjection } from './projection.js';

export type PatientDirectory = ProjectorService;

export interface PatientDirectoryConfig extends ProjectorConfig {
  /** Names the directory's topics (catalog name → actual name, e.g. with a suffix). */
  topicFor?: (catalogName: string) => string;
}

/**
 * patient-directory, the walking skeleton's consumer: clinical.patient →
 * one row per patient (patient_directory schema), a read model in Postgres
 * for downstream teams (their own role, in SQL). A projector like the
 * others: versioned schema, /health, /ready, /metrics, /version (operator
 * token). Its port serves no patient: every PHI read over HTTP goes through
 * the query API, scoped and audited.
 */
export function buildPatientDirectory(deps: ProjectorDeps, cfg: PatientDirectoryConfig): PatientDirectory {
  const topics = DIRECTORY_TOPICS.map(cfg.topicFor ?? ((n: string) => n));
  const svc = buildProjectorService(deps, cfg, patientDirectoryProjection(topics));
  return {
    ...svc,
    async start() {
      if (await adoptUnversionedSchema(deps.db, cfg.stableSchema)) {
        deps.logger.warn({ schema: cfg.stableSchema }, 'unversioned patient directory adopted as version 1');
      }
      await svc.start();
    },
  };
}
