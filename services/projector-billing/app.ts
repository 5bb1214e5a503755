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
 * chargemaster (billing schema). Its port serves no account: the query API
 * serves them (GET /billing/accounts, /billing/accounts/{encounterId}/charges,
 * /billing/worklist) with `system/billing.read` and an audit record.
 */
export function buildBillingProjector(deps: ProjectorDeps, cfg: BillingConfig): ProjectorService {
  return buildProjectorService(
    deps,
    cfg,
    billingProjection(clinicalTopics(cfg.topicFor)),
    BILLING_VERSION_HOOKS,
  );
}
