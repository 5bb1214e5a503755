import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The matcher's metrics. Labels are event types, who decided (matcher or
 * steward) and command outcomes: never a patient, a score or a field value.
 */
export interface IdentityMetrics {
  decisions: Counter<'type' | 'by'>;
  /** Normalising, blocking, scoring and planning one patient event (not the publish). */
  matchSeconds: Histogram;
  commands: Counter<'outcome'>;
}

export function createIdentityMetrics(
  registry: Registry,
  reviewQueue: () => Promise<number>,
): IdentityMetrics {
  const registers = [registry];
  new Gauge({
    name: 'hub_identity_review_queue',
    help: 'Proposed pairs of active records waiting for a data steward',
    registers,
    // Counted when scraped: one indexed count, and never stale.
    async collect() {
      this.set(await reviewQueue());
    },
  });
  return {
    decisions: new Counter({
      name: 'hub_identity_decisions_total',
      help: 'Identity decisions published, by event type and by whom (matcher or steward)',
      labelNames: ['type', 'by'],
      registers,
    }),
    matchSeconds: new Histogram({
      name: 'hub_identity_match_seconds',
      help: 'Matching one patient event: normalise, block, score, decide',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    commands: new Counter({
      name: 'hub_identity_commands_total',
      help: 'Data steward commands handled, by outcome (done or refused)',
      labelNames: ['outcome'],
      registers,
    }),
  };
}
