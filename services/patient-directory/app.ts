import {
  buildProjectorService,
  type ProjectorConfig,
  type ProjectorDeps,
  type ProjectorService,
} from '../../libs/projections/service.js';
import { adoptUnversionedSchema } from './legacy.js';
import { findPatient, patientDirectoryProjection, PATIENT_TOPIC } from './projection.js';
import { patientRoutes } from './routes/patients.js';

export type PatientDirectory = ProjectorService;

export interface PatientDirectoryConfig extends ProjectorConfig {
  /** Names the patient topic (catalog name → actual name, e.g. with a suffix). */
  topicFor?: (catalogName: string) => string;
}

/**
 * patient-directory, the walking skeleton's consumer: clinical.patient →
 * one row per patient (patient_directory schema), served at GET
 * /patients/:id. A projector like the others: versioned schema, /health,
 * /ready, /metrics, /version.
 */
export function buildPatientDirectory(deps: ProjectorDeps, cfg: PatientDirectoryConfig): PatientDirectory {
  const topic = (cfg.topicFor ?? ((n: string) => n))(PATIENT_TOPIC);
  const svc = buildProjectorService(deps, cfg, patientDirectoryProjection(topic));
  void svc.http.register(patientRoutes, { find: (id) => findPatient(deps.db, cfg.stableSchema, id) });
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
