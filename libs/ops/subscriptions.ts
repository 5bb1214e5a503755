/**
 * The subscriptions section of `hub status` and of the console's flow page
 * (issue 20): how many outbound subscriptions there are by health and, for
 * each, its health, the events it delivered and its open dead letters, read
 * from the delivery schema (libs/delivery/store.ts). Read only: `hub
 * subscriptions` changes them and shows one in full. Kept apart from
 * status.ts so that its shaping is pure and tested on its own.
 */
import type { Knex } from '../db/index.js';
import type { Subscription } from '../delivery/model.js';
import { deliveryStatus, listSubscriptions, type DeliveryStatus } from '../delivery/store.js';

export type SubscriptionHealth = DeliveryStatus['health'];

export interface SubscriptionStatusRow {
  id: string;
  name: string;
  channel: Subscription['channel']['type'];
  health: SubscriptionHealth;
  /** Events delivered since the subscription started (a replay does not reset it). */
  delivered: number;
  /** Dead letters not redriven yet. */
  deadLetters: number;
  lastDeliveredAt: string | null;
  failingSince: string | null;
  /** A reason code (econnrefused, http-503, timeout): never a receiver's words. */
  lastFailureReason: string | null;
}

export interface SubscriptionsStatus {
  schema: string;
  /** False while the delivery schema has no subscriptions table (nothing has created it yet). */
  present: boolean;
  counts: Record<SubscriptionHealth, number>;
  subscriptions: SubscriptionStatusRow[];
}

/**
 * The section from the subscriptions (null: the schema does not exist) and
 * their delivery states. A subscription without a state row (deleted
 * between the two reads, or written by hand) counts by its own state with
 * nothing delivered. Pure.
 */
export function summarizeSubscriptions(
  schema: string,
  subs: readonly Subscription[] | null,
  statuses: ReadonlyMap<string, DeliveryStatus>,
): SubscriptionsStatus {
  const rows = (subs ?? []).map((sub): SubscriptionStatusRow => {
    const st = statuses.get(sub.id);
    return {
      id: sub.id,
      name: sub.name,
      channel: sub.channel.type,
      health: st?.health ?? sub.state,
      delivered: st?.eventsSinceStart ?? 0,
      deadLetters: st?.deadLetters ?? 0,
      lastDeliveredAt: st?.lastDeliveredAt ?? null,
      failingSince: st?.failingSince ?? null,
      lastFailureReason: st?.lastFailureReason ?? null,
    };
  });
  const counts = { active: 0, error: 0, paused: 0 };
  for (const r of rows) counts[r.health] += 1;
  return { schema, present: subs !== null, counts, subscriptions: rows };
}

/** What needs an operator: a receiver failing, dead letters waiting; each with the command to look closer. Pure. */
export function subscriptionProblems(s: SubscriptionsStatus): string[] {
  return s.subscriptions.flatMap((r) => [
    ...(r.health === 'error'
      ? [
          `subscription ${r.id} (${r.name}): receiver failing since ${r.failingSince ?? '?'} (${r.lastFailureReason ?? 'unknown'}): run \`hub subscriptions status ${r.id}\``,
        ]
      : []),
    ...(r.deadLetters > 0
      ? [
          `${r.deadLetters} dead letter(s) on subscription ${r.id} (${r.name}): run \`hub subscriptions dead-letters ${r.id}\``,
        ]
      : []),
  ]);
}

/** Reads the section from Postgres; a schema that does not exist yet is no error. */
export async function readSubscriptionsStatus(db: Knex, schema: string): Promise<SubscriptionsStatus> {
  const has = await db.raw<{ rows: unknown[] }>(
    `select 1 from information_schema.tables where table_schema = ? and table_name = 'subscriptions'`,
    [schema],
  );
  if (has.rows.length === 0) return summarizeSubscriptions(schema, null, new Map());
  const subs = await listSubscriptions(db, schema);
  const statuses = new Map<string, DeliveryStatus>();
  for (const sub of subs) {
    const st = await deliveryStatus(db, schema, sub.id);
    if (st) statuses.set(sub.id, st);
  }
  return summarizeSubscriptions(schema, subs, statuses);
}
