import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import type { IHeaders } from 'kafkajs';
import { toHubError, type HubError } from '../../libs/errors/index.js';
import { deterministicEventId } from '../../libs/events/index.js';
import {
  ackCodesFor,
  buildAck,
  encodeAck,
  sniffMsh,
  type AckCode,
  type AckError,
  type Disposition,
  type SniffedMsh,
} from '../../libs/hl7/ack.js';
import {
  createMllpServer,
  type BrokenFrame,
  type MllpPeer,
  type MllpServer,
} from '../../libs/hl7/mllp-server.js';
import type { MapContext, MapOutcome } from '../../libs/hl7/types.js';
import { createHttpApp } from '../../libs/http/index.js';
import type { IdentityPolicy } from '../../libs/identity/index.js';
import { withAckDeadline, type EventProducer } from '../../libs/kafka/producer.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';

export type Hl7Mapper = (bytes: Buffer, ctx: MapContext) => MapOutcome;

/**
 * The IANA zone of a sender (MSH-3.1 application, MSH-4.1 facility), from the
 * site configuration (libs/site-config senderTimeZones): HL7 v2 times without
 * an offset are the sender's local time.
 */
export type SenderTimeZones = (sendingApplication: string, sendingFacility: string) => string;

export interface Hl7AdapterDeps {
  producer: EventProducer;
  logger: Logger;
  metrics: HubMetrics;
  clock: () => number;
  /** MSH-10 of the ACKs this adapter sends. */
  idGenerator: () => string;
  policy: IdentityPolicy;
  /** Zone of each sender's times without an offset; main.ts refuses to start without one. */
  timeZoneFor: SenderTimeZones;
  /** libs/hl7/map.ts mapHl7Message in production. */
  mapper: Hl7Mapper;
}

export interface Hl7AdapterConfig {
  host: string;
  port: number;
  tls?: { cert: Buffer | string; key: Buffer | string } | undefined;
  maxMessageBytes: number;
  frameTimeoutMs: number;
  maxConnections?: number;
  rawTopic: string;
  dlqTopic: string;
  /** Sender + control ids remembered after an AA, so a resend is answered without a second write. */
  recentIdsCapacity?: number;
  /** Grace for in-flight messages on stop. */
  stopGraceMs?: number;
  /**
   * How long a message may wait for Kafka's acks before the sender gets an
   * error ACK (KAFKA_ACK_TIMEOUT_MS). The write goes on; a resend meanwhile
   * is not written a second time.
   */
  ackTimeoutMs?: number;
}

export interface Hl7Adapter {
  mllp: MllpServer;
  http: FastifyInstance;
  /** The whole pipeline for one frame, without a socket: unit/integration tests and `hl7 remap`. */
  handleMessage(bytes: Buffer, peer?: MllpPeer): Promise<Buffer[]>;
  start(): Promise<{ host: string; port: number }>;
  stop(): Promise<void>;
}

/** Reason codes for refused input (metric label, dead-letter header). A closed set: no input text. */
export type RejectReason =
  `${HubError['code']}:${string}` | 'frame_oversize' | 'frame_timeout' | 'frame_incomplete' | 'mllp_junk';

interface Result {
  disposition: Disposition;
  error?: AckError;
  /** The write was not acknowledged in time and may still land: a resend must not write again. */
  pending?: boolean;
}

const LOCAL_PEER: MllpPeer = { id: 0, remoteAddress: '', tls: false };

/** Bounded label values: sender applications are input, and labels must not grow without end. */
function labeller(max: number): (raw: string) => string {
  const seen = new Set<string>();
  return (raw) => {
    const v = raw.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 32) || 'none';
    if (seen.has(v)) return v;
    if (seen.size >= max) return 'other';
    seen.add(v);
    return v;
  };
}

function typeLabel(msh: SniffedMsh | null): string {
  if (!msh) return 'unparseable';
  const ok = (s: string) => /^[A-Z0-9]{2,4}$/.test(s);
  return ok(msh.messageCode) && (msh.triggerEvent === '' || ok(msh.triggerEvent))
    ? `${msh.messageCode}_${msh.triggerEvent}`
    : 'unknown';
}

function hd(field: string, msh: SniffedMsh): string {
  return field.split(msh.encodingCharacters.charAt(0))[0] ?? '';
}

