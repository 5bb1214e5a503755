import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { patientRegistered } from '../../test/support/fixtures.js';
import { HubError } from '../errors/index.js';
import { createLogger } from '../telemetry/logger.js';
import type { RawRecord } from './producer.js';
import {
  BatchFenced,
  createExclusive,
  createGrouper,
  decodeBatch,
  decodeFailureAction,
  handleAlone,
  withRetry,
  type BatchContext,
  type DeadLetter,
  type DecodedRecord,
  type PartitionBatch,
} from './consumer-batch.js';

const logger = createLogger({ name: 'consumer-batch-unit', level: 'silent' });
const TOPIC = 'hub.patient.v1';
const poison = () => new HubError('HUB_EVENT_INVALID', 'refused by the handler');
const down = () => new HubError('HUB_DB_UNAVAILABLE', 'store down', { retriable: true });

function message(offset: number, value = `v${offset}`): KafkaMessage {
  return {
    key: Buffer.from('PA'),
    value: Buffer.from(value),
    timestamp: '1',
    attributes: 0,
    offset: String(offset),
    headers: {},
  };
}

function record(offset: number): DecodedRecord {
  return {
    topic: TOPIC,
    partition: 0,
    offset: BigInt(offset),
    key: 'PA',
    timestamp: 1,
    event: patientRegistered('PA', 'One', `c${offset}`),
  };
}

/** A batch context whose handler, codec and producer are recorded fakes. */
function fakes(handle: (b: PartitionBatch) => Promise<void>) {
  const parked: RawRecord[] = [];
  const dead: DeadLetter[] = [];
  const sleeps: number[] = [];
  let steps = 0;
  const ctx: BatchContext = {
    opts: {
      codec: {
        decode: () => Promise.reject(new Error('not used')),
        decodeIfResolved: (value) => {
          if (value.toString() === 'junk') throw new HubError('HUB_EVENT_UNDECODABLE', 'not Avro');
          return patientRegistered('PA', 'One', value.toString());
        },
      },
      producer: {
        publishRaw: (records) => {
          parked.push(...records);
          return Promise.resolve();
        },
      },
      groupId: 'g1',
      dlqTopic: 'hub.dlq.g1',
      onDeadLetter: (d) => dead.push(d),
    },
    log: logger,
    handle,
    retry: {
      maxRetries: 3,
      baseMs: 250,
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
      log: logger,
      step: () => {
        steps++;
      },
    },
  };
  return { ctx, parked, dead, sleeps, steps: () => steps };
}

const running = { heartbeat: () => Promise.resolve(), isRunning: () => true, isStale: () => false };

describe('withRetry', () => {
  it('given retriable failures, then it backs off exponentially and gives up after maxRetries with the last error', async () => {
    const { ctx, sleeps, steps } = fakes(() => Promise.resolve());
    let calls = 0;
    const attempt = () => {
      calls++;
      return Promise.reject(down());
    };
    await expect(withRetry(ctx.retry, 'handler', attempt, running.heartbeat)).rejects.toMatchObject({
      code: 'HUB_DB_UNAVAILABLE',
    });
    expect(calls).toBe(4);
    expect(sleeps).toEqual([250, 500, 1000]);
    expect(steps()).toBe(4);
  });

  it('given a failure that is not retriable, then it fails at once', async () => {
    const { ctx, sleeps } = fakes(() => Promise.resolve());
    await expect(
      withRetry(ctx.retry, 'handler', () => Promise.reject(poison()), running.heartbeat),
    ).rejects.toMatchObject({ code: 'HUB_EVENT_INVALID' });
    expect(sleeps).toEqual([]);
  });

  it('caps a back-off at 15 s', async () => {
    const { ctx, sleeps } = fakes(() => Promise.resolve());
    const policy = { ...ctx.retry, maxRetries: 8 };
    let calls = 0;
    const attempt = () => (++calls < 8 ? Promise.reject(down()) : Promise.resolve('ok'));
    await expect(withRetry(policy, 'decode', attempt, running.heartbeat)).resolves.toBe('ok');
    expect(sleeps).toEqual([250, 500, 1000, 2000, 4000, 8000, 15_000]);
  });
});

