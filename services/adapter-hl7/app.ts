import type { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';
import type { Hl7Mapper, SenderTimeZones } from '../../libs/hl7/map-context.js';
import {
  createMllpServer,
  type MllpCloseReason,
  type MllpPeer,
  type MllpServer,
} from '../../libs/hl7/mllp-server.js';
import type { PeerDirectory } from '../../libs/hl7/peers.js';
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
  /** SO_REUSEPORT (MLLP_REUSE_PORT): several instances on one address; main.ts checks the runtime. */
  reusePort?: boolean | undefined;
  /** `clientCa` set: a client certificate from that CA is required, and `peers` says what it may send as. */
  tls?: { cert: Buffer | string; key: Buffer | string; clientCa?: Buffer | string | undefined } | undefined;
  /** The site configuration's `mllp.peers`; required with `tls.clientCa`. */
  peers?: PeerDirectory | undefined;
  /** MLLP_ALLOW_CIDRS as a check; null or absent: every address. */
  allowAddress?: ((address: string) => boolean) | null | undefined;
  idleTimeoutMs?: number | undefined;
  maxConnectionsPerPeer?: number | undefined;
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

/** Connections the listener closed itself, by reason (never an address or certificate name). */
function closedCounter(metrics: HubMetrics): Counter<'reason'> {
  const name = 'hub_mllp_connections_closed_total';
  // One registry may see several adapters (tests): the counter is shared, not registered twice.
  const existing = metrics.registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter({
    name,
    help: 'MLLP connections closed by the listener: address not allowed, per-peer limit, not MLLP, idle, TLS handshake, certificate not configured',
    labelNames: ['reason'],
    registers: [metrics.registry],
  });
}

function createListener(
  cfg: Hl7AdapterConfig,
  log: Logger,
  handler: Hl7FrameHandler,
  onClosed: (reason: MllpCloseReason) => void,
): MllpServer {
  const { peers } = cfg;
  return createMllpServer(
    {
      host: cfg.host,
      port: cfg.port,
      reusePort: cfg.reusePort,
      tls: cfg.tls,
      identify: peers ? (cert) => peers.identify(cert) : undefined,
      allowAddress: cfg.allowAddress,
      idleTimeoutMs: cfg.idleTimeoutMs,
      maxConnectionsPerPeer: cfg.maxConnectionsPerPeer,
      onClosed,
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
  const closed = closedCounter(deps.metrics);
  const mllp = createListener(cfg, log, handler, (reason) => closed.inc({ reason }));
  let listening = false;
  const http = createHttpApp({
    logger: log,
    metrics: deps.metrics.registry,
    codeOnlyNotFound: true,
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
