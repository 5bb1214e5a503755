import Fastify from 'fastify';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { gateReadiness, isTransientStartupError, runStartupSteps } from './startup.js';

const logger = pino({ level: 'silent' });

/** A kafkajs-shaped error: the names and flags the client really throws. */
function kafkaJsError(name: string, retriable: boolean, cause?: unknown): Error {
  const e = new Error('This server does not host this topic-partition') as Error & { retriable: boolean };
  e.name = name;
  e.retriable = retriable;
  if (cause !== undefined) (e as Error & { cause: unknown }).cause = cause;
  return e;
}

/** A clock that only moves when the code under test sleeps. */
function fakeTime() {
  let now = 0;
  const slept: number[] = [];
  return {
    clock: () => now,
    sleep: (ms: number) => {
      slept.push(ms);
      now += ms;
      return Promise.resolve();
    },
    slept,
  };
}

describe('isTransientStartupError', () => {
  it('given the errors of a fresh broker, coordinator, registry or Postgres, then they are transient', () => {
    expect(isTransientStartupError(kafkaJsError('KafkaJSProtocolError', true))).toBe(true);
    expect(
      isTransientStartupError(
        kafkaJsError('KafkaJSNonRetriableError', false, kafkaJsError('KafkaJSProtocolError', true)),
      ),
    ).toBe(true);
    expect(isTransientStartupError(kafkaJsError('KafkaJSConnectionError', false))).toBe(true);
    expect(isTransientStartupError(kafkaJsError('KafkaJSNumberOfRetriesExceeded', false))).toBe(true);
    expect(isTransientStartupError(new HubError('HUB_REGISTRY_UNAVAILABLE', 'registry down'))).toBe(true);
    expect(isTransientStartupError(Object.assign(new Error('x'), { code: '57P03' }))).toBe(true);
    expect(
      isTransientStartupError(
        new AggregateError([Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })]),
      ),
    ).toBe(true);
  });

  it('given a configuration or schema error or a plain bug, then it is not transient', () => {
    expect(isTransientStartupError(new HubError('HUB_CONFIG_INVALID', 'bad'))).toBe(false);
    expect(isTransientStartupError(new HubError('HUB_SCHEMA_NOT_REGISTERED', 'no subject'))).toBe(false);
    expect(isTransientStartupError(new TypeError('undefined is not a function'))).toBe(false);
    expect(isTransientStartupError(Object.assign(new Error('in use'), { code: 'EADDRINUSE' }))).toBe(false);
  });
});

describe('runStartupSteps', () => {
  it('regression: "does not host this topic-partition" during start is retried with backoff, not fatal', async () => {
    // Given a step that fails the way a fresh KRaft broker makes it fail, three times
    const t = fakeTime();
    let calls = 0;
    let undone = 0;
    const waiting: string[] = [];
    // When start-up runs it
    await runStartupSteps(
      [
        {
          name: 'kafka (consumer group)',
          run: () =>
            ++calls <= 3 ? Promise.reject(kafkaJsError('KafkaJSProtocolError', true)) : Promise.resolve(),
          undo: () => {
            undone++;
            return Promise.resolve();
          },
        },
      ],
      { logger, budgetMs: 60_000, clock: t.clock, sleep: t.sleep, onWaiting: (w) => waiting.push(w) },
    );
    // Then it succeeded on the fourth attempt, backing off 250, 500, 1000 ms and undoing each half-done try
    expect(calls).toBe(4);
    expect(t.slept).toEqual([250, 500, 1000]);
    expect(undone).toBe(3);
    expect(waiting.slice(0, 2)).toEqual([
      'waiting for kafka (consumer group)',
      'waiting for kafka (consumer group) (attempt 1: KafkaJSProtocolError)',
    ]);
  });

  it('given a dependency that never comes, then it gives up after the budget naming what it waited for', async () => {
    const t = fakeTime();
    const run = runStartupSteps(
      [
        { name: 'postgres', run: () => Promise.resolve() },
        {
          name: 'schema registry (event schemas)',
          run: () => Promise.reject(new HubError('HUB_REGISTRY_UNAVAILABLE', 'x')),
        },
      ],
      { logger, budgetMs: 10_000, clock: t.clock, sleep: t.sleep },
    );
    await expect(run).rejects.toThrow(/gave up after 10s waiting for schema registry \(event schemas\)/);
    await expect(run).rejects.toMatchObject({ code: 'HUB_REGISTRY_UNAVAILABLE', retriable: false });
    // The sleeps never overrun the budget.
    expect(t.slept.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10_000);
  });

  it('given a step whose client keeps retrying on its own, then start-up gives up at the budget, not after it', async () => {
    const t0 = Date.now();
    const never = new Promise<void>(() => undefined);
    await expect(
      runStartupSteps([{ name: 'kafka (producer connect)', run: () => never }], { logger, budgetMs: 200 }),
    ).rejects.toThrow('gave up after 0s waiting for kafka (producer connect) (attempt 1 still running)');
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('given a service that started stopping, then no further attempt or step is made', async () => {
    const t = fakeTime();
    let stopping = false;
    const ran: string[] = [];
    await runStartupSteps(
      [
        {
          name: 'kafka',
          run: () => {
            ran.push('kafka');
            stopping = true; // SIGTERM arrives while this attempt fails
            return Promise.reject(kafkaJsError('KafkaJSConnectionError', false));
          },
        },
        { name: 'postgres', run: () => Promise.resolve(void ran.push('postgres')) },
      ],
      { logger, budgetMs: 60_000, clock: t.clock, sleep: t.sleep, cancelled: () => stopping },
    );
    expect(ran).toEqual(['kafka']);
  });

  it('given a failure that is not transient, then it fails at once without retrying', async () => {
    const t = fakeTime();
    let calls = 0;
    await expect(
      runStartupSteps(
        [
          {
            name: 'MLLP listener',
            run: () => {
              calls++;
              return Promise.reject(
                Object.assign(new Error('listen EADDRINUSE 127.0.0.1:2575'), { code: 'EADDRINUSE' }),
              );
            },
          },
        ],
        { logger, budgetMs: 60_000, clock: t.clock, sleep: t.sleep },
      ),
    ).rejects.toThrow('start-up step "MLLP listener" failed: Error EADDRINUSE');
    expect(calls).toBe(1);
    expect(t.slept).toEqual([]);
  });
});

describe('gateReadiness', () => {
  it('given a service still starting, then /ready says what it waits for, routes answer 503, /health answers', async () => {
    const app = Fastify();
    app.get('/ready', () => ({ status: 'ready' }));
    app.get('/health', () => ({ status: 'ok' }));
    app.get('/Patient/:id', () => ({ resourceType: 'Patient' }));
    const gate = gateReadiness(app);
    gate.waiting('waiting for kafka (producer connect) (attempt 2: KafkaJSConnectionError)');

    const ready = await app.inject({ method: 'GET', url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({
      status: 'not-ready',
      checks: {
        startup: {
          ok: false,
          detail: 'waiting for kafka (producer connect) (attempt 2: KafkaJSConnectionError)',
        },
      },
    });
    const route = await app.inject({ method: 'GET', url: '/Patient/x' });
    expect(route.statusCode).toBe(503);
    expect(route.headers['retry-after']).toBe('2');
    expect(route.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'transient' }] });
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);

    // When start-up is done, then the service's own answers come through
    gate.open();
    expect((await app.inject({ method: 'GET', url: '/ready' })).json()).toEqual({ status: 'ready' });
    expect((await app.inject({ method: 'GET', url: '/Patient/x' })).statusCode).toBe(200);
    await app.close();
  });
});