describe('decodeBatch', () => {
  it('given an undecodable record, then it is dead-lettered as fetched and the others are decoded in order', async () => {
    const { ctx, parked, dead } = fakes(() => Promise.resolve());
    const batch = { topic: TOPIC, partition: 2, messages: [message(7), message(8, 'junk'), message(9)] };
    const decoded = await decodeBatch(ctx, batch, running.heartbeat);
    expect(decoded?.records.map((r) => r.offset)).toEqual([7n, 9n]);
    expect(decoded?.records[0]).toMatchObject({ topic: TOPIC, partition: 2, key: 'PA', timestamp: 1 });
    // Each record beside the message it was decoded from (what a dead letter copies)
    expect(decoded?.messages.map((m) => m.offset)).toEqual(['7', '9']);
    expect(parked).toHaveLength(1);
    expect(parked[0]).toMatchObject({ topic: 'hub.dlq.g1', value: Buffer.from('junk') });
    expect(parked[0]?.headers).toMatchObject({
      'hub-dlq-reason-code': 'HUB_EVENT_UNDECODABLE',
      'hub-dlq-consumer': 'g1',
      'hub-dlq-source-topic': TOPIC,
      'hub-dlq-source-partition': '2',
      'hub-dlq-source-offset': '8',
    });
    expect(dead).toEqual([
      {
        consumer: 'g1',
        reasonCode: 'HUB_EVENT_UNDECODABLE',
        reason: 'not Avro',
        topic: TOPIC,
        partition: 2,
        offset: '8',
      },
    ]);
  });
});

describe('decodeFailureAction', () => {
  it('given an unreachable registry, then it pauses; another retriable failure retries; anything else dead-letters', () => {
    expect(decodeFailureAction(new HubError('HUB_REGISTRY_UNAVAILABLE', 'connection refused'))).toBe('pause');
    expect(decodeFailureAction(down())).toBe('retry');
    expect(decodeFailureAction(new HubError('HUB_EVENT_UNDECODABLE', 'schema id 9 is not known'))).toBe(
      'dead-letter',
    );
    expect(decodeFailureAction(new HubError('HUB_EVENT_UNKNOWN_TYPE', 'not an event'))).toBe('dead-letter');
    expect(decodeFailureAction(new Error('avsc: truncated buffer'))).toBe('dead-letter');
  });
});

describe('decodeBatch with the registry down', () => {
  /** A codec whose registry is unreachable for the first `outage` lookups, resolving nothing in advance. */
  function outageFakes(outage: number) {
    const f = fakes(() => Promise.resolve());
    let lookups = 0;
    const paused: boolean[] = [];
    f.ctx.opts = {
      ...f.ctx.opts,
      codec: {
        decodeIfResolved: () => undefined,
        decode: (value) =>
          ++lookups <= outage
            ? Promise.reject(new HubError('HUB_REGISTRY_UNAVAILABLE', 'registry unreachable'))
            : Promise.resolve(patientRegistered('PA', 'One', value.toString())),
      },
      onPause: (p) => paused.push(p.paused),
    };
    return { ...f, paused, lookups: () => lookups };
  }

  it('given an outage longer than the retries, then the batch waits it out: nothing skipped, nothing dead-lettered', async () => {
    const { ctx, dead, parked, sleeps, paused } = outageFakes(20);
    const batch = { topic: TOPIC, partition: 0, messages: [message(1), message(2)] };
    const decoded = await decodeBatch(ctx, batch, running.heartbeat);
    expect(decoded?.records.map((r) => r.offset)).toEqual([1n, 2n]);
    expect(dead).toEqual([]);
    expect(parked).toEqual([]);
    expect(sleeps).toHaveLength(20);
    expect(Math.max(...sleeps)).toBe(15_000);
    expect(paused).toEqual([true, false]);
  });

  it('given the consumer stopping during the outage, then the batch is given up unresolved, not dead-lettered', async () => {
    const { ctx, dead } = outageFakes(1_000);
    let checks = 0;
    const batch = { topic: TOPIC, partition: 0, messages: [message(1)] };
    await expect(decodeBatch(ctx, batch, running.heartbeat, () => ++checks < 5)).resolves.toBeNull();
    expect(dead).toEqual([]);
  });
});

