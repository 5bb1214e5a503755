import { validateResource } from '@medplum/core';
import type { Bundle, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { allergy, coverage, diagnosis } from '../../test/support/clinical-facts.js';
import { attachment, at, hospitalDay, merged, syntheticEvents } from '../../test/support/hospital-day.js';
import { expectBackportNotification, expectStatusParameters } from '../../test/support/backport.js';
import { backportSubscription } from '../../test/support/subscriptions.js';
import type { ClinicalEvent } from '../events/index.js';
import { loadFhirDefinitions } from '../fhir/validate.js';
import {
  BACKPORT_EXT,
  HUB_EXT,
  TOPICS,
  heartbeatBundle,
  notificationBundle,
  requestedState,
  statusBundle,
  subscriptionFromFhir,
  subscriptionToFhir,
  topicOf,
} from './fhir.js';
import { focusOf, renderFocus } from './fhir-focus.js';
import {
  RESOURCE_TYPE_OF,
  idempotencyKey,
  type Delivery,
  type RestHookChannel,
  type Subscription,
  type SubscriptionInput,
} from './model.js';
import type { DeliveryStatus } from './store.js';

beforeAll(() => loadFhirDefinitions(), 30_000);

const SUB_ID = '0b6c1a44-7a52-4a8e-9d1e-2f3b4c5d6e7f';
const BASE = 'https://hub.test/fhir';
const NOW = new Date('2026-03-02T12:00:00.000Z');

const igExample = backportSubscription;

function stored(input: SubscriptionInput, over: Partial<Subscription> = {}): Subscription {
  return {
    ...input,
    id: SUB_ID,
    state: 'active',
    generation: 1,
    createdAt: NOW.toISOString(),
    updatedAt: NOW.toISOString(),
    ...over,
  };
}

function restHookSub(payload: RestHookChannel['payload'], topicType = 'Encounter'): Subscription {
  return stored({
    name: 'test',
    criteria: { eventTypes: [], resourceTypes: [topicType], facilities: [], orderCodes: [], patients: [] },
    channel: {
      type: 'rest-hook',
      endpoint: 'https://care.example.org/hook',
      topic: topicOf(topicType),
      payload,
      auth: { type: 'bearer', token: 'secret-token-abc-123' },
      heartbeatSeconds: 0,
      timeoutMs: 10_000,
    },
    start: { from: 'now' },
    retry: { maxBackoffSeconds: 60, giveUpAfterSeconds: 3600 },
  });
}

function delivery(e: ClinicalEvent, payload: RestHookChannel['payload'], n = 7): Delivery {
  const sub = restHookSub(payload, RESOURCE_TYPE_OF[e.type]);
  return {
    subscription: sub,
    record: { topic: 't', partition: 0, offset: 1n, key: e.data.patientId, timestamp: 0, event: e },
    eventNumber: n,
    idempotencyKey: idempotencyKey(sub.id, e.data.meta.eventId),
  };
}

const param = (p: Parameters, name: string) => (p.parameter ?? []).find((x) => x.name === name);
const part = (p: ParametersParameter | undefined, name: string) =>
  (p?.part ?? []).find((x) => x.name === name);
const expectNotification = (b: Bundle, sub: Subscription, type: string): Parameters =>
  expectBackportNotification(b, sub, type, NOW.toISOString());

const clinicalFacts = (): ClinicalEvent[] => [
  ...hospitalDay(),
  allergy(),
  diagnosis(),
  coverage(),
  merged('P3', 'P4', 'mrg-1', at(12)),
  attachment('P1', 'att-1', at(13), Buffer.from('%PDF-1.4 test')).stored,
];

describe('FHIR rest-hook notifications (backport R4)', () => {
  it('given each event of a hospital day and each payload, when notified, then the bundle validates and follows the IG', () => {
    for (const e of clinicalFacts()) {
      for (const payload of ['empty', 'id-only', 'full-resource'] as const) {
        const d = delivery(e, payload);
        const b = notificationBundle(d, { fhirBase: BASE, at: NOW });
        const p = expectNotification(b, d.subscription, 'event-notification');
        expect(b.id).toBe(d.idempotencyKey);
        const event = param(p, 'notification-event');
        expect(part(event, 'event-number')?.valueString).toBe('7');
        expect(part(event, 'timestamp')?.valueInstant).toBe(new Date(e.data.meta.recordedAt).toISOString());
        const focus = focusOf(e);
        const url = `${BASE}/${focus.resourceType}/${focus.id}`;
        if (payload === 'empty') {
          expect(part(event, 'focus')).toBeUndefined();
          expect(b.entry).toHaveLength(1);
          continue;
        }
        expect(part(event, 'focus')?.valueReference?.reference).toBe(url);
        expect(b.entry).toHaveLength(2);
        expect(b.entry?.[1]?.fullUrl).toBe(url);
        const resource = b.entry?.[1]?.resource;
        if (payload === 'id-only') expect(resource).toBeUndefined();
        else expect(resource === undefined ? null : resource).toEqual(renderFocus(e));
        if (resource)
          expect(`${resource.resourceType}/${resource.id ?? ''}`).toBe(`${focus.resourceType}/${focus.id}`);
      }
    }
  });

  it('given full-resource, when the event states its resource, then it is the resource the portal renders', () => {
    const rendered = new Set(
      clinicalFacts()
        .filter((e) => renderFocus(e) !== null)
        .map((e) => e.type),
    );
    const renderable = [
      'PatientRegistered',
      'PatientUpdated',
      'EncounterStarted',
      'OrderPlaced',
      'ResultReported',
      'ResultCorrected',
      'AllergyRecorded',
      'DiagnosisRecorded',
      'CoverageRecorded',
    ];
    expect([...rendered].filter((t) => !renderable.includes(t))).toEqual([]);
    for (const t of [
      'PatientRegistered',
      'EncounterStarted',
      'OrderPlaced',
      'ResultReported',
      'AllergyRecorded',
    ]) {
      expect(rendered.has(t as ClinicalEvent['type']), t).toBe(true);
    }
    // A merge, a transfer, a discharge, an attachment: id-only, the state is the fold of earlier events.
    for (const e of clinicalFacts().filter((x) =>
      ['PatientsMerged', 'EncounterEnded', 'AttachmentStored'].includes(x.type),
    )) {
      expect(renderFocus(e), e.type).toBeNull();
    }
  });

  it('given many synthetic events, when notified with full-resource, then every bundle is valid R4', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 2 ** 31 }), (seed, n) => {
        for (const e of syntheticEvents(8, seed)) {
          const d = delivery(e, 'full-resource', n);
          const b = notificationBundle(d, { fhirBase: BASE, at: NOW });
          expectNotification(b, d.subscription, 'event-notification');
          expect(
            part(param(b.entry![0]!.resource as Parameters, 'notification-event'), 'event-number')
              ?.valueString,
          ).toBe(String(n));
        }
      }),
      { numRuns: 15 },
    );
  });

  it('given a channel fhirBase, when notified, then references resolve against it', () => {
    const d = delivery(allergy(), 'id-only');
    (d.subscription.channel as RestHookChannel).fhirBase = 'https://mirror.example.org/r4/';
    const b = notificationBundle(d, { fhirBase: BASE, at: NOW });
    expect(b.entry?.[1]?.fullUrl).toBe('https://mirror.example.org/r4/AllergyIntolerance/AL1');
  });

  it('given a quiet subscription, when a heartbeat is built, then it is a status-only history bundle of type heartbeat', () => {
    const sub = restHookSub('id-only');
    const b = heartbeatBundle(sub, 42, { fhirBase: BASE, at: NOW });
    const p = expectNotification(b, sub, 'heartbeat');
    expect(b.entry).toHaveLength(1);
    expect(param(p, 'events-since-subscription-start')?.valueString).toBe('42');
    expect(param(p, 'notification-event')).toBeUndefined();
    expect(heartbeatBundle(sub, 42, { fhirBase: BASE, at: NOW })).toEqual(b);
  });

  it('given a delivery status, when $status is built, then a searchset with the query-status Parameters', () => {
    const sub = restHookSub('id-only');
    const failing: DeliveryStatus = {
      eventsSinceStart: 12,
      lastDeliveredAt: null,
      lastHeartbeatAt: null,
      failingSince: NOW.toISOString(),
      lastFailureReason: 'http-503',
      deadLetters: 0,
      health: 'error',
    };
    const b = statusBundle(sub, failing, { fhirBase: BASE, at: NOW });
    validateResource(b);
    expect(b.type).toBe('searchset');
    expect(b.entry?.[0]?.search?.mode).toBe('match');
    const p = expectStatusParameters(b.entry?.[0]?.resource, sub, 'query-status');
    expect(param(p, 'status')?.valueCode).toBe('error');
    expect(param(p, 'error')?.valueCodeableConcept?.text).toBe('http-503');
    const paused = statusBundle(
      { ...sub, state: 'paused' },
      { ...failing, health: 'paused' },
      { fhirBase: BASE, at: NOW },
    );
    expect(param(paused.entry?.[0]?.resource as Parameters, 'status')?.valueCode).toBe('off');
  });
});

