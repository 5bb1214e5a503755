/**
 * The rules of the Subscriptions Backport IG (R4) the hub's notifications
 * must meet, written from the IG's text (no network to fetch its package),
 * plus base R4 validation by @medplum/core: for the mapper's unit tests and
 * for the bundles a receiver gets from the running delivery service.
 * Call loadFhirDefinitions() (libs/fhir/validate.ts) first.
 */
import { validateResource } from '@medplum/core';
import type { Bundle, Parameters, Resource } from '@medplum/fhirtypes';
import { expect } from 'vitest';
import { BACKPORT_NOTIFICATION, BACKPORT_STATUS } from '../../libs/delivery/fhir.js';
import type { RestHookChannel, Subscription } from '../../libs/delivery/model.js';

const param = (p: Parameters, name: string) => (p.parameter ?? []).find((x) => x.name === name);

/** The IG's order of the status parameters (backport-subscription-status-r4 slices). */
const STATUS_ORDER = [
  'subscription',
  'topic',
  'status',
  'type',
  'events-since-subscription-start',
  'notification-event',
  'error',
];

/**
 * The rules of backport-subscription-status-r4 the hub's receivers rely on, written from the
 * IG's text (no network to fetch the package): required parameters, their types, their order.
 */
export function expectStatusParameters(p: Resource | undefined, sub: Subscription, type: string): Parameters {
  expect(p?.resourceType).toBe('Parameters');
  const params = p as Parameters;
  expect(params.meta?.profile).toEqual([BACKPORT_STATUS]);
  const names = (params.parameter ?? []).map((x) => x.name);
  expect(names).toEqual(STATUS_ORDER.filter((n) => names.includes(n)));
  expect(param(params, 'subscription')?.valueReference?.reference).toMatch(
    new RegExp(`/Subscription/${sub.id}$`),
  );
  expect(param(params, 'topic')?.valueCanonical).toBe((sub.channel as RestHookChannel).topic);
  expect(['requested', 'active', 'error', 'off']).toContain(param(params, 'status')?.valueCode);
  expect(param(params, 'type')?.valueCode).toBe(type);
  expect(param(params, 'events-since-subscription-start')?.valueString).toMatch(/^\d+$/);
  validateResource(params);
  return params;
}

/** backport-subscription-notification-r4: a history bundle, the status first, every entry with request and response. */
export function expectBackportNotification(
  b: Bundle,
  sub: Subscription,
  type: string,
  timestamp?: string,
): Parameters {
  validateResource(b);
  expect(b.meta?.profile).toEqual([BACKPORT_NOTIFICATION]);
  expect(b.type).toBe('history');
  if (timestamp) expect(b.timestamp).toBe(timestamp);
  else expect(Number.isNaN(Date.parse(b.timestamp ?? ''))).toBe(false);
  for (const e of b.entry ?? []) {
    expect(e.request, 'history entries carry request (bdl-3)').toBeDefined();
    expect(e.response, 'history entries carry response (bdl-4)').toBeDefined();
    expect(e.fullUrl).toMatch(/^(urn:uuid:|https:\/\/)/);
  }
  return expectStatusParameters(b.entry?.[0]?.resource, sub, type);
}
