import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeEvent } from '../cli/publish.js';
import { HubError } from '../libs/errors/index.js';
import { ensureTopics } from '../libs/kafka/admin.js';
import { createConsumerRunner, type ConsumerRunner } from '../libs/kafka/consumer.js';
import { createHttpApp } from '../libs/http/index.js';
import { createMetrics } from '../libs/telemetry/metrics.js';
import { PATIENT_TOPIC } from '../services/patient-directory/projection.js';
import { createTestContext, eventually, uniqueId, type TestContext } from './support/harness.js';

/**
 * A dependency that never comes back: the runner retries with backoff, restarts
 * the consumer a bounded number of times, then reports a fatal error with the
 * dependency's code (so /ready and hub_dependency_up say so, and main exits
 * non-zero) instead of spinning silently.
 */
describe('ops: bounded retries end in a fatal, visible state', () => {
  let ctx: TestContext;
  let runner: ConsumerRunner | undefined;

  beforeAll(async () => {
    ctx = await createTestContext('opsfatal');
    ctx.extraTopics.push(`hub.dlq.${ctx.id}`);
    await ensureTopics(ctx.kafka, [
      { name: `hub.dlq.${ctx.id}`, partitions: 1, replicationFactor: 1, retentionMs: -1 },
    ]);
  });
  afterAll(async () => {
    await runner?.stop().catch(() => undefined);
    await ctx?.cleanup();
  });

  it('gives up after the retry and restart bounds, with the dependency code, and goes not-ready', async () => {
    let attempts = 0;
    let fatal: HubError | null = null;
    runner = createConsumerRunner({
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      groupId: uniqueId('fatal'),
      topics: [ctx.topic(PATIENT_TOPIC)],
      dlqTopic: `hub.dlq.${ctx.id}`,
      logger: ctx.logger,
      maxRetries: 1,
      retryBaseMs: 10,
      maxRestarts: 1,
      handle: () => {
        attempts += 1;
        return Promise.reject(new HubError('HUB_DB_UNAVAILABLE', 'postgres unavailable (08006)'));
      },
      onFatal: (err) => {
        fatal = err;
      },
    });
    const metrics = createMetrics({ defaultMetrics: false });
    const http = createHttpApp({
      logger: ctx.logger,
      metrics: metrics.registry,
      readiness: {
        consumer: () => Promise.resolve(fatal ? { ok: false, detail: fatal.code } : { ok: true }),
      },
    });
    await runner.start();
    await ctx.producer.publish([
      completeEvent(
        {
          type: 'PatientRegistered',
          data: {
            meta: { occurredAt: 1, source: { system: 'OPS', messageId: 'f1' } },
            patientId: 'F-1',
            demographics: { identifiers: [] },
          },
        },
        1,
        Date.now(),
      ),
    ]);
    const err = await eventually(() => Promise.resolve(fatal ?? undefined), {
      timeoutMs: 50_000,
      what: 'fatal',
    });
    expect(err.code).toBe('HUB_DB_UNAVAILABLE');
    // Bounded: (1 + maxRetries) handler attempts per kafkajs try, (1 + retries) tries per start, 2 starts.
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(2 * 2 * 2);
    const ready = await http.inject({ method: 'GET', url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ checks: { consumer: { ok: false, detail: 'HUB_DB_UNAVAILABLE' } } });
    expect(await metrics.registry.metrics()).toContain('hub_dependency_up{dependency="consumer"} 0');
    await http.close();
  });
});