/**
 * The zone a message's times without an offset are read in: its sender's
 * (MSH-3.1, MSH-4.1). An unreadable MSH still gets one (the default), as the
 * mapper refuses such a message anyway.
 */
export function senderZone(msh: SniffedMsh | null, timeZoneFor: SenderTimeZones): string {
  return timeZoneFor(msh ? hd(msh.sendingApplication, msh) : '', msh ? hd(msh.sendingFacility, msh) : '');
}

/**
 * The HL7 v2 adapter: MLLP in, events + raw message out, ACK back once Kafka
 * has acknowledged. Composable: every client is injected; main.ts owns
 * config, connections and signals.
 */
export function buildHl7Adapter(deps: Hl7AdapterDeps, cfg: Hl7AdapterConfig): Hl7Adapter {
  const log = deps.logger.child({ svc: 'adapter-hl7' });
  const sourceLabel = labeller(100);
  const capacity = cfg.recentIdsCapacity ?? 100_000;
  /** Insertion-ordered: the oldest key is evicted first. */
  const recent = new Set<string>();
  const inFlight = new Map<string, Promise<Result>>();
  const ackTimeout = cfg.ackTimeoutMs ?? 5_000;
  let lastKafkaOkAt = 0;
  let lastKafkaFailAt = 0;

  function remember(key: string): void {
    recent.delete(key);
    recent.add(key);
    if (recent.size > capacity) {
      const oldest = recent.values().next();
      if (!oldest.done) recent.delete(oldest.value);
    }
  }

  function rawHeaders(msh: SniffedMsh | null, receivedAt: number, rawId: string): IHeaders {
    const h: IHeaders = {
      'hl7-raw-id': rawId,
      'hl7-received-at': new Date(receivedAt).toISOString(),
    };
    if (msh) {
      h['hl7-sender'] = `${msh.sendingApplication}|${msh.sendingFacility}`;
      h['hl7-control-id'] = msh.controlId;
      h['hl7-message-type'] = `${msh.messageCode}^${msh.triggerEvent}`;
      h['hl7-charset'] = msh.declaredCharset;
    }
    return h;
  }

  function rawIdFor(msh: SniffedMsh | null): string {
    // Deterministic, so a resend and its events point at the same raw id.
    return msh && msh.controlId
      ? deterministicEventId(['hl7-raw', msh.sendingApplication, msh.sendingFacility, msh.controlId])
      : deterministicEventId(['hl7-raw-anon', deps.idGenerator()]);
  }

  function kafkaOk(): void {
    lastKafkaOkAt = deps.clock();
  }

  function notYetAcknowledged(): Result {
    lastKafkaFailAt = deps.clock();
    log.warn({ ackTimeoutMs: ackTimeout }, 'Kafka did not acknowledge in time; answering with an error ACK');
    return {
      disposition: 'unavailable',
      pending: true,
      error: { hl7ErrorCode: '207', text: 'Message not yet stored, resend later', severity: 'E' },
    };
  }

  /** The write's result, or "not yet" once the ack timeout has passed (the write goes on). */
  function within(write: Promise<Result>): Promise<Result> {
    return withAckDeadline(write, ackTimeout).catch(() => notYetAcknowledged());
  }

  /** Keeps a write findable by its resend key until it settles, and remembers it if it landed. */
  function track(key: string, write: Promise<Result>): void {
    inFlight.set(key, write);
    void write
      .then((r) => {
        if (r.disposition === 'accepted') remember(key);
      })
      .catch(() => undefined)
      .finally(() => {
        if (inFlight.get(key) === write) inFlight.delete(key);
      });
  }

  function unavailable(err: unknown): Result {
    const h = toHubError(err);
    lastKafkaFailAt = deps.clock();
    log.warn({ code: h.code, retriable: h.retriable }, 'message not stored; answering with an error ACK');
    return {
      disposition: 'unavailable',
      error: { hl7ErrorCode: '207', text: 'Message not stored, resend later', severity: 'E' },
    };
  }

  async function deadLetter(
    bytes: Buffer,
    msh: SniffedMsh | null,
    receivedAt: number,
    reason: RejectReason,
    extra: IHeaders,
    rawId: string,
  ): Promise<boolean> {
    const key = msh?.controlId ? `${msh.sendingApplication}|${msh.sendingFacility}|${msh.controlId}` : rawId;
    deps.metrics.hl7Rejected.inc({ reason });
    try {
      await deps.producer.publishRaw([
        {
          topic: cfg.dlqTopic,
          key,
          value: bytes,
          headers: { ...rawHeaders(msh, receivedAt, rawId), 'hub-reason-code': reason, ...extra },
        },
      ]);
      kafkaOk();
      return true;
    } catch (err) {
      unavailable(err);
      return false;
    }
  }

  async function ingest(
    bytes: Buffer,
    msh: SniffedMsh | null,
    receivedAt: number,
    rawId: string,
  ): Promise<Result> {
    let outcome: MapOutcome;
    try {
      outcome = deps.mapper(bytes, {
        recordedAt: receivedAt,
        policy: deps.policy,
        rawMessageRef: `${cfg.rawTopic}/${rawId}`,
        timeZone: senderZone(msh, deps.timeZoneFor),
      });
    } catch (err) {
      // The mapper is meant to be total; a throw is our bug, answered like one.
      const h = toHubError(err);
      log.error({ code: h.code }, 'mapper threw');
      const kept = await deadLetter(bytes, msh, receivedAt, `${h.code}:207`, { 'hl7-ack-code': 'AR' }, rawId);
      return kept
        ? { disposition: 'rejected', error: { hl7ErrorCode: '207', severity: 'E' } }
        : unavailable(err);
    }
    switch (outcome.kind) {
      case 'mapped': {
        const events = outcome.events;
        const key =
          events[0]?.data.patientId ??
          (msh ? `${msh.sendingApplication}|${msh.sendingFacility}|${msh.controlId}` : rawId);
        try {
          await Promise.all([
            deps.producer.publishRaw([
              { topic: cfg.rawTopic, key, value: bytes, headers: rawHeaders(msh, receivedAt, rawId) },
            ]),
            events.length > 0 ? deps.producer.publish(events, { 'hl7-raw-id': rawId }) : Promise.resolve([]),
          ]);
        } catch (err) {
          return unavailable(err);
        }
        kafkaOk();
        return { disposition: 'accepted' };
      }
      case 'refused': {
        const r = outcome.refusal;
        const error: AckError = {
          hl7ErrorCode: r.hl7ErrorCode,
          severity: 'E',
          ...(r.location ? { location: r.location } : {}),
        };
        const loc = r.location
          ? `${r.location.segment}-${r.location.field ?? ''}${r.location.component ? `.${r.location.component}` : ''}`
          : '';
        const kept = await deadLetter(
          bytes,
          msh,
          receivedAt,
          `${r.error.code}:${r.hl7ErrorCode}`,
          {
            'hl7-ack-code': r.ack,
            'hl7-error-code': r.hl7ErrorCode,
            'hl7-error-location': loc,
            'hub-error-message': r.error.message,
          },
          rawId,
        );
        if (!kept) return unavailable(r.error);
        return { disposition: r.ack === 'AE' ? 'content-error' : 'rejected', error };
      }
    }
  }

  function acksFor(msh: SniffedMsh | null, res: Result, source: string, type: string, t0: number): Buffer[] {
    const codes: AckCode[] = ackCodesFor(msh, res.disposition);
    const now = deps.clock();
    const secs = (performance.now() - t0) / 1000;
    return codes.map((code) => {
      deps.metrics.hl7Acked.inc({ source, type, code });
      deps.metrics.hl7AckSeconds.observe({ code }, secs);
      const error = code === 'AA' || code === 'CA' ? undefined : res.error;
      return encodeAck(
        buildAck(msh, { code, ackControlId: deps.idGenerator(), now, ...(error ? { error } : {}) }),
        msh?.charset,
      );
    });
  }

  async function handleMessage(bytes: Buffer, peer: MllpPeer = LOCAL_PEER): Promise<Buffer[]> {
    const t0 = performance.now();
    const receivedAt = deps.clock();
    const msh = sniffMsh(bytes);
    const source = sourceLabel(msh ? hd(msh.sendingApplication, msh) : 'none');
    const type = typeLabel(msh);
    deps.metrics.hl7Received.inc({ source, type });
    const rawId = rawIdFor(msh);
    // The raw id doubles as the resend key: it is derived from sender + MSH-10
    // alone. Not those fields joined: they are V8 slices of the message text,
    // so each remembered key kept its whole message alive (the 100k-entry
    // memory held ~40 MB of message bodies and pushed RSS past 256 MB).
    const key = msh?.controlId ? rawId : null;
    let res: Result;
    try {
      if (key && recent.has(key)) {
        // Already durably accepted: the resend is answered, not written again.
        res = { disposition: 'accepted' };
      } else {
        const earlier = key ? inFlight.get(key) : undefined;
        const prior = earlier ? await within(earlier) : undefined;
        if (prior?.disposition === 'accepted' || prior?.pending) {
          // Landed, or still on its way: either way it is not written twice.
          res = prior;
        } else {
          const p = ingest(bytes, msh, receivedAt, rawId);
          if (key) track(key, p);
          res = await within(p);
        }
      }
    } catch (err) {
      // Nothing above should throw; if it does the sender must not see AA.
      res = unavailable(err);
    }
    log.debug(
      { conn: peer.id, type, disposition: res.disposition, ms: Math.round(performance.now() - t0) },
      'message handled',
    );
    return acksFor(msh, res, source, type, t0);
  }

  async function handleBroken(frame: BrokenFrame, peer: MllpPeer): Promise<Buffer[]> {
    const t0 = performance.now();
    const receivedAt = deps.clock();
    const held = frame.kind === 'oversize' ? frame.prefix : frame.bytes;
    const msh = sniffMsh(held);
    const source = sourceLabel(msh ? hd(msh.sendingApplication, msh) : 'none');
    const type = typeLabel(msh);
    deps.metrics.hl7Received.inc({ source, type });
    const reason: RejectReason =
      frame.kind === 'oversize'
        ? 'frame_oversize'
        : frame.kind === 'timeout'
          ? 'frame_timeout'
          : 'frame_incomplete';
    log.warn({ conn: peer.id, reason, bytes: held.length }, 'MLLP frame refused');
    const extra: IHeaders = { 'hl7-ack-code': 'AR', 'hl7-error-code': '207' };
    if (frame.kind === 'oversize') {
      extra['hl7-truncated'] = 'true';
      extra['hl7-original-length'] = String(frame.length);
    }
    const kept = await deadLetter(held, msh, receivedAt, reason, extra, rawIdFor(msh));
    // Without MSH-10 there is nothing an ACK could refer to; the sender's own timeout applies.
    if (!msh?.controlId) return [];
    const text =
      frame.kind === 'oversize' ? `Message exceeds ${cfg.maxMessageBytes} bytes` : 'Incomplete MLLP frame';
    const res: Result = kept
      ? { disposition: 'rejected', error: { hl7ErrorCode: '207', text, severity: 'E' } }
      : unavailable(new Error('dead-letter write failed'));
    return acksFor(msh, res, source, type, t0);
  }

  const mllp = createMllpServer(
    {
      host: cfg.host,
      port: cfg.port,
      tls: cfg.tls,
      maxMessageBytes: cfg.maxMessageBytes,
      frameTimeoutMs: cfg.frameTimeoutMs,
      ...(cfg.maxConnections ? { maxConnections: cfg.maxConnections } : {}),
      logger: log,
    },
    {
      onMessage: handleMessage,
      onBroken: handleBroken,
      onJunk: (length, peer) => {
        deps.metrics.hl7Rejected.inc({ reason: 'mllp_junk' });
        log.debug({ conn: peer.id, bytes: length }, 'bytes outside an MLLP frame ignored');
      },
    },
  );

  let listening = false;
  const http = createHttpApp({
    logger: log,
    metrics: deps.metrics.registry,
    readiness: {
      mllp: () => Promise.resolve(listening ? { ok: true } : { ok: false, detail: 'not listening' }),
      kafka: () => {
        const h = deps.producer.health();
        if (!h.ok) return Promise.resolve(h);
        return Promise.resolve(
          lastKafkaFailAt > lastKafkaOkAt
            ? { ok: false, detail: 'last write to Kafka failed or timed out' }
            : { ok: true },
        );
      },
    },
  });

  return {
    mllp,
    http,
    handleMessage,
    async start() {
      const addr = await mllp.listen();
      listening = true;
      return addr;
    },
    async stop() {
      listening = false;
      await mllp.close(cfg.stopGraceMs ?? 10_000);
      await http.close();
    },
  };
}
