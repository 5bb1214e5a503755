import type { IHeaders } from 'kafkajs';
import { ERROR_CODES, toHubError } from '../../libs/errors/index.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import type { AckError } from '../../libs/hl7/ack.js';
import { rawMapContext, type Hl7Mapper, type SenderTimeZones } from '../../libs/hl7/map-context.js';
import type { Hl7Refusal, MapOutcome } from '../../libs/hl7/types.js';
import type { IdentityPolicy } from '../../libs/identity/index.js';
import { withAckDeadline, type EventProducer } from '../../libs/kafka/producer.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';
import { rawHeaders, senderKey, type Inbound } from './raw-record.js';
import { KafkaWriteHealth } from './readiness.js';
import { refusedAs, type RejectReason, type Result } from './result.js';

/**
 * A message not stored is answered as Kafka unavailable, whatever failed
 * (broker down, a refused write, a bug): the sender's fix is the same, resend.
 */
const NOT_STORED = ERROR_CODES.HUB_KAFKA_UNAVAILABLE.hl7;
/** A mapper throw is our bug, answered as one whatever it threw. */
const MAPPER_BUG = ERROR_CODES.HUB_INTERNAL.hl7;

export interface IngestDeps {
  producer: EventProducer;
  log: Logger;
  metrics: HubMetrics;
  clock: () => number;
  policy: IdentityPolicy;
  timeZoneFor: SenderTimeZones;
  mapper: Hl7Mapper;
}

export interface IngestConfig {
  rawTopic: string;
  dlqTopic: string;
  /** How long a write may wait for Kafka's acks before the sender gets an error ACK. */
  ackTimeoutMs: number;
}

/**
 * One message from bytes to a disposition: map it, then publish its raw copy
 * and events (accepted) or keep it as a dead letter (refused); "not stored"
 * when Kafka did not take a write. Input never makes it throw.
 */
export class IngestPipeline {
  /** For `/ready`: whether the last write to Kafka landed. */
  readonly writes: KafkaWriteHealth;

  constructor(
    private readonly deps: IngestDeps,
    private readonly cfg: IngestConfig,
  ) {
    this.writes = new KafkaWriteHealth(deps.clock);
  }

  async ingest(m: Inbound): Promise<Result> {
    let outcome: MapOutcome;
    try {
      outcome = this.deps.mapper(
        m.bytes,
        rawMapContext({
          msh: m.msh,
          recordedAt: m.receivedAt,
          policy: this.deps.policy,
          timeZoneFor: this.deps.timeZoneFor,
          rawTopic: this.cfg.rawTopic,
          rawId: m.rawId,
        }),
      );
    } catch (err) {
      return this.mapperThrew(m, err);
    }
    return outcome.kind === 'mapped' ? this.publish(m, outcome.events) : this.refuse(m, outcome.refusal);
  }

  /** Keeps a refused message or broken frame on the dead-letter topic; false when Kafka did not take it. */
  async deadLetter(m: Inbound, reason: RejectReason, extra: IHeaders): Promise<boolean> {
    const key = m.msh?.controlId ? senderKey(m.msh) : m.rawId;
    this.deps.metrics.hl7Rejected.inc({ reason });
    try {
      await this.deps.producer.publishRaw([
        {
          topic: this.cfg.dlqTopic,
          key,
          value: m.bytes,
          headers: { ...rawHeaders(m), 'hub-reason-code': reason, ...extra },
        },
      ]);
      this.writes.landed();
      return true;
    } catch (err) {
      this.unavailable(err);
      return false;
    }
  }

  /** Not stored (Kafka failed or refused the write): an error ACK, and the sender resends. */
  unavailable(err: unknown): Result {
    const h = toHubError(err);
    this.writes.failed();
    this.deps.log.warn(
      { code: h.code, retriable: h.retriable },
      'message not stored; answering with an error ACK',
    );
    return {
      disposition: 'unavailable',
      error: { hl7ErrorCode: NOT_STORED.code, text: 'Message not stored, resend later', severity: 'E' },
    };
  }

  /** The write's result, or "not yet" once the ack timeout has passed (the write goes on). */
  within(write: Promise<Result>): Promise<Result> {
    return withAckDeadline(write, this.cfg.ackTimeoutMs).catch(() => this.notYetAcknowledged());
  }

  private notYetAcknowledged(): Result {
    this.writes.failed();
    this.deps.log.warn(
      { ackTimeoutMs: this.cfg.ackTimeoutMs },
      'Kafka did not acknowledge in time; answering with an error ACK',
    );
    return {
      disposition: 'unavailable',
      pending: true,
      error: { hl7ErrorCode: NOT_STORED.code, text: 'Message not yet stored, resend later', severity: 'E' },
    };
  }

  /** The raw copy and every event, both acknowledged by Kafka, or nothing is accepted. */
  private async publish(m: Inbound, events: ClinicalEvent[]): Promise<Result> {
    const key = events[0]?.data.patientId ?? (m.msh ? senderKey(m.msh) : m.rawId);
    try {
      await Promise.all([
        this.deps.producer.publishRaw([
          { topic: this.cfg.rawTopic, key, value: m.bytes, headers: rawHeaders(m) },
        ]),
        events.length > 0
          ? this.deps.producer.publish(events, { 'hl7-raw-id': m.rawId })
          : Promise.resolve([]),
      ]);
    } catch (err) {
      return this.unavailable(err);
    }
    this.writes.landed();
    return { disposition: 'accepted' };
  }

  /**
   * A refusal (the mapper's, or the listener's for a sender the connection
   * may not send as), answered only once the message is kept as a dead
   * letter. `text` is ERR-3.2 (PHI-free); the table's wording when omitted.
   */
  async refuse(m: Inbound, r: Hl7Refusal, text?: string): Promise<Result> {
    const error: AckError = {
      hl7ErrorCode: r.hl7ErrorCode,
      severity: 'E',
      ...(r.location ? { location: r.location } : {}),
      ...(text !== undefined ? { text } : {}),
    };
    const loc = r.location
      ? `${r.location.segment}-${r.location.field ?? ''}${r.location.component ? `.${r.location.component}` : ''}`
      : '';
    const kept = await this.deadLetter(m, `${r.error.code}:${r.hl7ErrorCode}`, {
      'hl7-ack-code': r.ack,
      'hl7-error-code': r.hl7ErrorCode,
      'hl7-error-location': loc,
      'hub-error-message': r.error.message,
    });
    if (!kept) return this.unavailable(r.error);
    return { disposition: refusedAs(r.ack), error };
  }

  /** The mapper is meant to be total; a throw is our bug, answered like one. */
  private async mapperThrew(m: Inbound, err: unknown): Promise<Result> {
    const h = toHubError(err);
    this.deps.log.error({ code: h.code }, 'mapper threw');
    const kept = await this.deadLetter(m, `${h.code}:${MAPPER_BUG.code}`, { 'hl7-ack-code': MAPPER_BUG.ack });
    return kept
      ? { disposition: refusedAs(MAPPER_BUG.ack), error: { hl7ErrorCode: MAPPER_BUG.code, severity: 'E' } }
      : this.unavailable(err);
  }
}
