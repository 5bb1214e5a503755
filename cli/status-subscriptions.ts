/**
 * The subscriptions section of `hub status` as text (libs/ops/subscriptions.ts
 * reads and shapes it).
 */
import type { SubscriptionHealth, SubscriptionsStatus } from '../libs/ops/subscriptions.js';

const HEALTHS: readonly SubscriptionHealth[] = ['active', 'error', 'paused'];

/** The section's title and table rows for `hub status`; null: Postgres was not reachable. Pure. */
export function subscriptionsSection(s: SubscriptionsStatus | null): {
  title: string;
  rows: Record<string, unknown>[];
} {
  if (!s) return { title: 'subscriptions (not read: Postgres unreachable)', rows: [] };
  if (!s.present) {
    return { title: `subscriptions (none: schema ${s.schema} does not exist yet)`, rows: [] };
  }
  const counts = HEALTHS.map((h) => `${s.counts[h]} ${h}`).join(', ');
  return {
    title: `subscriptions (${s.subscriptions.length}: ${counts}; hub subscriptions status <id>)`,
    rows: s.subscriptions.map((r) => ({
      id: r.id,
      name: r.name,
      channel: r.channel,
      health: r.health,
      delivered: r.delivered,
      deadLetters: r.deadLetters,
      lastDeliveredAt: r.lastDeliveredAt ?? '',
      failing: r.failingSince ? `${r.lastFailureReason ?? 'unknown'} since ${r.failingSince}` : '',
    })),
  };
}
