import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { stackConfig, startStack, type StackConfig, type StackHandle } from '../../libs/stack/index.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { DEFAULT_IDENTITY_POLICY } from '../../libs/identity/index.js';
import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import { createMetrics, type HubMetrics } from '../../libs/telemetry/metrics.js';
import type { SenderTimeZones } from '../../libs/hl7/map-context.js';
import { buildHl7Adapter, type Hl7Adapter, type Hl7AdapterConfig } from '../../services/adapter-hl7/app.js';
import type { TestContext } from './harness.js';
import { freePort, repoDir } from './processes.js';

/**
 * A Kafka broker of one test's own (own ports, a freshly formatted data dir),
 * for tests that stop, pause or start the broker: the shared test stack is
 * never touched. The shared registry and Postgres are reused, never started
 * or stopped here.
 */
export interface PrivateBroker {
  port: number;
  brokers: string[];
  /** Starts it (again, on the same data dir after a stop). */
  start(): Promise<StackHandle>;
  stop(): Promise<void>;
  /** The broker JVM's pid, for SIGSTOP/SIGCONT. */
  pid(): Promise<number>;
  /** Stops it and removes its data dir. */
  remove(): Promise<void>;
}

export async function privateBroker(ctx: TestContext, name: string): Promise<PrivateBroker> {
  const [port, controllerPort] = [await freePort(), await freePort()];
  const dataDir = join(repoDir, '.hub', `${name}-${ctx.id}`);
  const cfg: StackConfig = stackConfig('dev', {
    ...process.env,
    HUB_KAFKA_PORT: String(port),
    HUB_KAFKA_CONTROLLER_PORT: String(controllerPort),
    HUB_REGISTRY_PORT: new URL(ctx.ep.registryUrl).port || '8081',
    HUB_DATA_DIR: dataDir,
    DATABASE_URL: ctx.ep.databaseUrl,
  });
  let stack: StackHandle | undefined;
  const stop = async () => {
    await stack?.stop();
    stack = undefined;
  };
  return {
    port,
    brokers: [`127.0.0.1:${port}`],
    async start() {
      stack = await startStack(cfg);
      if (stack.started.join() !== 'kafka')
        throw new Error(`expected to start kafka only, started ${stack.started.join()}`);
      return stack;
    },
    stop,
    async pid() {
      return Number((await readFile(join(dataDir, 'kafka.pid'), 'utf8')).trim());
    },
    async remove() {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** adapter-hl7 as its main.ts builds it, on the test's topics, listening on a free MLLP port. */
export function testHl7Adapter(
  ctx: TestContext,
  producer: EventProducer,
  o: {
    controlIdPrefix: string;
    metrics?: HubMetrics;
    cfg?: Partial<Hl7AdapterConfig>;
    /** Senders' zones as the site configuration gives them; UTC for every sender unless a test sets it. */
    timeZoneFor?: SenderTimeZones;
  },
): Hl7Adapter {
  let n = 0;
  return buildHl7Adapter(
    {
      producer,
      logger: ctx.logger,
      metrics: o.metrics ?? createMetrics({ defaultMetrics: false }),
      clock: Date.now,
      idGenerator: () => `${o.controlIdPrefix}${++n}`,
      policy: DEFAULT_IDENTITY_POLICY,
      timeZoneFor: o.timeZoneFor ?? (() => 'UTC'),
      mapper: mapHl7Message,
    },
    {
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes: 64 * 1024,
      frameTimeoutMs: 5_000,
      rawTopic: ctx.topic(INGEST_TOPICS.hl7Raw),
      dlqTopic: ctx.topic(INGEST_TOPICS.hl7Dlq),
      ...o.cfg,
    },
  );
}
