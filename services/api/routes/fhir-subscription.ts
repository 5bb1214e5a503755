import { OperationOutcomeError, validateResource } from '@medplum/core';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import {
  requestedState,
  statusBundle,
  subscriptionFromFhir,
  subscriptionToFhir,
} from '../../../libs/delivery/fhir.js';
import type { RestHookChannel, Subscription, SubscriptionInput } from '../../../libs/delivery/model.js';
import {
  createSubscription,
  deleteSubscription,
  deliveryStatus,
  getSubscription,
  listSubscriptions,
  setSubscriptionState,
  updateSubscription,
} from '../../../libs/delivery/store.js';
import { HubError } from '../../../libs/errors/index.js';
import { loadFhirDefinitions, parseJsonBody } from '../../../libs/fhir/validate.js';
import { FHIR_JSON, fhirErrorHandler } from '../../../libs/http/errors.js';
import { fhirErrors } from '../schemas.js';
import {
  edgeOf,
  found,
  notFound,
  subscriptionIdParams,
  subscriptionSecurity,
  type Edge,
  type SubscriptionRoutesOptions,
} from './subscriptions.js';

/**
 * FHIR R4 `Subscription` with the Subscriptions R5 Backport IG's R4 profile
 * (backport-subscription): create, read, update, delete, search and
 * `$status`, over the same store as the hub's /subscriptions resource. Only
 * rest-hook subscriptions are FHIR subscriptions: the others are not found
 * here (they are hub resources, /subscriptions). The mapping, the topics and
 * the filters are libs/delivery/fhir.ts's; scopes and audit as
 * subscriptions.ts. Errors are OperationOutcomes.
 *
 * A create without a bearer header or an HMAC secret gets a generated HMAC
 * secret, shown once in the create's answer (the hub extension
 * subscription-hmac-secret); afterwards every secret reads `***`, and an
 * update that sends `***` back keeps the stored one.
 */
export interface FhirSubscriptionRoutesOptions extends SubscriptionRoutesOptions {
  /** The API's public base (PUBLIC_BASE_URL): Bundle fullUrls and references are `<base>/fhir/...`. */
  baseUrl: (req: FastifyRequest) => string;
}

/** The top-level elements of an R4 Subscription: the body parameters the security hook lets through. */
const SUBSCRIPTION_ELEMENTS = [
  'resourceType',
  'id',
  'meta',
  'implicitRules',
  'language',
  'text',
  'contained',
  'extension',
  'modifierExtension',
  'status',
  '_status',
  'contact',
  'end',
  '_end',
  'reason',
  '_reason',
  'criteria',
  '_criteria',
  'error',
  '_error',
  'channel',
];
/** A Subscription, Bundle or Parameters as built by libs/delivery/fhir.ts, written whole. */
const resourceSchema = { type: 'object', required: ['resourceType'], additionalProperties: true } as const;

const subscriptionBody = {
  type: 'object',
  properties: Object.fromEntries(SUBSCRIPTION_ELEMENTS.map((k) => [k, {}])),
} as const;

/** Base R4 structure (types, cardinality, unknown elements), before the profile's rules. */
function checkR4(body: unknown): void {
  loadFhirDefinitions();
  try {
    validateResource(body as Resource);
  } catch (err) {
    // Whatever else the validator trips on is still the body's fault, never a 500.
    if (!(err instanceof OperationOutcomeError))
      throw new HubError('HUB_INPUT_INVALID', 'not a valid FHIR R4 Subscription');
    const issue = err.outcome.issue?.find((i) => i.severity === 'error' || i.severity === 'fatal');
    // Medplum's details name the rule and the element, not the value (libs/fhir/validate.ts).
    const where = issue?.expression?.[0] ?? 'Subscription';
    throw new HubError(
      'HUB_INPUT_INVALID',
      `not a valid FHIR R4 Subscription at ${where}: ${issue?.details?.text ?? 'invalid'}`,
    );
  }
}

function parseFhirJson(
  _req: FastifyRequest,
  body: Buffer,
  done: (err: Error | null, body?: unknown) => void,
): void {
  const r = parseJsonBody(body);
  if (r.ok) return done(null, r.value);
  done(new HubError('HUB_INPUT_INVALID', r.issues[0]?.diagnostics ?? 'the body is not valid JSON'));
}

const isRestHook = (s: Subscription | null): s is Subscription & { channel: RestHookChannel } =>
  s !== null && s.channel.type === 'rest-hook';

type ById = { Params: { id: string } };
const params = subscriptionIdParams;
const tags = ['fhir'];

interface FhirEdge extends Edge {
  fhirBase: (req: FastifyRequest) => string;
}

const fhir = (reply: FastifyReply, status: number, body: unknown) =>
  reply.code(status).type(FHIR_JSON).send(body);

/** A rest-hook subscription, or 404: the other channels are not FHIR subscriptions. */
async function restHook(e: Edge, id: string) {
  const s = await getSubscription(e.db, e.schema, id);
  if (!isRestHook(s)) throw notFound();
  return s;
}

/** The state asked for (Subscription.status), where it differs from the stored one. */
async function applyState(e: Edge, k: Knex, sub: Subscription, body: unknown): Promise<Subscription> {
  const state = requestedState(body);
  return state === sub.state ? sub : found(await setSubscriptionState(k, e.schema, sub.id, state, e.now()));
}

