/**
 * FHIR R4 topic-based subscriptions, as the Subscriptions R5 Backport IG
 * (hl7.fhir.uv.subscriptions-backport) profiles them for R4: the
 * `Subscription` a client sends (backport-subscription) mapped to and from
 * the hub's SubscriptionInput, and the notification bundles a rest-hook
 * receiver gets (backport-subscription-notification-r4: a `history` Bundle
 * whose first entry is the `Parameters` of backport-subscription-status-r4).
 * Pure: times and ids come in as arguments.
 *
 * Topics: one SubscriptionTopic per FHIR resource type the hub's events are
 * about (RESOURCE_TYPE_OF), by canonical URL only (R4 has no SubscriptionTopic
 * resource; the IG lets a server name its topics by canonical):
 *   https://clinical-hub.example/fhir/SubscriptionTopic/<ResourceType>
 * e.g. .../SubscriptionTopic/Encounter fires for every Encounter event
 * (started, transferred, ended, cancelled, ...). The host is in the reserved
 * `.example` domain (RFC 2606) on purpose: a canonical is a name, never
 * fetched, and cannot collide with a real server's. Fixed for every
 * deployment, so a subscriber's configuration moves between them.
 *
 * Filters (`_criteria` extension backport-filter-criteria, each
 * `[Type?]name=value[,value...]`, AND across filters, OR within one):
 *   patient=<id> | Patient/<id>   the enterprise patient id(s)
 *   facility=<sending facility>   HL7 MSH-4 / meta.source.facility
 *   code=[system|]<code>          order or report code (ServiceRequest and
 *                                 DiagnosticReport topics; the code is matched, not the system)
 *   event=<EventType>             a hub event type of the topic's resource type
 */
import type {
  Bundle,
  BundleEntry,
  Extension,
  Parameters,
  ParametersParameter,
  Reference,
  Subscription as FhirSubscription,
} from '@medplum/fhirtypes';
import { HubError } from '../errors/index.js';
import type { EventType } from '../events/index.js';
import { nameUuid } from '../events/name-uuid.js';
import { focusOf, renderFocus } from './fhir-focus.js';
import {
  RESOURCE_TYPES,
  RESOURCE_TYPE_OF,
  subscriptionInputSchema,
  type Criteria,
  type Delivery,
  type RestHookChannel,
  type Start,
  type Subscription,
  type SubscriptionInput,
  type SubscriptionState,
} from './model.js';
import type { DeliveryStatus } from './store.js';

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
export const BACKPORT_SUBSCRIPTION = `${BACKPORT}/backport-subscription`;
export const BACKPORT_STATUS = `${BACKPORT}/backport-subscription-status-r4`;
export const BACKPORT_NOTIFICATION = `${BACKPORT}/backport-subscription-notification-r4`;
export const BACKPORT_EXT = {
  filter: `${BACKPORT}/backport-filter-criteria`,
  payload: `${BACKPORT}/backport-payload-content`,
  heartbeat: `${BACKPORT}/backport-heartbeat-period`,
  timeout: `${BACKPORT}/backport-timeout`,
  maxCount: `${BACKPORT}/backport-max-count`,
} as const;

const HUB_FHIR = 'https://clinical-hub.example/fhir';
export const TOPIC_BASE = `${HUB_FHIR}/SubscriptionTopic`;
/** The hub's own extensions: the HMAC signing secret (instead of a bearer header) and the start position. */
export const HUB_EXT = {
  hmacSecret: `${HUB_FHIR}/StructureDefinition/subscription-hmac-secret`,
  start: `${HUB_FHIR}/StructureDefinition/subscription-start`,
} as const;

/** What every secret is shown as once stored; sent back unchanged on an update, it keeps the stored secret. */
export const REDACTED = '***';

export const FHIR_JSON_PAYLOAD = 'application/fhir+json';

/** The topic canonical of each resource type. */
export const TOPICS: Readonly<Record<string, string>> = Object.fromEntries(
  RESOURCE_TYPES.map((t) => [t, `${TOPIC_BASE}/${t}`]),
);

export const topicOf = (resourceType: string): string => `${TOPIC_BASE}/${resourceType}`;

export function resourceTypeOfTopic(url: string): string | null {
  return Object.entries(TOPICS).find(([, u]) => u === url)?.[0] ?? null;
}

const invalid = (msg: string) => new HubError('HUB_INPUT_INVALID', msg);

