import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The audit trail's own metrics, registered on the process registry by the
 * API. Labels are reason codes only. Reused when already registered (a test
 * builds several APIs on one registry).
 */
export interface AuditMetrics {
  /** Audit records sent to the audit DLQ, by reason code: each one is a gap in the table. */
  deadLetters: Counter<'reason'>;
  /** Records on the audit topic not yet appended or dead-lettered (committed vs end offsets). */
  lag: Gauge;
}

export function createAuditMetrics(registry: Registry): AuditMetrics {
  const deadLetters =
    (registry.getSingleMetric('hub_audit_dead_letters_total') as Counter<'reason'> | undefined) ??
    new Counter({
      name: 'hub_audit_dead_letters_total',
      help: 'Audit records the audit projector could not append and sent to the audit dead-letter topic, by reason',
      labelNames: ['reason'],
      registers: [registry],
    });
  const lag =
    (registry.getSingleMetric('hub_audit_lag') as Gauge | undefined) ??
    new Gauge({
      name: 'hub_audit_lag',
      help: 'Records on the audit topic not yet in the audit table nor dead-lettered',
      registers: [registry],
    });
  return { deadLetters, lag };
}
