import {
  awaitCommand,
  listReview,
  requestDecision,
  type CommandOutcome,
  type DecisionRequest,
  type ReviewItem,
} from '../../../libs/identity/store.js';
import type { ConsoleContext } from '../context.js';
import { notThereYet } from '../outcomes/query.js';

/**
 * What the identity review page reads and requests: the master patient
 * index's worklist, and a steward's decision as a command the
 * identity-matcher publishes (it is the single writer of
 * clinical.identity.v1, as for the API and `hub identity`).
 */
export interface StewardStore {
  /** Null while the index has no tables (the identity-matcher or the API creates them at start). */
  review(limit: number): Promise<ReviewItem[] | null>;
  /** Records the command, then waits up to `waitMs` for the matcher to handle it. */
  decide(req: DecisionRequest, waitMs: number): Promise<{ commandId: string; outcome: CommandOutcome }>;
}

/** The store over the console's database connection and IDENTITY_SCHEMA. */
export function stewardStoreOf(ctx: ConsoleContext): StewardStore {
  const { db } = ctx;
  const schema = ctx.settings.identitySchema;
  return {
    review: async (limit) => {
      try {
        return await listReview(db, schema, { limit });
      } catch (err) {
        if (notThereYet(err)) return null;
        throw err;
      }
    },
    decide: async (req, waitMs) => {
      const { commandId } = await requestDecision(db, schema, req);
      // Polled outside a transaction: the matcher's commit must become visible.
      return { commandId, outcome: await awaitCommand(db, schema, commandId, { timeoutMs: waitMs }) };
    },
  };
}
