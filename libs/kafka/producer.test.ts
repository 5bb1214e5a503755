import { describe, expect, it, vi } from 'vitest';
import { isRetriable } from '../errors/index.js';
import {
  DEFAULT_MAX_REQUEST_BYTES,
  DELIVERY_TIMEOUT_MS,
  requestChunks,
  withDeliveryDeadline,
  type RawRecord,
} from './producer.js';

const rec = (topic: string, bytes: number): RawRecord => ({
  topic,
  key: null,
  value: Buffer.alloc(bytes),
});

describe('requestChunks (bounded coalescing of produce requests)', () => {
  it('given many small writes, when chunked, then they share requests up to the bound, in order', () => {
    // given 100 callers with 10 KiB each
    const batch = Array.from({ length: 100 }, (_, i) => ({ id: i, records: [rec('t', 10 * 1024)] }));
    // when
    const chunks = requestChunks(batch, 100 * 1024);
    // then 10 requests of 10, order kept
    expect(chunks.map((c) => c.length)).toEqual(Array(10).fill(10));
    expect(chunks.flat().map((x) => x.owner.id)).toEqual(batch.map((b) => b.id));
  });

  it('given a 16 MiB raw frame and its attachment among small writes, when chunked, then each large record is a request of its own', () => {
    const small = { records: [rec('clinical.order.v1', 2_000)] };
    const large = {
      records: [
        rec('hl7.raw.v1', 16 * 1024 * 1024),
        rec('clinical.attachment.v1', 12 * 1024 * 1024),
        rec('clinical.result.v1', 3_000),
      ],
    };
    const chunks = requestChunks([small, large, small], DEFAULT_MAX_REQUEST_BYTES);
    expect(chunks.map((c) => c.map((x) => x.record.topic))).toEqual([
      ['clinical.order.v1'],
      ['hl7.raw.v1'],
      ['clinical.attachment.v1'],
      ['clinical.result.v1', 'clinical.order.v1'],
    ]);
    // no request mixes two large records: Kafka's 100 MiB request limit and the topics' 20 MiB hold
    for (const c of chunks) {
      const size = c.reduce((n, x) => n + (x.record.value?.length ?? 0), 0);
      expect(size <= DEFAULT_MAX_REQUEST_BYTES || c.length === 1).toBe(true);
    }
  });
});

describe('withDeliveryDeadline (a produce request kafkajs leaves unanswered)', () => {
  it('given a request that never settles, when the delivery timeout passes, then it fails as retriable HUB_KAFKA_UNAVAILABLE', async () => {
    vi.useFakeTimers();
    try {
      const settled = withDeliveryDeadline(new Promise<void>(() => undefined)).then(
        () => 'resolved',
        (e: unknown) => e,
      );
      await vi.advanceTimersByTimeAsync(DELIVERY_TIMEOUT_MS - 1);
      await vi.advanceTimersByTimeAsync(1);
      const err = await settled;
      expect(err).toMatchObject({ code: 'HUB_KAFKA_UNAVAILABLE' });
      expect(isRetriable(err)).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('given a request answered in time, then its answer passes through', async () => {
    await expect(withDeliveryDeadline(Promise.resolve(7), 1_000)).resolves.toBe(7);
  });
});
