// Entry point: config, connections and signals are handled by the shared
// projector composition root, identically for every projector.
import { runProjectorMain } from '../../libs/projections/main.js';
import { buildBillingProjector } from './app.js';

await runProjectorMain({
  name: 'projector-billing',
  defaultPort: 8095,
  defaultSchema: 'billing',
  build: (deps, cfg) => buildBillingProjector(deps, cfg),
});
