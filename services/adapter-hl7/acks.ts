import { performance } from 'node:perf_hooks';
import { ackCodesFor, buildAck, encodeAck, type AckCode, type SniffedMsh } from '../../libs/hl7/ack.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';
import type { MessageLabels } from './labels.js';
import type { Result } from './result.js';

export interface AckDeps {
  clock: () => number;
  /** MSH-10 of each ACK (and the raw id of a message without MSH-10). */
  idGenerator: () => string;
  metrics: HubMetrics;
}

/**
 * The ACKs for one message's result, in order (original or enhanced mode:
 * libs/hl7/ack.ts ackCodesFor), each counted with the time since its frame
 * arrived (t0, performance.now()). Only error codes carry the ERR.
 */
export function acksFor(
  deps: AckDeps,
  msh: SniffedMsh | null,
  res: Result,
  labels: MessageLabels,
  t0: number,
): Buffer[] {
  const codes: AckCode[] = ackCodesFor(msh, res.disposition);
  const now = deps.clock();
  const secs = (performance.now() - t0) / 1000;
  return codes.map((code) => {
    deps.metrics.hl7Acked.inc({ source: labels.source, type: labels.type, code });
    deps.metrics.hl7AckSeconds.observe({ code }, secs);
    const error = code === 'AA' || code === 'CA' ? undefined : res.error;
    return encodeAck(
      buildAck(msh, { code, ackControlId: deps.idGenerator(), now, ...(error ? { error } : {}) }),
      msh?.charset,
    );
  });
}
