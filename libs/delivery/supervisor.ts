/**
 * The delivery service's loop over subscriptions: one worker per active
 * subscription, restarted when its generation moves (pause, resume, replay,
 * update), stopped when it is paused or deleted; redrives of dead letters
 * and rest-hook heartbeats between batches. A subscription whose worker
 * fails to start is tried again on the next poll; it never holds up another.
 */
import type { Knex } from 'knex';
import { toHubError } from '../errors/index.js';
import { deleteGroupIfUnused } from '../kafka/groups.js';
import { scanTopic } from '../kafka/scan.js';
import { idempotencyKey, type ChannelSender, type Subscription } from './model.js';
import { destinationAllowed, type DestinationRule } from './destinations.js';
import { markFailing, markHeartbeat } from './progress.js';
import { listSubscriptions } from './store.js';
import {
  createSubscriptionWorker,
  deliveryAudit,
  deliveryGroupId,
  type SubscriptionWorker,
  type WorkerDeps,
} from './worker.js';

export interface SupervisorOptions extends WorkerDeps {
  /** The channel sender of a subscription (channels/index.ts). */
  senderFor(sub: Subscription): ChannelSender;
  pollMs?: number;
  /** DELIVERY_ALLOWED_DESTINATIONS (null: any destination). */
  destinations?: readonly DestinationRule[] | null;
}

export interface DeliverySupervisor {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Subscriptions running now, by id. */
  running(): ReadonlyMap<string, SubscriptionWorker>;
  /** One reconciliation pass (also what the timer runs). */
  reconcile(): Promise<void>;
}

interface RedriveRow {
  id: string;
  topic: string;
  partition: number;
  offset: string;
  event_number: number;
}

export function createDeliverySupervisor(o: SupervisorOptions): DeliverySupervisor {
  const workers = new Map<string, SubscriptionWorker>();
  const log = o.logger.child({ component: 'delivery-supervisor' });
  let timer: NodeJS.Timeout | null = null;
  let pass: Promise<void> = Promise.resolve();
  let stopped = false;
  /** Subscription generations refused for their destination (said once each). */
  const refused = new Set<string>();
  /** Subscriptions whose redrive or heartbeat is in flight. */
  const sideWork = new Set<string>();

  async function stopWorker(id: string): Promise<void> {
    const w = workers.get(id);
    if (!w) return;
    workers.delete(id);
    await w.stop().catch((err: unknown) => log.warn({ code: toHubError(err).code }, 'worker stop failed'));
  }

  async function ensureWorker(sub: Subscription): Promise<void> {
    const current = workers.get(sub.id);
    if (current && current.subscription.generation === sub.generation) return;
    if (current) await stopWorker(sub.id);
    if (!destinationAllowed(o.destinations ?? null, sub.channel)) return refuseDestination(o, sub, refused);
    // A consumer that gave up is dropped: the next pass starts the subscription afresh.
    const deps = { ...o, onFatal: (id: string) => void stopWorker(id) };
    let w: SubscriptionWorker;
    try {
      w = createSubscriptionWorker(deps, sub, o.senderFor(sub));
    } catch (err) {
      log.warn(
        { subscription: sub.id, code: toHubError(err).code },
        'subscription channel could not be set up',
      );
      return;
    }
    try {
      await w.start();
      workers.set(sub.id, w);
      log.info({ subscription: sub.id, generation: sub.generation }, 'subscription delivering');
    } catch (err) {
      await w.stop().catch(() => undefined);
      log.warn(
        { subscription: sub.id, code: toHubError(err).code },
        'subscription could not start; will retry',
      );
    }
  }

  async function reconcileOnce(): Promise<void> {
    const subs = await listSubscriptions(o.db, o.schema);
    const ids = new Set(subs.map((s) => s.id));
    for (const id of [...workers.keys()]) {
      if (!ids.has(id)) {
        await stopWorker(id);
        await deleteGroupIfUnused(o.kafka, deliveryGroupId(id)).catch(() => false);
        // A deleted subscription's series go with it (counters stay: they are history).
        o.metrics.failing.remove({ subscription: id });
        o.metrics.lastSuccess.remove({ subscription: id });
      }
    }
    showSubscriptions(o.metrics, subs);
    for (const sub of subs) {
      if (stopped) return;
      if (sub.state === 'paused') await stopWorker(sub.id);
      else await ensureWorker(sub);
    }
    // Side by side and not awaited: a receiver that is slow to answer a
    // redrive or a heartbeat holds up no other subscription, nor this pass.
    for (const w of workers.values()) {
      const id = w.subscription.id;
      if (sideWork.has(id)) continue;
      sideWork.add(id);
      void redrive(o, w)
        .catch((err: unknown) =>
          log.warn({ subscription: id, code: toHubError(err).code }, 'redrive failed; will retry'),
        )
        .then(() => heartbeat(o, w))
        .catch((err: unknown) =>
          log.warn({ subscription: id, code: toHubError(err).code }, 'heartbeat failed'),
        )
        .finally(() => sideWork.delete(id));
    }
  }

  const tick = (): void => {
    pass = pass
      .then(() => (stopped ? undefined : reconcileOnce()))
      .catch((err: unknown) =>
        log.warn({ code: toHubError(err).code }, 'subscription reconciliation failed; will retry'),
      );
  };

  return {
    running: () => workers,
    reconcile: () => {
      tick();
      return pass;
    },
    async start() {
      stopped = false;
      await reconcileOnce();
      timer = setInterval(tick, o.pollMs ?? 1_000);
      timer.unref();
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = null;
      await pass;
      for (const id of [...workers.keys()]) await stopWorker(id);
    },
  };
}