function writeRoutes(app: FastifyInstance, e: FhirEdge): void {
  app.post<{ Body: unknown }>(
    '/Subscription',
    {
      schema: {
        tags,
        summary: 'Create a rest-hook Subscription (backport-subscription)',
        body: subscriptionBody,
        response: { 201: resourceSchema, ...fhirErrors },
      },
      config: { security: subscriptionSecurity('create', 'create') },
    },
    async (req, reply) => {
      checkR4(req.body);
      const secret = e.newSecret();
      const input: SubscriptionInput = subscriptionFromFhir(req.body, { hmacSecret: secret });
      // One transaction: a subscription created `off` never runs, not even for a moment.
      const sub = await e.db.transaction(async (trx) => {
        const created = await createSubscription(trx, e.schema, input, { id: e.newId(), now: e.now() });
        return applyState(e, trx, created, req.body);
      });
      const c = input.channel;
      const generated = c.type === 'rest-hook' && c.auth.type === 'hmac' && c.auth.secret === secret;
      reply.header('location', `${e.fhirBase(req)}/Subscription/${sub.id}`);
      return fhir(reply, 201, subscriptionToFhir(sub, undefined, { revealSecret: generated }));
    },
  );
  app.put<ById & { Body: unknown }>(
    '/Subscription/:id',
    {
      schema: {
        tags,
        summary: 'Update a Subscription (*** keeps a stored secret)',
        params,
        body: subscriptionBody,
        response: { 200: resourceSchema, ...fhirErrors },
      },
      config: { security: subscriptionSecurity('update', 'update') },
    },
    async (req, reply) => {
      checkR4(req.body);
      const bodyId = (req.body as { id?: unknown }).id;
      if (bodyId !== undefined && bodyId !== req.params.id) {
        throw new HubError('HUB_INPUT_INVALID', 'Subscription.id does not match the id in the URL');
      }
      const prev = await restHook(e, req.params.id);
      const input = subscriptionFromFhir(req.body, { existing: prev.channel.auth });
      const sub = await e.db.transaction(async (trx) => {
        const updated = found(await updateSubscription(trx, e.schema, prev.id, input, e.now()));
        return applyState(e, trx, updated, req.body);
      });
      return fhir(reply, 200, subscriptionToFhir(sub));
    },
  );
  app.delete<ById>(
    '/Subscription/:id',
    {
      schema: { tags, summary: 'Delete a Subscription', params, response: fhirErrors },
      config: { security: subscriptionSecurity('delete', 'delete') },
    },
    async (req, reply) => {
      await restHook(e, req.params.id);
      if (!(await deleteSubscription(e.db, e.schema, req.params.id))) throw notFound();
      return reply.code(204).send();
    },
  );
}

function readRoutes(app: FastifyInstance, e: FhirEdge): void {
  app.get<ById>(
    '/Subscription/:id',
    {
      schema: {
        tags,
        summary: 'Read a Subscription (secrets redacted)',
        params,
        response: { 200: resourceSchema, ...fhirErrors },
      },
      config: { security: subscriptionSecurity('read', 'read') },
    },
    async (req, reply) => {
      const sub = await restHook(e, req.params.id);
      const status = (await deliveryStatus(e.db, e.schema, sub.id)) ?? undefined;
      return fhir(reply, 200, subscriptionToFhir(sub, status));
    },
  );
  app.get(
    '/Subscription',
    {
      schema: {
        tags,
        summary: 'Search Subscriptions (every rest-hook subscription)',
        response: { 200: resourceSchema, ...fhirErrors },
      },
      config: { security: subscriptionSecurity('search', 'search-type') },
    },
    async (req, reply) => {
      const base = e.fhirBase(req);
      const subs = (await listSubscriptions(e.db, e.schema)).filter(isRestHook);
      const bundle: Bundle = {
        resourceType: 'Bundle',
        type: 'searchset',
        total: subs.length,
        link: [{ relation: 'self', url: `${base}/Subscription` }],
        entry: subs.map((s) => ({
          fullUrl: `${base}/Subscription/${s.id}`,
          resource: subscriptionToFhir(s),
          search: { mode: 'match' },
        })),
      };
      return fhir(reply, 200, bundle);
    },
  );
  app.get<ById>(
    '/Subscription/:id/$status',
    {
      schema: {
        tags,
        summary: 'Subscription status (backport $status: a searchset with the status Parameters)',
        params,
        response: { 200: resourceSchema, ...fhirErrors },
      },
      config: { security: subscriptionSecurity('read', 'operation') },
    },
    async (req, reply) => {
      const sub = await restHook(e, req.params.id);
      const status = found(await deliveryStatus(e.db, e.schema, sub.id));
      return fhir(reply, 200, statusBundle(sub, status, { fhirBase: e.fhirBase(req), at: e.now() }));
    },
  );
}

export const fhirSubscriptionRoutes: FastifyPluginAsync<FhirSubscriptionRoutesOptions> = (app, o) => {
  app.setErrorHandler(fhirErrorHandler);
  app.addContentTypeParser(
    ['application/fhir+json', 'application/json'],
    { parseAs: 'buffer' },
    parseFhirJson,
  );
  const e: FhirEdge = { ...edgeOf(o), fhirBase: (req) => `${o.baseUrl(req)}/fhir` };
  writeRoutes(app, e);
  readRoutes(app, e);
  // Fastify awaits plugins; this one registers its routes synchronously.
  return Promise.resolve();
};
