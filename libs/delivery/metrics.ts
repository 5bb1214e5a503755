import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Per-subscription delivery metrics. The `subscription` label is the
 * subscription's id (a hub-made UUID, bounded by the subscriptions that
 * exist), `reason` a code (http-503, econnrefused, timeout, hl7-AE): never a
 * patient, an endpoint's path or anything a receiver said.
 */
export interface DeliveryMetrics {
  delivered: Counter<'subscription' | 'channel'>;
  failures: Counter<'subscription' | 'reason'>;
  deadLetters: Counter<'subscription' | 'reason'>;
  /** From the hub's ingest of the event (meta.recordedAt) to the receiver's answer. */
  latency: Histogram<'subscription' | 'channel'>;
  /** Records behind the high watermark after the subscription's last batch (summed over partitions). */
  lag: Gauge<'subscription' | 'topic' | 'partition'>;
  lastSuccess: Gauge<'subscription'>;
  /** 1 while the subscription waits on a receiver it cannot reach. */
  failing: Gauge<'subscription'>;
  /** 1 for each subscription the service runs, with its state. */
  subscriptions: Gauge<'subscription' | 'channel' | 'state'>;
}

export function createDeliveryMetrics(registry: Registry): DeliveryMetrics {
  const registers = [registry];
  return {
    delivered: new Counter({
      name: 'hub_delivery_delivered_total',
      help: 'Events a receiver accepted, per subscription',
      labelNames: ['subscription', 'channel'],
      registers,
    }),
    failures: new Counter({
      name: 'hub_delivery_failures_total',
      help: 'Delivery attempts that failed, by reason code',
      labelNames: ['subscription', 'reason'],
      registers,
    }),
    deadLetters: new Counter({
      name: 'hub_delivery_dead_letters_total',
      help: 'Events dead-lettered per subscription, by reason code',
      labelNames: ['subscription', 'reason'],
      registers,
    }),
    latency: new Histogram({
      name: 'hub_delivery_latency_seconds',
      help: 'From the hub ingesting an event to its receiver accepting it',
      labelNames: ['subscription', 'channel'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers,
    }),
    lag: new Gauge({
      name: 'hub_delivery_lag_records',
      help: 'Records behind the high watermark, per subscription and partition',
      labelNames: ['subscription', 'topic', 'partition'],
      registers,
    }),
    lastSuccess: new Gauge({
      name: 'hub_delivery_last_success_timestamp_seconds',
      help: 'When a receiver last accepted an event of this subscription',
      labelNames: ['subscription'],
      registers,
    }),
    failing: new Gauge({
      name: 'hub_delivery_failing',
      help: '1 while the subscription retries a receiver it cannot reach',
      labelNames: ['subscription'],
      registers,
    }),
    subscriptions: new Gauge({
      name: 'hub_delivery_subscription',
      help: '1 per subscription the delivery service knows, by channel and state',
      labelNames: ['subscription', 'channel', 'state'],
      registers,
    }),
  };
}
