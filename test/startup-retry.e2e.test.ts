import { privateBroker, type PrivateBroker } from './support/private-broker.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropReadModel } from '../libs/projections/versions.js';
import { catalogTopicDefinitions } from '../libs/events/contracts.js';
import { ensureTopics } from '../libs/kafka/admin.js';
import { createKafkaClient } from '../libs/kafka/client.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { freePort, startProcess, type RunningProcess } from './support/processes.js';

interface ReadyBody {
  status: string;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

async function readyOf(port: number): Promise<{ status: number; body: ReadyBody } | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/ready`);
    return { status: r.status, body: (await r.json()) as ReadyBody };
  } catch {
    return null;
  }
}

/**
 * Services as `hub up` runs them (own processes, own main.ts) on a cluster
 * that is not there yet: a private Kafka (own ports, a freshly formatted
 * data dir; the shared registry and Postgres are reused) is started only
 * after the service, and its topics are created after that, which is the
 * start-up race a fresh `npm run up` hits.
 */
describe('service start-up before its dependencies', () => {
  let ctx: TestContext;
  let broker: PrivateBroker;
  const procs: RunningProcess[] = [];
  let stable: string;

  beforeAll(async () => {
    ctx = await createTestContext('startup');
    broker = await privateBroker(ctx, 'startup-broker');
    stable = `${ctx.schema}_portal`;
  });

  /** A service's environment on this test's topics, schema registry and database. */
  const serviceEnv = (brokers: string, httpPort: number, schema: string) => ({
    KAFKA_BROKERS: brokers,
    SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
    DATABASE_URL: ctx.ep.databaseUrl,
    HUB_TOPIC_SUFFIX: ctx.id,
    HTTP_PORT: String(httpPort),
    PROJECTION_SCHEMA: schema,
  });

  afterAll(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    await broker?.remove();
    await dropReadModel(ctx.db, stable).catch(() => undefined);
    await ctx?.cleanup();
  }, 120_000);

  it('regression: a projector started before the broker and its topics exist waits not-ready, then serves', async () => {
    const httpPort = await freePort();
    // Given a projector whose broker is not running yet
    const proc = startProcess([join('services', 'projector-portal', 'main.ts')], {
      ...serviceEnv(broker.brokers.join(','), httpPort, stable),
      CONSUMER_GROUP_PREFIX: `hub.projection.${ctx.id}`,
      LOG_LEVEL: 'info',
    });
    procs.push(proc);

    // Then its port answers and /ready says what it waits for
    const waiting = await eventually(
      async () => {
        const r = await readyOf(httpPort);
        const detail = r?.body.checks['startup']?.detail ?? '';
        return r?.status === 503 && detail.startsWith('waiting for kafka') ? detail : undefined;
      },
      { timeoutMs: 60_000, what: '/ready saying start-up waits for kafka' },
    );
    expect(waiting).toMatch(/^waiting for kafka/);

    // When the broker comes up on a freshly formatted data dir, and the topics are created after that
    await broker.start();
    // ... and its topics only after the client's own retries gave up once (kafkajs: about 20 s),
    // which is where the old start-up exited with "does not host this topic-partition"
    await proc.waitFor(
      /"step":"postgres \(read model\) and kafka \(consumer group\)".*start-up waiting, retrying/,
      90_000,
    );
    const kafka = createKafkaClient({ brokers: broker.brokers, clientId: ctx.id, logger: ctx.logger });
    await ensureTopics(kafka, catalogTopicDefinitions(ctx.topic));

    // Then the same process becomes ready, without having exited
    await proc.waitFor(/projector-portal ready/, 90_000);
    const ready = await eventually(
      async () => ((await readyOf(httpPort))?.status === 200 ? true : undefined),
      {
        timeoutMs: 30_000,
        what: 'projector-portal /ready 200',
      },
    );
    expect(ready).toBe(true);
    expect(proc.child.exitCode).toBeNull();
    if (process.env['TEST_SHOW_OUTPUT']) process.stderr.write(proc.output());
  }, 180_000);

  it('given SIGTERM while start-up still waits, then the service exits 0 without reporting a failed start', async () => {
    // Given a service waiting for a broker that is not there
    const [deadPort, httpPort] = [await freePort(), await freePort()];
    const proc = startProcess([join('services', 'patient-directory', 'main.ts')], {
      ...serviceEnv(`127.0.0.1:${deadPort}`, httpPort, `${ctx.schema}_pd2`),
      LOG_LEVEL: 'info',
    });
    procs.push(proc);
    await eventually(
      async () =>
        (await readyOf(httpPort))?.body.checks['startup']?.detail?.startsWith('waiting for kafka')
          ? true
          : undefined,
      { timeoutMs: 30_000, what: 'start-up waiting for kafka' },
    );
    // When it is stopped, then the stop owns the exit: 0, and no "failed to start"
    expect(await proc.stop('SIGTERM')).toBe(0);
    expect(proc.output()).not.toMatch(/failed to start/);
  }, 60_000);

  it('given a dependency that never comes, then the service exits 1 after its budget saying what it waited for', async () => {
    const [deadPort, httpPort] = [await freePort(), await freePort()];
    const t0 = Date.now();
    const proc = startProcess([join('services', 'patient-directory', 'main.ts')], {
      ...serviceEnv(`127.0.0.1:${deadPort}`, httpPort, `${ctx.schema}_pd`),
      HUB_START_BUDGET_MS: '4000',
      LOG_LEVEL: 'info',
    });
    procs.push(proc);
    const code = await new Promise<number | null>((resolve) => proc.child.once('exit', (c) => resolve(c)));
    const ms = Date.now() - t0;
    expect(code).toBe(1);
    expect(proc.output()).toMatch(
      /patient-directory failed to start: gave up after 4s waiting for kafka \(producer connect\)/,
    );
    // At the budget, not after the client's own ~20 s of connect retries.
    expect(ms).toBeLessThan(15_000);
  }, 60_000);
});
