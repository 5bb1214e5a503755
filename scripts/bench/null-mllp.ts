// The null MLLP listener, the adapter's limit: the same MLLP server (framer,
// per-connection serial queue), the same MSH sniffing, parsing and mapping,
// and an AA built by the same ACK code, but no Kafka. Run as its own process
// (like the adapter) by the hl7 scenario:  NULL_MLLP_PORT=n tsx scripts/bench/null-mllp.ts
import { randomUUID } from 'node:crypto';
import { buildAck, encodeAck, sniffMsh } from '../../libs/hl7/ack.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { createMllpServer } from '../../libs/hl7/mllp-server.js';
import { BENCH_MAX_CONNECTIONS_PER_PEER } from './lib.js';
import { DEFAULT_IDENTITY_POLICY } from '../../libs/identity/index.js';
import { createLogger } from '../../libs/telemetry/logger.js';

const port = Number(process.env['NULL_MLLP_PORT'] ?? 0);
const logger = createLogger({ name: 'null-mllp', level: 'warn' });
const server = createMllpServer(
  {
    host: '127.0.0.1',
    port,
    maxMessageBytes: 262_144,
    frameTimeoutMs: 30_000,
    maxConnectionsPerPeer: BENCH_MAX_CONNECTIONS_PER_PEER,
    logger,
  },
  {
    onMessage(bytes) {
      const msh = sniffMsh(bytes);
      const now = Date.now();
      const out = mapHl7Message(bytes, {
        recordedAt: now,
        policy: DEFAULT_IDENTITY_POLICY,
        rawMessageRef: null,
        timeZone: 'UTC',
      });
      const code = out.kind === 'mapped' ? 'AA' : 'AE';
      return Promise.resolve([
        encodeAck(buildAck(msh, { code, ackControlId: randomUUID(), now }), msh?.charset),
      ]);
    },
    onBroken() {
      return Promise.resolve([]);
    },
  },
);
await server.listen();
process.on('SIGTERM', () => {
  void server.close(1000).then(() => process.exit(0));
});
