import type { ReadinessCheck } from '../../libs/http/index.js';
import type { EventProducer } from '../../libs/kafka/producer.js';

/**
 * When a write last landed in Kafka and when one last failed or timed out:
 * `/ready` says kafka is not ok from a failure until the next write lands.
 */
export class KafkaWriteHealth {
  private lastOkAt = 0;
  private lastFailAt = 0;

  constructor(private readonly clock: () => number) {}

  landed(): void {
    this.lastOkAt = this.clock();
  }

  failed(): void {
    this.lastFailAt = this.clock();
  }

  /** The last write outcome was a failure. */
  failing(): boolean {
    return this.lastFailAt > this.lastOkAt;
  }
}

/** The adapter's `/ready` checks: the MLLP listener is up, and Kafka takes its writes. */
export function adapterReadiness(o: {
  listening: () => boolean;
  producer: Pick<EventProducer, 'health'>;
  writes: KafkaWriteHealth;
}): Record<'mllp' | 'kafka', ReadinessCheck> {
  return {
    mllp: () => Promise.resolve(o.listening() ? { ok: true } : { ok: false, detail: 'not listening' }),
    kafka: () => {
      const h = o.producer.health();
      if (!h.ok) return Promise.resolve(h);
      return Promise.resolve(
        o.writes.failing() ? { ok: false, detail: 'last write to Kafka failed or timed out' } : { ok: true },
      );
    },
  };
}
