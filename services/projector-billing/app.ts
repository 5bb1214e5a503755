import { HubError } from '../../libs/errors/index.js';
import {
  buildProjectorService,
  type ProjectorConfig,
  type ProjectorDeps,
  type ProjectorService,
} from '../../libs/projections/service.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { BILLING_VERSION_HOOKS, billingProjection } from '../../libs/read-models/billing/model.js';

export interface BillingConfig extends ProjectorConfig {
  topicFor?: (catalogName: string) => string;
}

/**
 * projector-billing: clinical topics → accounts, charge lines and the
 * chargemaster (billing schema), served at GET /accounts/:encounterId.
 */
export function buildBillingProjector(deps: ProjectorDeps, cfg: BillingConfig): ProjectorService {
  const svc = buildProjectorService(
    deps,
    cfg,
    billingProjection(clinicalTopics(cfg.topicFor)),
    BILLING_VERSION_HOOKS,
  );
  svc.http.get<{ Params: { id: string } }>(
    '/accounts/:id',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } },
      },
    },
    async (req) => {
      const account = (await deps.db
        .withSchema(cfg.stableSchema)
        .from('accounts')
        .where({ encounter_id: req.params.id })
        .first()) as Record<string, unknown> | undefined;
      if (!account) throw new HubError('HUB_NOT_FOUND', 'no such account');
      const charges = (await deps.db
        .withSchema(cfg.stableSchema)
        .from('charges')
        .where({ encounter_id: req.params.id })
        .orderBy('line_id')) as Record<string, unknown>[];
      return { account, charges };
    },
  );
  return svc;
}
