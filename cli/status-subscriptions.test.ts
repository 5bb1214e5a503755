import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { subscriptionInputSchema, type Subscription } from '../libs/delivery/model.js';
import type { DeliveryStatus } from '../libs/delivery/store.js';
import { statusText, type HubStatus } from './ops.js';
import {
  subscriptionProblems,
  summarizeSubscriptions,
  type SubscriptionHealth,
} from '../libs/ops/subscriptions.js';
import { subscriptionsSection } from './status-subscriptions.js';

const SCHEMA = 'delivery';

function subscription(id: string, name: string, state: Subscription['state']): Subscription {
  const input = subscriptionInputSchema.parse({
    name,
    channel: { type: 'mllp', host: 'billing.example', port: 2575 },
  });
  return {
    ...input,
    id,
    state,
    generation: 1,
    createdAt: '2026-12-06T05:00:00.000Z',
    updatedAt: '2026-12-06T05:00:00.000Z',
  };
}

function status(health: SubscriptionHealth, o: Partial<DeliveryStatus> = {}): DeliveryStatus {
  return {
    eventsSinceStart: 0,
    lastDeliveredAt: null,
    lastHeartbeatAt: null,
    failingSince: null,
    lastFailureReason: null,
    deadLetters: 0,
    health,
    ...o,
  };
}

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const C = '00000000-0000-4000-8000-00000000000c';

/** Three subscriptions: one delivering, one whose receiver is down with dead letters, one paused. */
function threeSubscriptions() {
  return summarizeSubscriptions(
    SCHEMA,
    [
      subscription(A, 'billing ADT', 'active'),
      subscription(B, 'registry feed', 'active'),
      subscription(C, 'care app', 'paused'),
    ],
    new Map([
      [A, status('active', { eventsSinceStart: 10_000, lastDeliveredAt: '2026-12-06T06:00:00.000Z' })],
      [
        B,
        status('error', {
          eventsSinceStart: 42,
          deadLetters: 2,
          failingSince: '2026-12-06T05:50:00.000Z',
          lastFailureReason: 'econnrefused',
        }),
      ],
      [C, status('paused', { eventsSinceStart: 7 })],
    ]),
  );
}

describe('summarizeSubscriptions', () => {
  it('given subscriptions and their delivery states, then each shows its health, deliveries and dead letters, counted by health', () => {
    // given / when
    const s = threeSubscriptions();
    // then
    expect(s.present).toBe(true);
    expect(s.counts).toEqual({ active: 1, error: 1, paused: 1 });
    expect(s.subscriptions.map((r) => [r.id, r.health, r.delivered, r.deadLetters])).toEqual([
      [A, 'active', 10_000, 0],
      [B, 'error', 42, 2],
      [C, 'paused', 7, 0],
    ]);
    expect(s.subscriptions[0]).toMatchObject({ name: 'billing ADT', channel: 'mllp' });
  });

  it('given no delivery schema, then the section is there, empty, and says the schema does not exist', () => {
    // given / when
    const s = summarizeSubscriptions(SCHEMA, null, new Map());
    // then
    expect(s).toEqual({
      schema: SCHEMA,
      present: false,
      counts: { active: 0, error: 0, paused: 0 },
      subscriptions: [],
    });
    expect(subscriptionsSection(s)).toEqual({
      title: 'subscriptions (none: schema delivery does not exist yet)',
      rows: [],
    });
    expect(subscriptionProblems(s)).toEqual([]);
  });

  it('given a subscription without a state row, then it counts by its own state with nothing delivered', () => {
    const s = summarizeSubscriptions(SCHEMA, [subscription(C, 'care app', 'paused')], new Map());
    expect(s.subscriptions[0]).toMatchObject({ health: 'paused', delivered: 0, deadLetters: 0 });
    expect(s.counts.paused).toBe(1);
  });

  it('property: the counts add up to the subscriptions, and each health is counted as often as it occurs', () => {
    const healths = fc.constantFrom<SubscriptionHealth>('active', 'error', 'paused');
    fc.assert(
      fc.property(fc.array(healths, { maxLength: 30 }), (hs) => {
        // given subscriptions with these healths
        const subs = hs.map((h, i) =>
          subscription(
            `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
            `s${i}`,
            h === 'paused' ? 'paused' : 'active',
          ),
        );
        const statuses = new Map(subs.map((sub, i) => [sub.id, status(hs[i]!)]));
        // when
        const s = summarizeSubscriptions(SCHEMA, subs, statuses);
        // then
        expect(s.counts.active + s.counts.error + s.counts.paused).toBe(hs.length);
        for (const h of ['active', 'error', 'paused'] as const) {
          expect(s.counts[h]).toBe(hs.filter((x) => x === h).length);
        }
      }),
    );
  });
});

describe('subscriptionProblems', () => {
  it('given a failing receiver and dead letters, then each is a problem naming the command that shows more; a paused one is none', () => {
    expect(subscriptionProblems(threeSubscriptions())).toEqual([
      `subscription ${B} (registry feed): receiver failing since 2026-12-06T05:50:00.000Z (econnrefused): run \`hub subscriptions status ${B}\``,
      `2 dead letter(s) on subscription ${B} (registry feed): run \`hub subscriptions dead-letters ${B}\``,
    ]);
  });
});

describe('hub status text', () => {
  const base: HubStatus = {
    at: '2026-12-06T06:00:00.000Z',
    dependencies: [],
    services: [],
    servicesFrom: 'hub up defaults',
    topics: [],
    consumerGroups: [],
    projections: [],
    deadLetters: [],
    sources: [],
    unregisteredAuthorities: [],
    problems: [],
  };

  it('given subscriptions, then hub status shows their count by health and one row each with health, delivered, dead letters and the failure', () => {
    // when
    const text = statusText({ ...base, subscriptions: threeSubscriptions() });
    // then
    const section = text.split('\n\n').find((x) => x.startsWith('== subscriptions'));
    expect(section?.split('\n')).toEqual([
      '== subscriptions (3: 1 active, 1 error, 1 paused; hub subscriptions status <id>)',
      expect.stringMatching(/^ID +NAME +CHANNEL +HEALTH +DELIVERED +DEADLETTERS +LASTDELIVEREDAT +FAILING$/),
      expect.stringMatching(
        new RegExp(`^${A} +billing ADT +mllp +active +10000 +0 +2026-12-06T06:00:00.000Z$`),
      ),
      expect.stringMatching(
        new RegExp(`^${B} +registry feed +mllp +error +42 +2 +econnrefused since 2026-12-06T05:50:00.000Z$`),
      ),
      expect.stringMatching(new RegExp(`^${C} +care app +mllp +paused +7 +0$`)),
    ]);
  });

  it('given no delivery schema, then hub status says there are none', () => {
    const text = statusText({ ...base, subscriptions: summarizeSubscriptions(SCHEMA, null, new Map()) });
    expect(text).toContain('== subscriptions (none: schema delivery does not exist yet)\n(none)');
  });

  it('given Postgres was not reachable, then the section says it was not read', () => {
    const text = statusText({ ...base, subscriptions: null });
    expect(text).toContain('== subscriptions (not read: Postgres unreachable)\n(none)');
  });
});
