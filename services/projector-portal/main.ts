// Entry point: config, connections and signals are handled by the shared
// projector composition root, identically for every projector.
import { runProjectorMain } from '../../libs/projections/main.js';
import { buildPortalProjector } from './app.js';

await runProjectorMain({
  name: 'projector-portal',
  defaultPort: 8097,
  defaultSchema: 'portal',
  build: (deps, cfg) => buildPortalProjector(deps, cfg),
});