/**
 * The subscriptions gauge, reset and refilled with no await between: a scrape
 * never sees a subscription missing (the alert rules join on it to leave
 * paused and deleted subscriptions out).
 */
function showSubscriptions(metrics: SupervisorOptions['metrics'], subs: readonly Subscription[]): void {
  metrics.subscriptions.reset();
  for (const sub of subs) {
    metrics.subscriptions.set({ subscription: sub.id, channel: sub.channel.type, state: sub.state }, 1);
  }
}

/** Delivers again the dead letters an operator asked to redrive (out of log order: they were skipped). */
async function redrive(o: SupervisorOptions, w: SubscriptionWorker): Promise<void> {
  const sub = w.subscription;
  const rows = await o.db
    .withSchema(o.schema)
    .from('dead_letters')
    .where({ subscription_id: sub.id })
    .whereNotNull('redrive_requested_at')
    .whereNull('redriven_at')
    .orderBy('id')
    .limit(100)
    .select<RedriveRow[]>('id', 'topic', 'partition', 'offset', 'event_number');
  for (const row of rows) {
    const offset = BigInt(row.offset);
    const [found] = await scanTopic(o.kafka, row.topic, {
      range: (p) => (p === row.partition ? { from: offset, to: offset + 1n } : null),
      // Under the subscription's own group prefix: the only groups the delivery principal may use.
      groupPrefix: `${deliveryGroupId(sub.id)}.scan-`,
    });
    if (!found?.value) {
      await markRedriven(o.db, o.schema, row.id, 'gone-from-log', o.now());
      continue;
    }
    const event = await o.codec.decode(found.value);
    const record = {
      topic: row.topic,
      partition: row.partition,
      offset,
      key: null,
      timestamp: found.timestamp,
      event,
    };
    const key = idempotencyKey(sub.id, event.data.meta.eventId);
    const outcome = await w.withChannel((s) =>
      s.deliver({ subscription: sub, record, eventNumber: row.event_number, idempotencyKey: key }),
    );
    if (outcome.kind === 'delivered') {
      const audit = deliveryAudit(o, sub, event, key);
      if (audit) await o.audit.recordAll([audit]);
      await markRedriven(o.db, o.schema, row.id, 'delivered', o.now());
    } else {
      // Left as it was: an operator may redrive it again.
      await o.db
        .withSchema(o.schema)
        .from('dead_letters')
        .where({ id: row.id })
        .update({ redrive_requested_at: null, redrive_outcome: outcome.reason });
    }
  }
}

async function heartbeat(o: SupervisorOptions, w: SubscriptionWorker): Promise<void> {
  const sub = w.subscription;
  if (sub.channel.type !== 'rest-hook' || sub.channel.heartbeatSeconds === 0) return;
  const row = await o.db
    .withSchema(o.schema)
    .from('delivery_state')
    .where({ subscription_id: sub.id })
    .first<
      { last_delivered_at: Date | null; last_heartbeat_at: Date | null; events_delivered: string } | undefined
    >('last_delivered_at', 'last_heartbeat_at', 'events_delivered');
  if (!row) return;
  const last = Math.max(
    row.last_delivered_at?.getTime() ?? 0,
    row.last_heartbeat_at?.getTime() ?? 0,
    Date.parse(sub.createdAt),
  );
  if (o.now() - last < sub.channel.heartbeatSeconds * 1000) return;
  const outcome = await w.withChannel((s) =>
    s.heartbeat ? s.heartbeat(sub, Number(row.events_delivered)) : Promise.resolve(null),
  );
  if (outcome?.kind === 'delivered') await markHeartbeat(o.db, o.schema, sub.id, new Date(o.now()));
}

/**
 * A subscription whose receiver the site does not allow is never started:
 * no event of it leaves. It shows as failing with the reason, once per
 * generation (an update to an allowed destination starts it).
 */
async function refuseDestination(
  o: SupervisorOptions,
  sub: Subscription,
  refused: Set<string>,
): Promise<void> {
  const key = `${sub.id}:${sub.generation}`;
  if (refused.has(key)) return;
  refused.add(key);
  o.logger.warn({ subscription: sub.id }, 'destination not in DELIVERY_ALLOWED_DESTINATIONS; not delivering');
  o.metrics.failing.set({ subscription: sub.id }, 1);
  await markFailing(o.db, o.schema, sub.id, 'destination-not-allowed', new Date(o.now()));
}

async function markRedriven(
  db: Knex,
  schema: string,
  id: string,
  outcome: string,
  now: number,
): Promise<void> {
  await db
    .withSchema(schema)
    .from('dead_letters')
    .where({ id })
    .update({ redriven_at: new Date(now), redrive_outcome: outcome });
}
