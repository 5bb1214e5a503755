// Entry point: config, connections and signals are handled by the shared
// projector composition root, identically for every projector.
import { z } from '../../libs/config/index.js';
import { runProjectorMain } from '../../libs/projections/main.js';
import { buildPatientDirectory } from './app.js';

await runProjectorMain({
  name: 'patient-directory',
  defaultPort: 8091,
  defaultSchema: 'patient_directory',
  env: {
    /** Deprecated: CONSUMER_GROUP_PREFIX, as for the other projectors (the version schema is appended). */
    CONSUMER_GROUP: z.string().optional(),
  },
  build: (deps, cfg, env) => {
    if (env.CONSUMER_GROUP) {
      deps.logger.warn('CONSUMER_GROUP is deprecated: use CONSUMER_GROUP_PREFIX, as the other projectors do');
    }
    const prefix = cfg.groupPrefix ?? env.CONSUMER_GROUP;
    return buildPatientDirectory(deps, { ...cfg, ...(prefix ? { groupPrefix: prefix } : {}) });
  },
});
