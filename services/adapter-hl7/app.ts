import type { FastifyInstance } from 'fastify';
import type { Hl7Mapper, SenderTimeZones } from '../../libs/hl7/map-context.js';
import { createMllpServer, type MllpPeer, type MllpServer } from '../../libs/hl7/mllp-server.js';
import { createHttpApp } from '../../libs/http/index.js';
import type { IdentityPolicy } from '../../libs/identity/index.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';
import { Hl7FrameHandler } from './handler.js';
import { IngestPipeline } from './ingest.js';
import { adapterReadiness } from './readiness.js';
import { ResendMemory } from './resend-memory.js';

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
  /** The whole pipeline for one frame, without a socket (unit and integration tests). */
  handleMessage(bytes: Buffer, peer?: MllpPeer): Promise<Buffer[]>;
  start(): Promise<{ host: string; port: number }>;
  stop(): Promise<void>;
}

function createListener(cfg: Hl7AdapterConfig, log: Logger, handler: Hl7FrameHandler): MllpServer {
  return createMllpServer(
    {
      host: cfg.host,
      port: cfg.port,
      tls: cfg.tls,
      maxMessageBytes: cfg.maxMessageBytes,
      frameTimeoutMs: cfg.frameTimeoutMs,
      ...(cfg.maxConnections ? { maxConnections: cfg.maxConnections } : {}),
      logger: log,
    },
    handler,
  );
}

/**
 * The HL7 v2 adapter: MLLP in, events + raw message out, ACK back once Kafka
 * has acknowledged. Composable: every client is injected; main.ts (through the
 * service kit, libs/service) owns config, connections and signals. What is
 * decided where: ingest.ts (map, publish or dead-letter), handler.ts (frames,
 * resends), acks.ts (ACKs), readiness.ts (/ready).
 */
export function buildHl7Adapter(deps: Hl7AdapterDeps, cfg: Hl7AdapterConfig): Hl7Adapter {
  const log = deps.logger.child({ svc: 'adapter-hl7' });
  const pipeline = new IngestPipeline(
    { ...deps, log },
    { rawTopic: cfg.rawTopic, dlqTopic: cfg.dlqTopic, ackTimeoutMs: cfg.ackTimeoutMs ?? 5_000 },
  );
  const handler = new Hl7FrameHandler({
    ...deps,
    pipeline,
    resends: new ResendMemory(cfg.recentIdsCapacity ?? 100_000),
    log,
    maxMessageBytes: cfg.maxMessageBytes,
  });
  const mllp = createListener(cfg, log, handler);
  let listening = false;
  const http = createHttpApp({
    logger: log,
    metrics: deps.metrics.registry,
    readiness: adapterReadiness({
      listening: () => listening,
      producer: deps.producer,
      writes: pipeline.writes,
    }),
  });

  return {
    mllp,
    http,
    handleMessage: (bytes, peer) => handler.onMessage(bytes, peer),
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