/** A name from the input, shown in an error: bounded, and only the characters of a name. */
const shownName = (s: string) => s.slice(0, 40).replace(/[^\w.:-]/g, '?');

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function extensionsOf(v: unknown, where: string): Json[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every(isObject))
    throw invalid(`${where}.extension must be an array of extensions`);
  return v;
}

function refuseModifiers(v: Json, where: string): void {
  if (v.modifierExtension !== undefined) throw invalid(`${where}.modifierExtension is not supported`);
}

/** The one extension with this url, or undefined; twice is refused. */
function oneExtension(exts: readonly Json[], url: string, where: string): Json | undefined {
  const found = exts.filter((e) => e.url === url);
  if (found.length > 1) throw invalid(`${where}: extension ${url} given more than once`);
  return found[0];
}

function stringAt(v: Json, key: string, where: string, required: boolean): string | undefined {
  const s = v[key];
  if (s === undefined) {
    if (required) throw invalid(`${where}.${key} is required`);
    return undefined;
  }
  if (typeof s !== 'string' || s.length === 0) throw invalid(`${where}.${key} must be a non-empty string`);
  return s;
}

function unsignedIntOf(ext: Json | undefined, where: string): number | undefined {
  if (!ext) return undefined;
  const v = ext.valueUnsignedInt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw invalid(`${where} must have a valueUnsignedInt`);
  }
  return v;
}

interface Filters {
  patients: string[];
  facilities: string[];
  orderCodes: string[];
  eventTypes: EventType[];
}

const CODED_TYPES = new Set(['ServiceRequest', 'DiagnosticReport']);
const FILTER_WHERE = 'Subscription.criteria backport-filter-criteria';

function decoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw invalid(`${FILTER_WHERE}: a value is not valid percent-encoding`);
  }
}

