import type { ConsumerConfig } from 'kafkajs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createEventCodec } from '../events/codec.js';
import { createRegistryClient } from '../events/registry.js';
import { createLogger } from '../telemetry/logger.js';
import { createKafkaClient, type FetchLimits } from './client.js';
import { createConsumerRunner, type ConsumerRunnerOptions } from './consumer.js';
import { createEventProducer } from './producer.js';

const logger = createLogger({ name: 'consumer-fetch', level: 'silent' });

/** The kafkajs consumer configuration a runner on a fresh client asks for (nothing connects). */
async function configOf(
  limits: FetchLimits | null,
  extra: Partial<ConsumerRunnerOptions> = {},
): Promise<ConsumerConfig | undefined> {
  // No broker listens there: the consumer is never made, only its configuration seen.
  const kafka = createKafkaClient({
    brokers: ['127.0.0.1:1'],
    clientId: 'consumer-fetch',
    logger,
    ...(limits ? { fetchLimits: limits } : {}),
  });
  const seen: ConsumerConfig[] = [];
  vi.spyOn(kafka, 'consumer').mockImplementation((cfg) => {
    seen.push(cfg);
    throw new Error('configuration seen');
  });
  const codec = createEventCodec(createRegistryClient('http://127.0.0.1:1/apis/ccompat/v7'));
  const runner = createConsumerRunner({
    kafka,
    codec,
    producer: createEventProducer({ kafka, codec }),
    groupId: 'g',
    topics: ['t'],
    dlqTopic: 'dlq',
    logger,
    handle: () => Promise.resolve(),
    ...extra,
  });
  await expect(runner.start()).rejects.toThrow('configuration seen');
  return seen[0];
}

describe('consumer runner: fetch sizes', () => {
  afterEach(() => vi.restoreAllMocks());

  it("given the service's limits on its client, then every runner's fetches are capped by them", async () => {
    const limits = { maxBytes: 1024 * 1024, maxBytesPerPartition: 256 * 1024 };
    expect(await configOf(limits)).toMatchObject(limits);
    expect(await configOf(limits, { handleGroup: () => Promise.resolve() })).toMatchObject(limits);
  });

  it('given a client without limits, then the runner keeps its own (2 MiB grouped, 10 MiB alone, 2 MiB per partition)', async () => {
    expect(await configOf(null)).toMatchObject({
      maxBytes: 10 * 1024 * 1024,
      maxBytesPerPartition: 2 * 1024 * 1024,
    });
    expect(await configOf(null, { handleGroup: () => Promise.resolve() })).toMatchObject({
      maxBytes: 2 * 1024 * 1024,
    });
  });
});
