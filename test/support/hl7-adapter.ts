import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { DEFAULT_IDENTITY_POLICY } from '../../libs/identity/index.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import {
  buildHl7Adapter,
  type Hl7Adapter,
  type Hl7AdapterConfig,
  type Hl7AdapterDeps,
} from '../../services/adapter-hl7/app.js';
import type { TestContext } from './harness.js';

/**
 * The HL7 adapter as integration tests run it: the test context's producer
 * and topics, UTC for every sender, numbered ACK ids, a listener on a free
 * port of 127.0.0.1; `deps` and `cfg` override any of it.
 */
export async function startHl7Adapter(
  ctx: TestContext,
  cfg: Partial<Hl7AdapterConfig> = {},
  deps: Partial<Hl7AdapterDeps> = {},
): Promise<{ adapter: Hl7Adapter; port: number }> {
  let ackSeq = 0;
  const adapter = buildHl7Adapter(
    {
      producer: ctx.producer,
      logger: ctx.logger,
      metrics: createMetrics({ defaultMetrics: false }),
      clock: Date.now,
      idGenerator: () => `ACK${++ackSeq}`,
      policy: DEFAULT_IDENTITY_POLICY,
      timeZoneFor: () => 'UTC',
      mapper: mapHl7Message,
      ...deps,
    },
    {
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes: 64 * 1024,
      frameTimeoutMs: 2_000,
      rawTopic: ctx.topic(INGEST_TOPICS.hl7Raw),
      dlqTopic: ctx.topic(INGEST_TOPICS.hl7Dlq),
      ...cfg,
    },
  );
  return { adapter, port: (await adapter.start()).port };
}