/** One `name=v1,v2` of a filter, into the criteria lists. */
function applyFilter(out: Filters, seen: Set<string>, part: string, type: string): void {
  const eq = part.indexOf('=');
  const name = eq > 0 ? part.slice(0, eq) : '';
  const values = (eq > 0 ? part.slice(eq + 1) : '').split(',').map(decoded);
  if (!name || values.some((v) => v.length === 0)) throw invalid(`${FILTER_WHERE}: expected name=value`);
  // The same parameter in two filters would be an AND the criteria's any-of lists cannot say.
  if (seen.has(name)) throw invalid(`${FILTER_WHERE}: parameter '${shownName(name)}' given more than once`);
  seen.add(name);
  switch (name) {
    case 'patient':
      out.patients.push(...values.map((v) => v.replace(/^Patient\//, '')));
      return;
    case 'facility':
      out.facilities.push(...values);
      return;
    case 'code':
      if (!CODED_TYPES.has(type))
        throw invalid(`${FILTER_WHERE}: code filters only the ServiceRequest and DiagnosticReport topics`);
      out.orderCodes.push(...values.map((v) => v.slice(v.lastIndexOf('|') + 1)));
      return;
    case 'event':
      for (const v of values) {
        if (!(v in RESOURCE_TYPE_OF) || RESOURCE_TYPE_OF[v as EventType] !== type) {
          throw invalid(`${FILTER_WHERE}: event is not an event type of the topic`);
        }
        out.eventTypes.push(v as EventType);
      }
      return;
    default:
      throw invalid(
        `${FILTER_WHERE}: unsupported filter parameter '${shownName(name)}' (patient, facility, code, event)`,
      );
  }
}

function filtersOf(criteriaElement: unknown, type: string): Filters {
  const out: Filters = { patients: [], facilities: [], orderCodes: [], eventTypes: [] };
  if (criteriaElement === undefined) return out;
  if (!isObject(criteriaElement)) throw invalid('Subscription._criteria must be an object');
  const seen = new Set<string>();
  for (const ext of extensionsOf(criteriaElement.extension, 'Subscription._criteria')) {
    if (ext.url !== BACKPORT_EXT.filter) continue;
    const v = ext.valueString;
    if (typeof v !== 'string' || v.length === 0) throw invalid(`${FILTER_WHERE} must have a valueString`);
    const q = v.indexOf('?');
    const prefix = q >= 0 ? v.slice(0, q) : '';
    if (prefix !== '' && prefix !== type)
      throw invalid(`${FILTER_WHERE}: the resource type does not match the topic`);
    for (const part of (q >= 0 ? v.slice(q + 1) : v).split('&')) applyFilter(out, seen, part, type);
  }
  return out;
}

function startOf(exts: readonly Json[]): Start {
  const ext = oneExtension(exts, HUB_EXT.start, 'Subscription');
  if (!ext) return { from: 'now' };
  if (ext.valueCode === 'now' || ext.valueCode === 'beginning') return { from: ext.valueCode };
  if (typeof ext.valueInstant === 'string') return { from: 'time', at: ext.valueInstant };
  if (typeof ext.valueDateTime === 'string') return { from: 'time', at: ext.valueDateTime };
  throw invalid(
    `Subscription extension ${HUB_EXT.start} must have valueCode now|beginning or a valueInstant`,
  );
}

function payloadOf(channel: Json): RestHookChannel['payload'] {
  const mime = stringAt(channel, 'payload', 'Subscription.channel', false);
  // R4: no payload, no content in the notification.
  if (mime === undefined) return 'empty';
  if (mime !== FHIR_JSON_PAYLOAD)
    throw invalid(`Subscription.channel.payload: only ${FHIR_JSON_PAYLOAD} is supported`);
  const meta = channel._payload;
  const exts = isObject(meta) ? extensionsOf(meta.extension, 'Subscription.channel._payload') : [];
  const content = oneExtension(exts, BACKPORT_EXT.payload, 'Subscription.channel._payload')?.valueCode;
  if (content === undefined) return 'id-only';
  if (content === 'empty' || content === 'id-only' || content === 'full-resource') return content;
  throw invalid(
    'Subscription.channel._payload backport-payload-content must be empty, id-only or full-resource',
  );
}

/** What the client asks for when it gives no secret at all, or sends a redacted one back. */
export interface FhirAuthDefaults {
  /** The secret to sign with when the resource names neither a bearer header nor an HMAC secret. */
  hmacSecret?: string;
  /** The stored auth of the subscription being updated: a `***` sent back keeps it. */
  existing?: RestHookChannel['auth'];
}

function keptSecret(
  given: RestHookChannel['auth'],
  d: FhirAuthDefaults,
  where: string,
): RestHookChannel['auth'] {
  const value = given.type === 'bearer' ? given.token : given.secret;
  if (value !== REDACTED) return given;
  if (d.existing?.type !== given.type)
    throw invalid(`${where}: a redacted secret can only keep the one already stored`);
  return d.existing;
}

function authOf(channel: Json, exts: readonly Json[], d: FhirAuthDefaults): RestHookChannel['auth'] {
  const headers = channel.header === undefined ? [] : channel.header;
  if (!Array.isArray(headers) || !headers.every((h) => typeof h === 'string')) {
    throw invalid('Subscription.channel.header must be an array of strings');
  }
  const hmac = oneExtension(exts, HUB_EXT.hmacSecret, 'Subscription.channel');
  let bearer: string | undefined;
  for (const h of headers) {
    const m = /^authorization\s*:\s*bearer\s+(\S+)\s*$/i.exec(h);
    // Any other header would be sent to the receiver as given: the hub sends only its own.
    if (!m?.[1] || bearer !== undefined) {
      throw invalid(
        'Subscription.channel.header: only one "Authorization: Bearer <token>" header is supported',
      );
    }
    bearer = m[1];
  }
  if (bearer !== undefined && hmac)
    throw invalid('Subscription.channel: a bearer header or an HMAC secret, not both');
  if (bearer !== undefined)
    return keptSecret({ type: 'bearer', token: bearer }, d, 'Subscription.channel.header');
  if (hmac) {
    if (typeof hmac.valueString !== 'string')
      throw invalid(`Subscription.channel extension ${HUB_EXT.hmacSecret} must have a valueString`);
    return keptSecret(
      { type: 'hmac', secret: hmac.valueString },
      d,
      `Subscription.channel extension ${HUB_EXT.hmacSecret}`,
    );
  }
  if (d.existing) return d.existing;
  if (d.hmacSecret) return { type: 'hmac', secret: d.hmacSecret };
  throw invalid('Subscription.channel: an "Authorization: Bearer" header or an HMAC secret is required');
}

/** The hub's input field a schema problem is about, as the FHIR element the client sent. */
const ELEMENT_OF: readonly [RegExp, string][] = [
  [/^name/, 'Subscription.reason'],
  [/^criteria/, FILTER_WHERE],
  [/^channel\.endpoint/, 'Subscription.channel.endpoint'],
  [/^channel\.auth\.token/, 'Subscription.channel.header'],
  [/^channel\.auth\.secret/, `Subscription.channel extension ${HUB_EXT.hmacSecret}`],
  [/^channel\.heartbeatSeconds/, `Subscription.channel extension ${BACKPORT_EXT.heartbeat}`],
  [/^channel\.timeoutMs/, `Subscription.channel extension ${BACKPORT_EXT.timeout}`],
  [/^start/, `Subscription extension ${HUB_EXT.start}`],
];

function checked(input: unknown): SubscriptionInput {
  const r = subscriptionInputSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = (issue?.path ?? []).join('.');
  const element = ELEMENT_OF.find(([re]) => re.test(path))?.[1] ?? 'Subscription';
  // zod's messages name the rule (too short, not a URL), never the value.
  throw invalid(`${element}: ${issue?.message ?? 'invalid'}`);
}

function channelOf(s: Json, defaults: FhirAuthDefaults): { channel: RestHookChannel; type: string } {
  const criteria = stringAt(s, 'criteria', 'Subscription', true) ?? '';
  const type = resourceTypeOfTopic(criteria);
  if (!type)
    throw invalid('Subscription.criteria must be the canonical URL of a SubscriptionTopic of this hub');
  const channel = s.channel;
  if (!isObject(channel)) throw invalid('Subscription.channel is required');
  refuseModifiers(channel, 'Subscription.channel');
  if (channel.type !== 'rest-hook') throw invalid('Subscription.channel.type: only rest-hook is supported');
  const exts = extensionsOf(channel.extension, 'Subscription.channel');
  const timeout = unsignedIntOf(
    oneExtension(exts, BACKPORT_EXT.timeout, 'Subscription.channel'),
    'backport-timeout',
  );
  const heartbeat = unsignedIntOf(
    oneExtension(exts, BACKPORT_EXT.heartbeat, 'Subscription.channel'),
    'backport-heartbeat-period',
  );
  // backport-max-count is honoured by construction: every notification carries one event.
  return {
    type,
    channel: {
      type: 'rest-hook',
      endpoint: stringAt(channel, 'endpoint', 'Subscription.channel', true) ?? '',
      topic: criteria,
      payload: payloadOf(channel),
      auth: authOf(channel, exts, defaults),
      heartbeatSeconds: heartbeat ?? 0,
      timeoutMs: timeout !== undefined ? timeout * 1000 : 10_000,
    },
  };
}

function subscriptionObject(resource: unknown): Json {
  if (!isObject(resource) || resource.resourceType !== 'Subscription') {
    throw invalid('resourceType must be Subscription');
  }
  refuseModifiers(resource, 'Subscription');
  return resource;
}

/**
 * A backport-subscription as the hub's input. Throws HUB_INPUT_INVALID naming
 * the element at fault, never quoting a value. Base R4 structure is checked
 * by the caller (validateResource); this checks the profile's rules the hub
 * relies on and what it supports.
 */
export function subscriptionFromFhir(resource: unknown, defaults: FhirAuthDefaults = {}): SubscriptionInput {
  const s = subscriptionObject(resource);
  if (s.end !== undefined)
    throw invalid('Subscription.end is not supported: hub subscriptions do not expire');
  requestedState(s);
  const { channel, type } = channelOf(s, defaults);
  const f = filtersOf(s._criteria, type);
  const criteria: Criteria = { ...f, resourceTypes: [type] };
  return checked({
    name: stringAt(s, 'reason', 'Subscription', true),
    criteria,
    channel,
    start: startOf(extensionsOf(s.extension, 'Subscription')),
  });
}

/** Subscription.status asked for: `off` pauses; `error` is the server's to set. */
export function requestedState(resource: unknown): SubscriptionState {
  const s = subscriptionObject(resource);
  switch (s.status) {
    case 'requested':
    case 'active':
      return 'active';
    case 'off':
      return 'paused';
    case undefined:
      throw invalid('Subscription.status is required');
    default:
      throw invalid('Subscription.status must be requested, active or off');
  }
}

const fhirStatus = (state: SubscriptionState, status?: DeliveryStatus): 'active' | 'error' | 'off' =>
  state === 'paused' ? 'off' : status?.health === 'error' ? 'error' : 'active';

function filterStrings(c: Criteria, type: string): string[] {
  const out: string[] = [];
  const add = (name: string, values: readonly string[]) => {
    if (values.length > 0) out.push(`${type}?${name}=${values.map(encodeURIComponent).join(',')}`);
  };
  add('patient', c.patients);
  add('facility', c.facilities);
  add('code', c.orderCodes);
  add('event', c.eventTypes);
  return out;
}

const ext = (url: string, value: Omit<Extension, 'url'>): Extension => ({ url, ...value });

function startExtension(s: Start): Extension {
  return s.from === 'time'
    ? ext(HUB_EXT.start, { valueInstant: s.at })
    : ext(HUB_EXT.start, { valueCode: s.from });
}

export interface ToFhirOptions {
  /** Show the HMAC secret (only in the answer to the create that generated it). */
  revealSecret?: boolean;
}

/**
 * A stored rest-hook subscription as a backport-subscription; secrets shown
 * as `***` (the bearer header's token, the HMAC secret) unless revealSecret.
 */
export function subscriptionToFhir(
  sub: Subscription,
  status?: DeliveryStatus,
  o: ToFhirOptions = {},
): FhirSubscription {
  const c = sub.channel;
  if (c.type !== 'rest-hook') throw new HubError('HUB_NOT_FOUND', 'not a FHIR rest-hook subscription');
  const type = resourceTypeOfTopic(c.topic) ?? sub.criteria.resourceTypes[0] ?? 'Patient';
  const filters = filterStrings(sub.criteria, type);
  const health = fhirStatus(sub.state, status);
  const secret = o.revealSecret && c.auth.type === 'hmac' ? c.auth.secret : REDACTED;
  const channelExt = [
    ...(c.heartbeatSeconds > 0
      ? [ext(BACKPORT_EXT.heartbeat, { valueUnsignedInt: c.heartbeatSeconds })]
      : []),
    ext(BACKPORT_EXT.timeout, { valueUnsignedInt: Math.ceil(c.timeoutMs / 1000) }),
    ...(c.auth.type === 'hmac' ? [ext(HUB_EXT.hmacSecret, { valueString: secret })] : []),
  ];
  return {
    resourceType: 'Subscription',
    id: sub.id,
    meta: { profile: [BACKPORT_SUBSCRIPTION], lastUpdated: sub.updatedAt },
    extension: [startExtension(sub.start)],
    status: health,
    reason: sub.name,
    criteria: c.topic,
    ...(filters.length > 0
      ? { _criteria: { extension: filters.map((v) => ext(BACKPORT_EXT.filter, { valueString: v })) } }
      : {}),
    ...(health === 'error' && status?.lastFailureReason ? { error: status.lastFailureReason } : {}),
    channel: {
      extension: channelExt,
      type: 'rest-hook',
      endpoint: c.endpoint,
      payload: FHIR_JSON_PAYLOAD,
      _payload: { extension: [ext(BACKPORT_EXT.payload, { valueCode: c.payload })] },
      ...(c.auth.type === 'bearer' ? { header: [`Authorization: Bearer ${REDACTED}`] } : {}),
    },
  } as FhirSubscription;
}

/** Where the receiver resolves references: the channel's fhirBase, else the hub's FHIR base. */
export interface BundleContext {
  /** The hub's FHIR base URL (`https://hub.example.org/fhir`), used when the channel names none. */
  fhirBase: string;
  at: Date;
}

const baseOf = (c: RestHookChannel, ctx: BundleContext) => (c.fhirBase ?? ctx.fhirBase).replace(/\/+$/, '');

function restHookOf(sub: Subscription): RestHookChannel {
  if (sub.channel.type !== 'rest-hook') throw new HubError('HUB_INTERNAL', 'not a rest-hook subscription');
  return sub.channel;
}

type NotificationType = 'heartbeat' | 'event-notification' | 'query-status';

interface StatusFacts {
  sub: Subscription;
  base: string;
  status: 'active' | 'error' | 'off';
  type: NotificationType;
  eventsSinceStart: number;
  event?: { number: number; timestamp: string; focus?: Reference };
  error?: string;
}

/** The backport-subscription-status-r4 Parameters, its parameters in the profile's order. */
function statusParameters(id: string, f: StatusFacts): Parameters {
  const c = restHookOf(f.sub);
  const parameter: ParametersParameter[] = [
    { name: 'subscription', valueReference: { reference: `${f.base}/Subscription/${f.sub.id}` } },
    { name: 'topic', valueCanonical: c.topic },
    { name: 'status', valueCode: f.status },
    { name: 'type', valueCode: f.type },
    // R4 has no integer64: the IG carries the counts as strings.
    { name: 'events-since-subscription-start', valueString: String(f.eventsSinceStart) },
  ];
  if (f.event) {
    parameter.push({
      name: 'notification-event',
      part: [
        { name: 'event-number', valueString: String(f.event.number) },
        { name: 'timestamp', valueInstant: f.event.timestamp },
        ...(f.event.focus ? [{ name: 'focus', valueReference: f.event.focus }] : []),
      ],
    });
  }
  if (f.error) parameter.push({ name: 'error', valueCodeableConcept: { text: f.error } });
  return { resourceType: 'Parameters', id, meta: { profile: [BACKPORT_STATUS] }, parameter };
}

/** The status entry of a history bundle: as if read by GET .../$status (the IG's request/response). */
function statusEntry(p: Parameters, f: StatusFacts): BundleEntry {
  return {
    fullUrl: `urn:uuid:${p.id ?? ''}`,
    resource: p,
    request: { method: 'GET', url: `${f.base}/Subscription/${f.sub.id}/$status` },
    response: { status: '200' },
  };
}

function notificationShell(id: string, at: Date, entry: BundleEntry[]): Bundle {
  return {
    resourceType: 'Bundle',
    id,
    meta: { profile: [BACKPORT_NOTIFICATION] },
    type: 'history',
    timestamp: at.toISOString(),
    entry,
  };
}

/** Namespace of the ids of heartbeat and status bundles (a fixed random UUID). */
const NOTIFICATION_NAMESPACE = '3c8f7e21-5b4d-4a9e-b2f6-91d0c7a4e853';

/**
 * The notification of one delivery: its Bundle and status Parameters ids
 * are the delivery's idempotency key, so every attempt of it is the same
 * bundle. `id-only` and `full-resource` add the focus entry (fullUrl,
 * request, response; the resource with full-resource where one event states
 * it, fhir-focus.ts); `empty` names no focus.
 */
export function notificationBundle(d: Delivery, ctx: BundleContext): Bundle {
  const c = restHookOf(d.subscription);
  const base = baseOf(c, ctx);
  const e = d.record.event;
  const focus = focusOf(e);
  const focusUrl = `${base}/${focus.resourceType}/${focus.id}`;
  const facts: StatusFacts = {
    sub: d.subscription,
    base,
    status: 'active',
    type: 'event-notification',
    eventsSinceStart: d.eventNumber,
    event: {
      number: d.eventNumber,
      // When the hub recorded the fact: the moment the event happened for this stream.
      timestamp: new Date(e.data.meta.recordedAt).toISOString(),
      ...(c.payload === 'empty' ? {} : { focus: { reference: focusUrl } }),
    },
  };
  const entries = [statusEntry(statusParameters(d.idempotencyKey, facts), facts)];
  if (c.payload !== 'empty') {
    const resource = c.payload === 'full-resource' ? renderFocus(e) : null;
    entries.push({
      fullUrl: focusUrl,
      ...(resource ? { resource } : {}),
      request: focus.created
        ? { method: 'POST', url: focus.resourceType }
        : { method: 'PUT', url: `${focus.resourceType}/${focus.id}` },
      response: { status: focus.created ? '201' : '200' },
    });
  }
  return notificationShell(d.idempotencyKey, ctx.at, entries);
}

/** A heartbeat: the status entry alone (type heartbeat), so the receiver knows the subscription is alive. */
export function heartbeatBundle(sub: Subscription, eventsSinceStart: number, ctx: BundleContext): Bundle {
  const base = baseOf(restHookOf(sub), ctx);
  const id = nameUuid(`${sub.id}:heartbeat:${ctx.at.toISOString()}`, NOTIFICATION_NAMESPACE);
  const facts: StatusFacts = { sub, base, status: 'active', type: 'heartbeat', eventsSinceStart };
  return notificationShell(id, ctx.at, [statusEntry(statusParameters(id, facts), facts)]);
}

/** The answer of `$status`: a searchset with the subscription's status Parameters (type query-status). */
export function statusBundle(sub: Subscription, status: DeliveryStatus, ctx: BundleContext): Bundle {
  const base = baseOf(restHookOf(sub), ctx);
  const id = nameUuid(`${sub.id}:status:${ctx.at.toISOString()}`, NOTIFICATION_NAMESPACE);
  const health = fhirStatus(sub.state, status);
  const facts: StatusFacts = {
    sub,
    base,
    status: health,
    type: 'query-status',
    eventsSinceStart: status.eventsSinceStart,
    ...(health === 'error' && status.lastFailureReason ? { error: status.lastFailureReason } : {}),
  };
  return {
    resourceType: 'Bundle',
    id,
    type: 'searchset',
    timestamp: ctx.at.toISOString(),
    total: 1,
    entry: [{ fullUrl: `urn:uuid:${id}`, resource: statusParameters(id, facts), search: { mode: 'match' } }],
  };
}
