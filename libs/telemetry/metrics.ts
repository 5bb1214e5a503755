import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One metrics registry per process. Labels carry codes and names of topics,
 * consumers and sources, never identifiers or values from messages (PHI).
 */
export interface HubMetrics {
  registry: Registry;
  deadLetters: Counter<'consumer' | 'reason'>;
  eventsApplied: Counter<'consumer' | 'topic'>;
  eventsPublished: Counter<'topic' | 'type'>;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): HubMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    deadLetters: new Counter({
      name: 'hub_dead_letters_total',
      help: 'Records sent to a dead-letter topic, by consumer and reason code',
      labelNames: ['consumer', 'reason'],
      registers: [registry],
    }),
    eventsApplied: new Counter({
      name: 'hub_events_applied_total',
      help: 'Events applied by a consumer (after de-duplication)',
      labelNames: ['consumer', 'topic'],
      registers: [registry],
    }),
    eventsPublished: new Counter({
      name: 'hub_events_published_total',
      help: 'Events acknowledged by Kafka (acks=all)',
      labelNames: ['topic', 'type'],
      registers: [registry],
    }),
  };
}
