// Entry point: config, connections, signals and start-up are the shared service kit's (libs/service).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { portEnv, z } from '../../libs/config/index.js';
import {
  INGEST_TOPICS,
  catalogTopicDefinitions,
  largeRecordTopicBytes,
} from '../../libs/events/contracts.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../../libs/hl7/mllp.js';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS_PER_PEER } from '../../libs/hl7/mllp-server.js';
import { addressAllowList, PeerDirectory } from '../../libs/hl7/peers.js';
import { HubError } from '../../libs/errors/index.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import { eventPublisher, runService } from '../../libs/service/index.js';
import { loadSite, siteEnv } from '../../libs/service/site.js';
import { senderTimeZones } from '../../libs/site-config/index.js';
import { buildHl7Adapter } from './app.js';
import { reusePortUnsupported } from './reuse-port.js';

await runService({
  name: 'adapter-hl7',
  port: 8092,
  env: {
    ...siteEnv,
    MLLP_HOST: z.string().default('127.0.0.1'),
    MLLP_PORT: portEnv(2575),
    // Several instances on one address, the kernel spreading connections (README, "Scaling out").
    MLLP_REUSE_PORT: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    MLLP_TLS_CERT: z.string().min(1).optional(),
    MLLP_TLS_KEY: z.string().min(1).optional(),
    // Client CA (PEM): set, every connection must present a certificate it issued, listed in
    // the site configuration's mllp.peers with the senders it may send as.
    MLLP_TLS_CA_FILE: z.string().min(1).optional(),
    // Comma-separated CIDRs or addresses; empty: every address (README, "Securing the listener").
    MLLP_ALLOW_CIDRS: z.string().default(''),
    MLLP_IDLE_TIMEOUT_MS: z.coerce.number().int().min(1000).default(DEFAULT_IDLE_TIMEOUT_MS),
    MLLP_MAX_CONNECTIONS_PER_PEER: z.coerce.number().int().min(1).default(DEFAULT_MAX_CONNECTIONS_PER_PEER),
    // 16 MiB: lab and imaging systems send PDF reports as base64 ED in OBX-5 (1-10 MB is
    // normal). Above 64 MiB one message would approach Kafka's 100 MiB request limit
    // (raw copy + decoded attachment); see docs/large-messages.md.
    MLLP_MAX_MESSAGE_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(DEFAULT_MAX_MESSAGE_BYTES),
    MLLP_FRAME_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
    MLLP_MAX_CONNECTIONS: z.coerce.number().int().min(1).default(1000),
    MLLP_STOP_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
    HL7_RECENT_IDS: z.coerce.number().int().min(0).default(100_000),
    KAFKA_PRODUCER_RETRIES: z.coerce.number().int().min(0).max(20).default(5),
  },
  checks: [
    {
      ok: (c) => !c.MLLP_REUSE_PORT || reusePortUnsupported() === null,
      path: 'MLLP_REUSE_PORT',
      message: `MLLP_REUSE_PORT=true cannot be honoured here: ${reusePortUnsupported() ?? ''}; run one instance per address or a TCP load balancer`,
    },
    {
      ok: (c) => Boolean(c.MLLP_TLS_CERT) === Boolean(c.MLLP_TLS_KEY),
      path: 'MLLP_TLS_CERT',
      message: 'MLLP_TLS_CERT and MLLP_TLS_KEY go together',
    },
    {
      ok: (c) => !c.MLLP_TLS_CA_FILE || Boolean(c.MLLP_TLS_CERT),
      path: 'MLLP_TLS_CA_FILE',
      message: 'client certificates need TLS: set MLLP_TLS_CERT and MLLP_TLS_KEY too',
    },
  ],
  stoppingMessage: 'stopping: no new connections, finishing in-flight messages',
  stoppedMessage: 'adapter-hl7 stopped',
  producer: (k) => ({
    ...eventPublisher(k),
    retries: k.config.KAFKA_PRODUCER_RETRIES,
    // The adapter applies the ack timeout itself, keeping each write so that a
    // resend of a message still on its way is not written a second time.
    rejectAtAckTimeout: false,
  }),
  connect: (k) => {
    // Refuses to start (HUB_CONFIG_INVALID) on an invalid file, and without a time zone: HL7 v2 times
    // without an offset are the sender's local time, and assuming UTC would shift every one of them.
    const { site, policy } = loadSite(k.config, k.logger);
    const { MLLP_TLS_CERT: cert, MLLP_TLS_KEY: key, MLLP_TLS_CA_FILE: ca } = k.config;
    const peers = site.mllp?.peers ?? [];
    // Either half alone would look like protection and be none: a peers list nobody checks,
    // or client certificates that may send as any sender.
    if (ca && peers.length === 0) {
      throw new HubError(
        'HUB_CONFIG_INVALID',
        'MLLP_TLS_CA_FILE is set but the site configuration lists no mllp.peers',
        {
          details: { variable: 'MLLP_TLS_CA_FILE' },
        },
      );
    }
    if (!ca && peers.length > 0) {
      throw new HubError(
        'HUB_CONFIG_INVALID',
        'the site configuration lists mllp.peers but MLLP_TLS_CA_FILE is not set: they would not be enforced',
        {
          details: { variable: 'MLLP_TLS_CA_FILE' },
        },
      );
    }
    const allowAddress = addressAllowList(k.config.MLLP_ALLOW_CIDRS);
    if (!ca && !isLoopback(k.config.MLLP_HOST)) {
      k.logger.warn(
        { host: k.config.MLLP_HOST },
        'MLLP listens beyond this host without client certificates: any system that reaches it can send as any sender',
      );
    }
    return {
      policy,
      timeZoneFor: senderTimeZones(site, k.config.HUB_SITE_CONFIG),
      tls:
        cert && key
          ? { cert: readFileSync(cert), key: readFileSync(key), clientCa: ca ? readFileSync(ca) : undefined }
          : undefined,
      peers: ca ? new PeerDirectory(peers) : undefined,
      allowAddress,
    };
  },
  build: (k, c) => {
    const rawTopic = k.topic(INGEST_TOPICS.hl7Raw);
    const dlqTopic = k.topic(INGEST_TOPICS.hl7Dlq);
    const attachmentTopic = k.topicFor('AttachmentStored');
    const adapter = buildHl7Adapter(
      {
        producer: k.producer,
        logger: k.logger,
        metrics: k.metrics,
        clock: Date.now,
        idGenerator: randomUUID,
        policy: c.policy,
        timeZoneFor: c.timeZoneFor,
        mapper: mapHl7Message,
      },
      {
        host: k.config.MLLP_HOST,
        port: k.config.MLLP_PORT,
        reusePort: k.config.MLLP_REUSE_PORT,
        tls: c.tls,
        peers: c.peers,
        allowAddress: c.allowAddress,
        idleTimeoutMs: k.config.MLLP_IDLE_TIMEOUT_MS,
        maxConnectionsPerPeer: k.config.MLLP_MAX_CONNECTIONS_PER_PEER,
        maxMessageBytes: k.config.MLLP_MAX_MESSAGE_BYTES,
        frameTimeoutMs: k.config.MLLP_FRAME_TIMEOUT_MS,
        maxConnections: k.config.MLLP_MAX_CONNECTIONS,
        rawTopic,
        dlqTopic,
        recentIdsCapacity: k.config.HL7_RECENT_IDS,
        stopGraceMs: k.config.MLLP_STOP_GRACE_MS,
        ackTimeoutMs: k.config.KAFKA_ACK_TIMEOUT_MS,
      },
    );
    let mllp: { host: string; port: number } | undefined;
    const ingestTopics = new Set([rawTopic, dlqTopic, attachmentTopic]);
    return {
      http: adapter.http,
      steps: [
        {
          // Also raises max.message.bytes of these topics on an existing install, to fit the frame limit.
          name: 'kafka (raw, dead-letter and attachment topics)',
          run: () =>
            ensureTopics(
              k.kafka,
              catalogTopicDefinitions(k.topic)
                .filter((t) => ingestTopics.has(t.name))
                .map((t) => ({
                  ...t,
                  maxMessageBytes: largeRecordTopicBytes(k.config.MLLP_MAX_MESSAGE_BYTES),
                })),
            ).then(() => undefined),
        },
        { name: 'schema registry (event schemas)', run: () => k.codec.warmUp(undefined, k.topicFor) },
        // Last: senders are accepted only once every write they need can be made.
        {
          name: 'MLLP listener',
          run: async () => {
            mllp = await adapter.start();
          },
        },
      ],
      stop: () => adapter.stop(),
      readyFields: () => ({
        mllp: mllp ? `${mllp.host}:${mllp.port}` : null,
        tls: Boolean(k.config.MLLP_TLS_CERT),
        clientCertificates: Boolean(k.config.MLLP_TLS_CA_FILE),
        reusePort: k.config.MLLP_REUSE_PORT,
      }),
    };
  },
});

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
