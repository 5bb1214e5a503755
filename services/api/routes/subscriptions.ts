import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Knex } from 'knex';
import type { AuditInput } from '../../../libs/audit/event.js';
import type { SubscriptionInteraction } from '../../../libs/auth/scopes.js';
import { REDACTED } from '../../../libs/delivery/fhir.js';
import { generateSecret, parseSubscription } from '../../../libs/delivery/input.js';
import {
  redacted,
  type Channel,
  type Subscription,
  type SubscriptionInput,
} from '../../../libs/delivery/model.js';
import {
  createSubscription,
  deleteSubscription,
  deliveryStatus,
  getSubscription,
  listSubscriptions,
  requestReplay,
  setSubscriptionState,
  updateSubscription,
} from '../../../libs/delivery/store.js';
import { HubError } from '../../../libs/errors/index.js';
import { jsonErrorHandler } from '../../../libs/http/errors.js';
import { jsonErrors } from '../schemas.js';
import type { RouteSecurity } from '../security.js';

/**
 * Outbound subscriptions as the hub's own JSON resource (issue 20): every
 * channel (webhook, FHIR rest-hook, HL7 MLLP), stored in the delivery
 * schema that the delivery service reads (libs/delivery/store.ts). The FHIR
 * view of the rest-hook ones is fhir-subscription.ts.
 *
 * Scopes: `system/Subscription.rs` (v1 `.read`) to list and read,
 * `system/Subscription.c` / `.u` / `.d` (v1 `.write`) to create, change
 * (update, pause, resume, replay) and delete; never by a wildcard or a
 * person's scope (libs/auth/scopes.ts says why). Every call is audited
 * (AuditEvent, resource type Subscription, naming no patient). Errors are
 * `{code, message, retriable}`.
 *
 * Secrets (a webhook's or rest-hook's HMAC key, a rest-hook bearer token)
 * are never shown back, as `***`; a webhook or rest-hook created without
 * one gets a generated HMAC key (`whsec_` + base64 of 32 random bytes),
 * shown once, in the answer to that create. An update that sends `***`
 * back (or, for a webhook, no secret) keeps the stored secret.
 */
export interface SubscriptionRoutesOptions {
  /** The API's database handle and the delivery schema (DELIVERY_SCHEMA). */
  db: Knex;
  schema: string;
  /** The edge's clock and randomness; tests may fix them. */
  now?: () => Date;
  newId?: () => string;
  newSecret?: () => string;
}

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

/** Subscription ids are UUIDs (the store's key): anything else is refused by the schema, before a query. */
export const subscriptionIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: UUID } },
} as const;

/** The access and audit of a subscription route. */
export function subscriptionSecurity(
  interaction: SubscriptionInteraction,
  audit: AuditInput['interaction'],
): RouteSecurity {
  return {
    interaction: audit,
    resourceType: 'Subscription',
    // A subscription may filter on patients, but managing it is no access to a patient's record.
    namesPatient: false,
    access: () => ({ kind: 'subscription', interaction }),
  };
}

export const notFound = () => new HubError('HUB_NOT_FOUND', 'no such subscription');