describe('Subscription (backport-subscription) ⇄ the hub', () => {
  it('given the IG example on a hub topic, when mapped, then every element is in the input', () => {
    const input = subscriptionFromFhir(igExample());
    expect(input).toEqual({
      name: 'Admissions for the care-management app',
      criteria: {
        eventTypes: [],
        resourceTypes: ['Encounter'],
        facilities: [],
        orderCodes: [],
        patients: ['P1'],
      },
      channel: {
        type: 'rest-hook',
        endpoint: 'https://care.example.org/fhir/$subscription-hook',
        topic: TOPICS.Encounter,
        payload: 'id-only',
        auth: { type: 'bearer', token: 'secret-token-abc-123' },
        heartbeatSeconds: 120,
        timeoutMs: 30_000,
      },
      start: { from: 'now' },
      retry: { maxBackoffSeconds: 60, giveUpAfterSeconds: 3600 },
    });
    expect(requestedState(igExample())).toBe('active');
    expect(requestedState(igExample({ status: 'off' }))).toBe('paused');
  });

  it('given filters, an HMAC extension and a start, when mapped, then the criteria, the auth and the start', () => {
    const input = subscriptionFromFhir(
      igExample(
        {
          criteria: topicOf('DiagnosticReport'),
          _criteria: {
            extension: [
              {
                url: BACKPORT_EXT.filter,
                valueString: 'DiagnosticReport?code=http://loinc.org|718-7,2345-7',
              },
              { url: BACKPORT_EXT.filter, valueString: 'facility=ACME&event=ResultCorrected' },
            ],
          },
          extension: [{ url: HUB_EXT.start, valueInstant: '2026-03-01T00:00:00Z' }],
        },
        {
          header: undefined,
          extension: [{ url: HUB_EXT.hmacSecret, valueString: 'whsec_abcdefghijklmnopqrstuvwxyz012345' }],
          _payload: { extension: [{ url: BACKPORT_EXT.payload, valueCode: 'full-resource' }] },
        },
      ),
    );
    expect(input.criteria).toEqual({
      eventTypes: ['ResultCorrected'],
      resourceTypes: ['DiagnosticReport'],
      facilities: ['ACME'],
      orderCodes: ['718-7', '2345-7'],
      patients: [],
    });
    expect(input.channel).toMatchObject({
      payload: 'full-resource',
      auth: { type: 'hmac', secret: 'whsec_abcdefghijklmnopqrstuvwxyz012345' },
      heartbeatSeconds: 0,
    });
    expect(input.start).toEqual({ from: 'time', at: '2026-03-01T00:00:00Z' });
  });

  it('given no auth, when a generated secret is offered, then HMAC with it; without one, refused', () => {
    const bare = igExample({}, { header: undefined });
    expect(
      subscriptionFromFhir(bare, { hmacSecret: 'whsec_generatedsecret0123456789abcdef' }).channel,
    ).toMatchObject({
      auth: { type: 'hmac', secret: 'whsec_generatedsecret0123456789abcdef' },
    });
    expect(() => subscriptionFromFhir(bare)).toThrow(
      /Subscription.channel: an "Authorization: Bearer" header/,
    );
  });

  it('given a stored subscription, when shown as FHIR, then it validates, secrets are redacted, and it maps back', () => {
    const input = subscriptionFromFhir(igExample());
    const sub = stored(input);
    const shown = subscriptionToFhir(sub);
    validateResource(shown);
    expect(JSON.stringify(shown)).not.toContain('secret-token-abc-123');
    expect(shown.channel.header).toEqual(['Authorization: Bearer ***']);
    expect(shown.status).toBe('active');
    // A client that sends the redacted resource back keeps the stored secret.
    const back = subscriptionFromFhir(shown, { existing: (sub.channel as RestHookChannel).auth });
    expect(back).toEqual(input);
    expect(() => subscriptionFromFhir(shown)).toThrow(/redacted secret can only keep/);
  });

  it('given any criteria a FHIR subscription can express, when shown and read back, then the same criteria (property)', () => {
    const id = fc.stringMatching(/^[A-Za-z0-9.\-/ |,&=?%]{1,20}$/);
    fc.assert(
      fc.property(
        fc.constantFrom('Patient', 'Encounter', 'DiagnosticReport', 'ServiceRequest', 'Condition'),
        fc.uniqueArray(id, { maxLength: 3 }),
        fc.uniqueArray(id, { maxLength: 3 }),
        fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9.-]{1,12}$/), { maxLength: 3 }),
        fc.constantFrom<RestHookChannel['payload'][]>('empty', 'id-only', 'full-resource'),
        (type, patients, facilities, codes, payload) => {
          const coded = type === 'DiagnosticReport';
          const base = restHookSub(payload, type);
          const sub: Subscription = {
            ...base,
            criteria: {
              ...base.criteria,
              patients: patients.map((p) => p.replace(/^Patient\//, 'x')),
              facilities,
              orderCodes: coded ? codes : [],
            },
          };
          const shown = subscriptionToFhir(sub);
          validateResource(shown);
          const back = subscriptionFromFhir(shown, { existing: (sub.channel as RestHookChannel).auth });
          expect(back.criteria).toEqual(sub.criteria);
          expect(back.channel).toEqual(sub.channel);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('given any JSON at all, when mapped, then an input or a HUB_INPUT_INVALID, never another error (property)', () => {
    const near = fc.record(
      {
        resourceType: fc.constant('Subscription'),
        status: fc.oneof(fc.constantFrom('requested', 'active', 'off', 'error'), fc.jsonValue()),
        reason: fc.oneof(fc.string(), fc.jsonValue()),
        criteria: fc.oneof(fc.constantFrom(...Object.values(TOPICS)), fc.jsonValue()),
        _criteria: fc.jsonValue(),
        extension: fc.jsonValue(),
        channel: fc.oneof(
          fc.dictionary(
            fc.constantFrom('type', 'endpoint', 'payload', '_payload', 'header', 'extension'),
            fc.jsonValue(),
          ),
          fc.jsonValue(),
        ),
      },
      { requiredKeys: ['resourceType'] },
    );
    fc.assert(
      fc.property(fc.oneof(near, fc.jsonValue()), (v) => {
        try {
          subscriptionFromFhir(v, { hmacSecret: 'whsec_generatedsecret0123456789abcdef' });
        } catch (err) {
          expect(err).toMatchObject({ code: 'HUB_INPUT_INVALID' });
        }
      }),
      { numRuns: 500 },
    );
  });

  it('given a secret the signer cannot use, when mapped, then refused naming the extension', () => {
    const r = igExample(
      {},
      {
        header: undefined,
        extension: [{ url: HUB_EXT.hmacSecret, valueString: 'not base64 at all, but long enough' }],
      },
    );
    expect(() => subscriptionFromFhir(r)).toThrow(/subscription-hmac-secret: secret must be base64/);
  });

  it('given unsupported or invalid elements, when mapped, then refused naming the element, never the value', () => {
    const phi = 'MRN-SECRET-4711';
    const cases: [unknown, RegExp][] = [
      [{ resourceType: 'Patient' }, /resourceType must be Subscription/],
      [
        igExample({ criteria: `Encounter?patient=${phi}` }),
        /Subscription.criteria must be the canonical URL/,
      ],
      [igExample({ end: '2027-01-01T00:00:00Z' }), /Subscription.end is not supported/],
      [igExample({ status: 'error' }), /Subscription.status must be requested, active or off/],
      [igExample({ reason: undefined }), /Subscription.reason is required/],
      [igExample({}, { type: 'websocket' }), /Subscription.channel.type: only rest-hook/],
      [
        igExample({}, { endpoint: `http://${phi}.example.org/` }),
        /Subscription.channel.endpoint: endpoint must be https/,
      ],
      [
        igExample({}, { payload: 'application/fhir+xml' }),
        /Subscription.channel.payload: only application\/fhir\+json/,
      ],
      [
        igExample({}, { header: [`X-Patient: ${phi}`] }),
        /Subscription.channel.header: only one "Authorization: Bearer/,
      ],
      [igExample({}, { header: ['Authorization: Bearer short'] }), /Subscription.channel.header: Too small/],
      [
        igExample({}, { extension: [{ url: BACKPORT_EXT.heartbeat, valueUnsignedInt: 100_000 }] }),
        /backport-heartbeat-period: Too big/,
      ],
      [igExample({}, { modifierExtension: [] }), /Subscription.channel.modifierExtension is not supported/],
      [
        igExample({
          _criteria: {
            extension: [{ url: BACKPORT_EXT.filter, valueString: `Encounter?identifier=${phi}` }],
          },
        }),
        /unsupported filter parameter 'identifier'/,
      ],
      [
        igExample({
          _criteria: { extension: [{ url: BACKPORT_EXT.filter, valueString: `Patient?patient=${phi}` }] },
        }),
        /the resource type does not match the topic/,
      ],
      [
        igExample({ _criteria: { extension: [{ url: BACKPORT_EXT.filter, valueString: `code=${phi}` }] } }),
        /code filters only the ServiceRequest and DiagnosticReport topics/,
      ],
      [
        igExample({
          _criteria: { extension: [{ url: BACKPORT_EXT.filter, valueString: 'event=OrderPlaced' }] },
        }),
        /event is not an event type of the topic/,
      ],
      [
        igExample({
          _criteria: {
            extension: [
              { url: BACKPORT_EXT.filter, valueString: 'patient=A' },
              { url: BACKPORT_EXT.filter, valueString: 'patient=B' },
            ],
          },
        }),
        /parameter 'patient' given more than once/,
      ],
      [
        igExample({ extension: [{ url: HUB_EXT.start, valueString: phi }] }),
        /must have valueCode now\|beginning/,
      ],
    ];
    for (const [resource, message] of cases) {
      let thrown: unknown;
      try {
        subscriptionFromFhir(resource);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, String(message)).toMatchObject({ code: 'HUB_INPUT_INVALID' });
      expect((thrown as Error).message).toMatch(message);
      expect((thrown as Error).message).not.toContain(phi);
      expect((thrown as Error).message).not.toContain('secret-token');
    }
  });
});
