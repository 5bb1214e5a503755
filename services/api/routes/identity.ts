import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import type { AuditInput } from '../../../libs/audit/event.js';
import type { IdentityInteraction, Principal } from '../../../libs/auth/scopes.js';
import { toDbError } from '../../../libs/db/index.js';
import { HubError } from '../../../libs/errors/index.js';
import { jsonErrorHandler } from '../../../libs/http/errors.js';
import {
  awaitCommand,
  explainPatient,
  listReview,
  requestDecision,
  type CommandKind,
  type CommandOutcome,
  type DecisionRequest,
  type Explanation,
  type ReviewItem,
} from '../../../libs/identity/store.js';
import { isStorablePatientId } from '../patient-context.js';
import { jsonErrors, problemSchema } from '../schemas.js';
import type { RouteSecurity } from '../security.js';

/**
 * The master patient index's steward surfaces (issue 21): the review
 * worklist, one record's explanation, and the steward's decisions (link,
 * unlink, reject). The identity-matcher is the single writer of
 * clinical.identity.v1: a decision here is a command in the identity schema
 * (libs/identity/store.ts) that the matcher validates and publishes; the
 * route waits for it (`awaitMs`, 10 s) and answers 201 with the event id,
 * 202 while it is still pending, 409 HUB_CONFLICT with the matcher's reason
 * when it refused (unlinking records that are not linked, linking records an
 * EHR merged).
 *
 * Scopes: `user/` or `system/Identity.rs` (v1 `.read`) to read,
 * `Identity.c` (v1 `.write`) to decide; by name only (libs/auth/scopes.ts).
 * Every call is audited as an access to PHI: the worklist and a decision name
 * each record they show or change in an AuditEvent of its own (security.ts
 * `auditOthers`). Patient ids in paths are enterprise ids (opaque); names,
 * dates and MRNs appear in answers only, never in URLs, logs or errors.
 */
export interface IdentityStore {
  review(limit: number): Promise<ReviewItem[]>;
  explain(patientId: string): Promise<Explanation | null>;
  request(req: DecisionRequest): Promise<{ commandId: string }>;
  outcome(commandId: string, timeoutMs: number): Promise<CommandOutcome>;
}

export interface IdentityRoutesOptions {
  store: IdentityStore;
  /** How long a decision waits for the matcher before answering 202 (default 10 s). */
  awaitMs?: number;
}

/** A canceled statement (SQLSTATE 57014: the deadline) is the database being slow, like timedRead's. */
function storeError(err: unknown, timeoutMs: number): HubError {
  if ((err as { code?: unknown }).code === '57014')
    return new HubError('HUB_DB_UNAVAILABLE', `query exceeded ${timeoutMs} ms`, {
      cause: err,
      retriable: true,
    });
  return toDbError(err);
}

/** The identity schema's store for the API: every statement under the API's deadline. */
export function createIdentityStore(db: Knex, schema: string, timeoutMs: number): IdentityStore {
  const timed = async <T>(fn: (k: Knex) => Promise<T>): Promise<T> => {
    try {
      return await db.transaction(async (trx) => {
        await trx.raw(`select set_config('statement_timeout', ?, true)`, [String(timeoutMs)]);
        return fn(trx);
      });
    } catch (err) {
      throw storeError(err, timeoutMs);
    }
  };
  return {
    review: (limit) => timed((k) => listReview(k, schema, { limit })),
    explain: (id) => timed((k) => explainPatient(k, schema, id)),
    request: (req) => timed((k) => requestDecision(k, schema, req)),
    // Polls with short statements, outside one transaction: the matcher's commit must be visible.
    outcome: async (id, ms) => {
      try {
        return await awaitCommand(db, schema, id, { timeoutMs: ms });
      } catch (err) {
        throw storeError(err, timeoutMs);
      }
    },
  };
}

/** Who decided, as the decision event records it: the token's subject, and its client when another. */
export function decidedByOf(p: Principal | null): string {
  if (!p) throw new HubError('HUB_UNAUTHENTICATED', 'a bearer token is required');
  return p.subject === p.clientId ? p.subject : `${p.subject} (${p.clientId})`;
}

const patientIdOf = (v: unknown): string | null =>
  typeof v === 'string' && isStorablePatientId(v) ? v : null;

/** The access and audit of an identity route; `patientOf` names the record a request is about. */
function identitySecurity(
  interaction: IdentityInteraction,
  audit: AuditInput['interaction'],
  patientOf: (req: FastifyRequest) => string | null = () => null,
): RouteSecurity {
  return {
    interaction: audit,
    resourceType: 'Patient',
    patientOf,
    access: () => ({ kind: 'identity', interaction }),
  };
}

const str = { type: 'string' } as const;
const nstr = { type: ['string', 'null'] } as const;
const nnum = { type: ['number', 'null'] } as const;
const strArr = { type: 'array', items: str } as const;
const obj = (properties: Record<string, object>) => ({ type: 'object', properties }) as const;
const arr = (items: object) => ({ type: 'array', items }) as const;

