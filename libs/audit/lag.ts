import type { KafkaClient } from '../kafka/client.js';
import type { Logger } from '../telemetry/logger.js';
import { toHubError } from '../errors/index.js';

/**
 * Audit lag: records on the audit topic that the projector has not yet
 * appended or dead-lettered, i.e. the topic's end offsets minus the
 * projector group's committed offsets (the standard consumer-lag measure;
 * the projector commits only after a batch is in the table or on the DLQ).
 * Read from the broker, so it is the same figure whether the API, `hub
 * status` or a test asks.
 */
export interface AuditLag {
  /** Records not yet in the table nor dead-lettered. */
  lag: number;
  /** Sum of the committed positions (the partition start where nothing is committed). */
  committed: number;
  /** Sum of the end offsets. */
  end: number;
}

export async function auditLag(kafka: KafkaClient, topic: string, groupId: string): Promise<AuditLag> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
    let lag = 0n;
    let pos = 0n;
    let end = 0n;
    for (const o of ends) {
      const high = BigInt(o.high);
      const low = BigInt(o.low);
      const c = at.get(o.partition) ?? -1n;
      // -1: nothing committed yet, the group starts at the beginning.
      const p = c < low ? low : c > high ? high : c;
      lag += high - p;
      pos += p;
      end += high;
    }
    return { lag: Number(lag), committed: Number(pos), end: Number(end) };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export interface AuditLagLimits {
  /** More records than this behind: not ready. */
  maxLag: number;
  /** Behind and the committed position has not moved for this long: not ready (stalled). */
  stallMs: number;
}

export type AuditLagVerdict = { ok: true; detail?: string } | { ok: false; detail: string };

/**
 * Readiness from successive lag readings. Pure: state in, verdict out.
 * "Stalled" is judged on the committed position, not on the lag figure: under
 * steady traffic the lag can hover above zero while the table grows fine.
 */
export class AuditLagTracker {
  private last: (AuditLag & { at: number }) | null = null;
  private movedAt = 0;
  private failure: string | null = null;

  constructor(private readonly limits: AuditLagLimits) {}

  observe(l: AuditLag, now: number): void {
    if (!this.last || l.committed !== this.last.committed || l.lag === 0) this.movedAt = now;
    this.last = { ...l, at: now };
    this.failure = null;
  }

  /** The reading failed (Kafka down): after `staleMs` without a reading, the lag is unknown. */
  failed(code: string): void {
    this.failure = code;
  }

  current(): AuditLag | null {
    return this.last;
  }

  verdict(now: number, staleMs: number): AuditLagVerdict {
    const l = this.last;
    if (!l)
      return {
        ok: false,
        detail: this.failure ? `audit lag unknown (${this.failure})` : 'measuring audit lag',
      };
    if (now - l.at > staleMs)
      return {
        ok: false,
        detail: `audit lag unknown for ${now - l.at} ms (${this.failure ?? 'no reading'})`,
      };
    if (l.lag > this.limits.maxLag)
      return { ok: false, detail: `audit lag ${l.lag} > ${this.limits.maxLag}` };
    const still = now - this.movedAt;
    if (l.lag > 0 && still >= this.limits.stallMs) {
      return { ok: false, detail: `audit lag ${l.lag}, projector position unchanged for ${still} ms` };
    }
    return { ok: true, detail: `audit lag ${l.lag}` };
  }
}

export interface AuditLagMonitor {
  check(): AuditLagVerdict;
  current(): AuditLag | null;
  stop(): void;
}

/**
 * Reads the lag every `intervalMs`, feeding the tracker and `onLag` (the
 * gauge); resolves after the first reading, so readiness has a figure from
 * the start.
 */
export async function startAuditLagMonitor(opts: {
  kafka: KafkaClient;
  topic: string;
  groupId: string;
  limits: AuditLagLimits;
  intervalMs: number;
  logger: Logger;
  onLag?(l: AuditLag): void;
  now?: () => number;
}): Promise<AuditLagMonitor> {
  const now = opts.now ?? Date.now;
  const tracker = new AuditLagTracker(opts.limits);
  let running = false;
  let stopped = false;
  const read = async (): Promise<void> => {
    if (running || stopped) return;
    running = true;
    try {
      const l = await auditLag(opts.kafka, opts.topic, opts.groupId);
      tracker.observe(l, now());
      opts.onLag?.(l);
    } catch (err) {
      const code = toHubError(err).code;
      tracker.failed(code);
      opts.logger.warn({ code }, 'could not read the audit lag');
    } finally {
      running = false;
    }
  };
  await read();
  const timer = setInterval(() => void read(), opts.intervalMs);
  timer.unref();
  return {
    check: () => tracker.verdict(now(), Math.max(3 * opts.intervalMs, 15_000)),
    current: () => tracker.current(),
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