/** The store's answer, or 404. */
export function found<T>(v: T | null): T {
  if (v === null) throw notFound();
  return v;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A stored secret kept for `***` sent back; one the caller left out generated. */
interface SecretChoice {
  channel: unknown;
  generated: string | null;
}

function chooseSecret(channel: unknown, prev: Channel | null, newSecret: () => string): SecretChoice {
  if (!isObject(channel)) return { channel, generated: null };
  const kept = (what: string) =>
    new HubError(
      'HUB_INPUT_INVALID',
      `channel.${what}: ${REDACTED} keeps a stored secret of the same channel type only`,
    );
  if (channel.type === 'webhook') {
    const old = prev?.type === 'webhook' ? prev.secret : undefined;
    if (channel.secret === REDACTED && !old) throw kept('secret');
    if (channel.secret === REDACTED || (channel.secret === undefined && old))
      return { channel: { ...channel, secret: old }, generated: null };
    if (channel.secret !== undefined) return { channel, generated: null };
    const generated = newSecret();
    return { channel: { ...channel, secret: generated }, generated };
  }
  if (channel.type === 'rest-hook') {
    const old = prev?.type === 'rest-hook' ? prev.auth : undefined;
    const auth = channel.auth;
    if (isObject(auth) && (auth.token === REDACTED || auth.secret === REDACTED)) {
      if (old?.type !== auth.type) throw kept('auth');
      return { channel: { ...channel, auth: old }, generated: null };
    }
    if (auth !== undefined) return { channel, generated: null };
    if (old) return { channel: { ...channel, auth: old }, generated: null };
    const generated = newSecret();
    return { channel: { ...channel, auth: { type: 'hmac', secret: generated } }, generated };
  }
  return { channel, generated: null };
}

/** The body as a SubscriptionInput, secrets resolved; a schema problem names its path, never a value. */
export function inputOf(
  body: unknown,
  prev: Subscription | null,
  newSecret: () => string,
): { input: SubscriptionInput; generated: string | null } {
  if (!isObject(body)) throw new HubError('HUB_INPUT_INVALID', 'the body must be a JSON object');
  const { channel, generated } = chooseSecret(body.channel, prev?.channel ?? null, newSecret);
  return { input: parseSubscription({ ...body, channel }), generated };
}

/** The stored subscription as shown, with a secret generated by this very request shown once. */
export function shownOnce(sub: Subscription, generated: string | null): Subscription {
  const shown = redacted(sub);
  if (!generated) return shown;
  const c = shown.channel;
  if (c.type === 'webhook') return { ...shown, channel: { ...c, secret: generated } };
  if (c.type === 'rest-hook')
    return { ...shown, channel: { ...c, auth: { type: 'hmac', secret: generated } } };
  return shown;
}

const anyObject = { type: 'object', additionalProperties: true } as const;
const inputBody = {
  type: 'object',
  required: ['name', 'channel'],
  properties: {
    name: { type: 'string' },
    criteria: anyObject,
    channel: anyObject,
    start: anyObject,
    retry: anyObject,
  },
} as const;
const tags = ['subscriptions'];
type ById = { Params: { id: string } };

/** What every route needs: the store's handle and the edge's clock and randomness. */
export interface Edge {
  db: Knex;
  schema: string;
  now: () => Date;
  newId: () => string;
  newSecret: () => string;
}

export function edgeOf(o: SubscriptionRoutesOptions): Edge {
  return {
    db: o.db,
    schema: o.schema,
    now: o.now ?? (() => new Date()),
    newId: o.newId ?? randomUUID,
    newSecret: o.newSecret ?? generateSecret,
  };
}

const one = async (e: Edge, id: string) => found(await getSubscription(e.db, e.schema, id));
const params = subscriptionIdParams;

function readRoutes(app: FastifyInstance, e: Edge): void {
  app.get(
    '',
    {
      schema: {
        tags,
        summary: 'List subscriptions (secrets redacted)',
        response: { 200: { type: 'array', items: anyObject }, ...jsonErrors },
      },
      config: { security: subscriptionSecurity('search', 'search-type') },
    },
    async () => (await listSubscriptions(e.db, e.schema)).map(redacted),
  );
  app.get<ById>(
    '/:id',
    {
      schema: {
        tags,
        summary: 'Read a subscription (secrets redacted)',
        params,
        response: { 200: anyObject, ...jsonErrors },
      },
      config: { security: subscriptionSecurity('read', 'read') },
    },
    async (req) => redacted(await one(e, req.params.id)),
  );
  app.get<ById>(
    '/:id/status',
    {
      schema: {
        tags,
        summary: 'Delivery status: events delivered, last success, failing since, dead letters',
        params,
        response: { 200: anyObject, ...jsonErrors },
      },
      config: { security: subscriptionSecurity('read', 'read') },
    },
    async (req) => found(await deliveryStatus(e.db, e.schema, req.params.id)),
  );
}

function writeRoutes(app: FastifyInstance, e: Edge): void {
  app.post<{ Body: unknown }>(
    '',
    {
      schema: {
        tags,
        summary: 'Create a subscription (a generated secret is shown in this answer only)',
        body: inputBody,
        response: { 201: anyObject, ...jsonErrors },
      },
      config: { security: subscriptionSecurity('create', 'create') },
    },
    async (req, reply) => {
      const { input, generated } = inputOf(req.body, null, e.newSecret);
      const sub = await createSubscription(e.db, e.schema, input, { id: e.newId(), now: e.now() });
      return reply.code(201).header('location', `/subscriptions/${sub.id}`).send(shownOnce(sub, generated));
    },
  );
  app.put<ById & { Body: unknown }>(
    '/:id',
    {
      schema: {
        tags,
        summary: 'Change a subscription (*** keeps a stored secret)',
        params,
        body: inputBody,
        response: { 200: anyObject, ...jsonErrors },
      },
      config: { security: subscriptionSecurity('update', 'update') },
    },
    async (req) => {
      const prev = await one(e, req.params.id);
      const { input, generated } = inputOf(req.body, prev, e.newSecret);
      return shownOnce(found(await updateSubscription(e.db, e.schema, prev.id, input, e.now())), generated);
    },
  );
  app.delete<ById>(
    '/:id',
    {
      schema: {
        tags,
        summary: 'Delete a subscription (its offsets, state and dead letters with it)',
        params,
        response: { ...jsonErrors },
      },
      config: { security: subscriptionSecurity('delete', 'delete') },
    },
    async (req, reply) => {
      if (!(await deleteSubscription(e.db, e.schema, req.params.id))) throw notFound();
      return reply.code(204).send();
    },
  );
}

function stateRoutes(app: FastifyInstance, e: Edge): void {
  for (const [action, state] of [
    ['pause', 'paused'],
    ['resume', 'active'],
  ] as const) {
    app.post<ById>(
      `/:id/${action}`,
      {
        schema: {
          tags,
          summary: `${action === 'pause' ? 'Pause' : 'Resume'} a subscription`,
          params,
          response: { 200: anyObject, ...jsonErrors },
        },
        config: { security: subscriptionSecurity('update', 'update') },
      },
      async (req) =>
        redacted(found(await setSubscriptionState(e.db, e.schema, req.params.id, state, e.now()))),
    );
  }
  app.post<ById & { Body: { from: string } }>(
    '/:id/replay',
    {
      schema: {
        tags,
        summary: 'Deliver again every event since a time (log append time) to this subscription only',
        params,
        body: {
          type: 'object',
          required: ['from'],
          properties: { from: { type: 'string', format: 'date-time' } },
        },
        response: { 200: anyObject, ...jsonErrors },
      },
      config: { security: subscriptionSecurity('update', 'update') },
    },
    async (req) => {
      const from = new Date(req.body.from);
      if (Number.isNaN(from.getTime())) throw new HubError('HUB_INPUT_INVALID', 'from: not a date-time');
      return redacted(found(await requestReplay(e.db, e.schema, req.params.id, from, e.now())));
    },
  );
}

export const subscriptionRoutes: FastifyPluginAsync<SubscriptionRoutesOptions> = (app, o) => {
  app.setErrorHandler(jsonErrorHandler);
  const e = edgeOf(o);
  readRoutes(app, e);
  writeRoutes(app, e);
  stateRoutes(app, e);
  // Fastify awaits plugins; this one registers its routes synchronously.
  return Promise.resolve();
};