const identifier = obj({ system: str, value: str, type: nstr });
/** What a steward sees of a record, declared element by element: nothing else of a record leaves. */
const display = obj({
  names: arr(obj({ family: nstr, given: strArr, prefix: nstr, suffix: nstr, use: nstr })),
  birthDate: nstr,
  sex: nstr,
  identifiers: arr(identifier),
  address: {
    type: ['object', 'null'],
    properties: {
      lines: strArr,
      city: nstr,
      state: nstr,
      postalCode: nstr,
      country: nstr,
      use: nstr,
      type: nstr,
    },
  },
  phone: nstr,
});
const evidence = arr(obj({ field: str, level: str, weight: { type: 'number' } }));
const decisionCommon = {
  pairKey: str,
  patientId: str,
  otherPatientId: str,
  score: nnum,
  weightsVersion: nstr,
  evidence,
  rules: strArr,
  decidedBy: str,
  reason: nstr,
};
const pair = obj({ ...decisionCommon, state: str, basis: str, eventId: str, updatedAt: str });
const decision = obj({ ...decisionCommon, eventId: str, type: str, decidedAt: str });
const reviewItem = obj({ pair, record: display, otherRecord: display });
const explanation = obj({
  patientId: str,
  display,
  source: { type: ['object', 'null'], properties: { system: str, facility: nstr } },
  active: { type: 'boolean' },
  mergedInto: nstr,
  person: strArr,
  pairs: arr(pair),
  history: arr(decision),
});
const decisionAnswer = obj({
  status: str,
  kind: str,
  commandId: str,
  eventId: nstr,
  patientId: str,
  otherPatientId: str,
});

const tags = ['identity'];
const patientIdSchema = { type: 'string', minLength: 1, maxLength: 128 } as const;

function readRoutes(app: FastifyInstance, store: IdentityStore): void {
  app.get<{ Querystring: { _count: number } }>(
    '/review',
    {
      schema: {
        tags,
        summary: 'The review worklist: proposed pairs, both records side by side, highest score first',
        querystring: {
          type: 'object',
          properties: { _count: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
        },
        response: { 200: arr(reviewItem), ...jsonErrors },
      },
      config: { security: identitySecurity('search', 'search-type') },
    },
    async (req) => {
      const items = await store.review(req.query._count);
      // Each record shown is an access to that patient's data.
      req.auditOthers = items.flatMap((i) => [i.pair.patientId, i.pair.otherPatientId]);
      return items;
    },
  );
  app.get<{ Params: { id: string } }>(
    '/patients/:id/explain',
    {
      schema: {
        tags,
        summary:
          "One record: its demographics, the person it belongs to, its pairs and every decision's evidence",
        params: { type: 'object', required: ['id'], properties: { id: patientIdSchema } },
        response: { 200: explanation, ...jsonErrors },
      },
      config: {
        security: identitySecurity('read', 'read', (req) => patientIdOf((req.params as { id?: unknown }).id)),
      },
    },
    async (req) => {
      const e = await store.explain(req.params.id);
      if (!e) throw new HubError('HUB_NOT_FOUND', 'the master patient index has no such record');
      return e;
    },
  );
}

interface DecisionBody {
  patientId: string;
  otherPatientId: string;
  reason: string;
}

const decisionBody = {
  type: 'object',
  required: ['patientId', 'otherPatientId', 'reason'],
  properties: {
    patientId: patientIdSchema,
    otherPatientId: patientIdSchema,
    reason: { type: 'string', maxLength: 1000 },
  },
} as const;

const SUMMARY: Record<CommandKind, string> = {
  link: "Link two records as one person (the steward's decision, published by the identity-matcher)",
  unlink: 'Unlink two linked records: every read model splits them again',
  reject: 'Reject a proposed pair: the matcher never proposes or links it again',
};

/** The body's decision, checked beyond its schema; an error names the field, never a value. */
function requestOf(kind: CommandKind, body: DecisionBody, decidedBy: string): DecisionRequest {
  const reason = body.reason.trim();
  if (reason === '') throw new HubError('HUB_INPUT_INVALID', "reason: required, the steward's why");
  if (body.patientId === body.otherPatientId)
    throw new HubError('HUB_INPUT_INVALID', 'otherPatientId: must name another record than patientId');
  return { kind, patientId: body.patientId, otherPatientId: body.otherPatientId, decidedBy, reason };
}

async function decide(
  store: IdentityStore,
  awaitMs: number,
  kind: CommandKind,
  req: FastifyRequest<{ Body: DecisionBody }>,
  reply: FastifyReply,
) {
  req.auditOthers = [req.body.otherPatientId];
  const request = requestOf(kind, req.body, decidedByOf(req.principal));
  const { commandId } = await store.request(request);
  const o = await store.outcome(commandId, awaitMs);
  if (o.status === 'refused')
    throw new HubError('HUB_CONFLICT', o.error ?? 'the identity matcher refused the decision');
  const answer = {
    status: o.status,
    kind,
    commandId,
    eventId: o.eventId,
    patientId: request.patientId,
    otherPatientId: request.otherPatientId,
  };
  return reply
    .code(o.status === 'done' ? 201 : 202)
    .header('location', `/identity/patients/${encodeURIComponent(request.patientId)}/explain`)
    .send(answer);
}

function decisionRoutes(app: FastifyInstance, store: IdentityStore, awaitMs: number): void {
  for (const [path, kind] of [
    ['/links', 'link'],
    ['/unlinks', 'unlink'],
    ['/rejections', 'reject'],
  ] as const) {
    app.post<{ Body: DecisionBody }>(
      path,
      {
        schema: {
          tags,
          summary: SUMMARY[kind],
          body: decisionBody,
          response: { 201: decisionAnswer, 202: decisionAnswer, 409: problemSchema, ...jsonErrors },
        },
        config: {
          security: identitySecurity('create', 'create', (req) =>
            patientIdOf((req.body as { patientId?: unknown } | undefined)?.patientId),
          ),
        },
      },
      (req, reply) => decide(store, awaitMs, kind, req, reply),
    );
  }
}

export const identityRoutes: FastifyPluginAsync<IdentityRoutesOptions> = (app, o) => {
  app.setErrorHandler(jsonErrorHandler);
  readRoutes(app, o.store);
  decisionRoutes(app, o.store, o.awaitMs ?? 10_000);
  // Fastify awaits plugins; this one registers its routes synchronously.
  return Promise.resolve();
};