describe('handleAlone', () => {
  const decodedOf = (offsets: number[]) => ({
    records: offsets.map(record),
    messages: offsets.map((o) => message(o)),
  });

  it('given a store that refuses the batch as fenced, then it is dropped unresolved: no isolation, no dead letter', async () => {
    const fenced: number[] = [];
    const calls: number[] = [];
    const { ctx, dead } = fakes((b) => {
      calls.push(b.records.length);
      return Promise.reject(new BatchFenced(b.topic, b.partition));
    });
    ctx.onFenced = (b) => fenced.push(b.partition);
    const decoded = decodedOf([1, 2]);
    const whole = {
      topic: TOPIC,
      partition: 0,
      records: decoded.records,
      lastOffset: 2n,
      fence: 1n,
    };
    await expect(handleAlone(ctx, whole, decoded, running)).resolves.toBe(false);
    expect(calls).toEqual([2]);
    expect(dead).toEqual([]);
    expect(fenced).toEqual([0]);
  });

  it('given a poison record, then the rest lands, the poison is parked and checkpointed, the last one up to the batch end', async () => {
    const calls: { offsets: bigint[]; lastOffset: bigint }[] = [];
    const { ctx, dead } = fakes((b) => {
      calls.push({ offsets: b.records.map((r) => r.offset), lastOffset: b.lastOffset });
      return b.records.length > 1 || b.records[0]?.offset === 2n
        ? Promise.reject(poison())
        : Promise.resolve();
    });
    const decoded = decodedOf([1, 2, 3]);
    const whole = { topic: TOPIC, partition: 0, records: decoded.records, lastOffset: 4n };
    await expect(handleAlone(ctx, whole, decoded, running)).resolves.toBe(true);
    expect(calls).toEqual([
      { offsets: [1n, 2n, 3n], lastOffset: 4n },
      { offsets: [1n], lastOffset: 1n },
      { offsets: [2n], lastOffset: 2n },
      { offsets: [], lastOffset: 2n },
      { offsets: [3n], lastOffset: 4n },
    ]);
    expect(dead.map((d) => d.offset)).toEqual(['2']);
  });

  it('given a batch of undecodable records only that fails, then it is checkpointed at its last offset', async () => {
    const calls: bigint[] = [];
    const { ctx } = fakes((b) => {
      calls.push(b.lastOffset);
      return calls.length === 1 ? Promise.reject(poison()) : Promise.resolve();
    });
    await handleAlone(
      ctx,
      { topic: TOPIC, partition: 0, records: [], lastOffset: 6n },
      { records: [], messages: [] },
      running,
    );
    expect(calls).toEqual([6n, 6n]);
  });

  it('given the partition lost while isolating, then it stops and reports nothing resolved', async () => {
    const { ctx, dead } = fakes(() => Promise.reject(poison()));
    const decoded = decodedOf([1, 2]);
    const whole = { topic: TOPIC, partition: 0, records: decoded.records, lastOffset: 2n };
    await expect(handleAlone(ctx, whole, decoded, { ...running, isStale: () => true })).resolves.toBe(false);
    expect(dead).toEqual([]);
  });

  it('given a retriable failure that outlasts the retries, then it fails the batch and parks nothing', async () => {
    const { ctx, dead } = fakes(() => Promise.reject(down()));
    const decoded = decodedOf([1]);
    const whole = { topic: TOPIC, partition: 0, records: decoded.records, lastOffset: 1n };
    await expect(handleAlone(ctx, whole, decoded, running)).rejects.toMatchObject({
      code: 'HUB_DB_UNAVAILABLE',
    });
    expect(dead).toEqual([]);
  });
});

describe('createGrouper', () => {
  const batchOf = (partition: number, n: number): PartitionBatch => ({
    topic: TOPIC,
    partition,
    records: Array.from({ length: n }, (_, i) => record(i)),
    lastOffset: BigInt(n),
  });

  it('groups the batches of one turn up to maxRecords; a batch left alone and a failed group take the ordinary path', async () => {
    const groups: number[][] = [];
    const grouper = createGrouper(
      (batches) => {
        groups.push(batches.map((b) => b.partition));
        return batches.some((b) => b.partition === 3) ? Promise.reject(poison()) : Promise.resolve();
      },
      10,
      createExclusive(),
      () => undefined,
    );
    const settled = await Promise.all([
      grouper(batchOf(0, 4)),
      grouper(batchOf(1, 4)),
      grouper(batchOf(2, 4)),
    ]);
    expect(groups).toEqual([[0, 1]]);
    expect(settled).toEqual([true, true, false]);
    const failed = await Promise.all([grouper(batchOf(3, 1)), grouper(batchOf(4, 1))]);
    expect(groups).toEqual([
      [0, 1],
      [3, 4],
    ]);
    expect(failed).toEqual([false, false]);
  });
});
