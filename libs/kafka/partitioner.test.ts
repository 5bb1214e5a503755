import fc from 'fast-check';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { HubPartitioner, trackingPartitioner, unanswered } from './partitioner.js';

const metadata = (n: number): PartitionMetadata[] =>
  Array.from({ length: n }, (_, i) => ({
    partitionErrorCode: 0,
    partitionId: i,
    leader: 1,
    replicas: [1],
    isr: [1],
    offlineReplicas: [],
  }));

describe('HubPartitioner', () => {
  it('picks the partition kafkajs DefaultPartitioner picks, for any key and partition count', () => {
    const ours = HubPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'grapheme' }),
          fc.uint8Array().map((a) => Buffer.from(a)),
        ),
        fc.integer({ min: 1, max: 64 }),
        (key, n) => {
          const args = { topic: 't', partitionMetadata: metadata(n), message: { key, value: null } };
          expect(ours(args)).toBe(theirs(args));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("given the Java client's murmur2 test vectors, then each key lands at toPositive(hash) % partitions", () => {
    // Utils.murmur2 values from Apache Kafka's UtilsTest.testMurmur2.
    const java: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    const ours = HubPartitioner();
    for (const n of [6, 997]) {
      const md = metadata(n);
      for (const [key, hash] of java) {
        expect(ours({ topic: 't', partitionMetadata: md, message: { key, value: null } })).toBe(
          (hash & 0x7fffffff) % n,
        );
      }
    }
  });

  it('honours an explicit partition and spreads keyless records', () => {
    const ours = HubPartitioner();
    const md = metadata(4);
    expect(
      ours({ topic: 't', partitionMetadata: md, message: { key: 'k', value: null, partition: 3 } }),
    ).toBe(3);
    const picked = new Set(
      Array.from({ length: 8 }, () => ours({ topic: 't', partitionMetadata: md, message: { value: null } })),
    );
    expect(picked.size).toBe(4);
  });
});

describe('trackingPartitioner / unanswered (a kafkajs retry that skips a partition)', () => {
  it('given records sent to three partitions and an answer for two, then the third is unanswered', () => {
    // given the partitions the hub's partitioner chose for three keys
    const { partitioner, chosen } = trackingPartitioner();
    const pick = partitioner();
    const partitionMetadata = Array.from({ length: 6 }, (_, i) => ({
      partitionId: i,
      leader: 1,
      replicas: [1],
      isr: [1],
      partitionErrorCode: 0,
    }));
    const ps = ['a', 'b', 'c'].map((key) =>
      pick({ topic: 't', partitionMetadata, message: { key, value: 'v' } }),
    );
    expect(chosen.size).toBe(new Set(ps).size);
    // when Kafka answers for all but the last one
    const answered = [...new Set(ps)].slice(0, -1).map((partition) => ({ topicName: 't', partition }));
    // then that one is reported, and a full answer reports none
    expect(unanswered(chosen, answered)).toEqual([`t:${[...new Set(ps)].at(-1)}`]);
    expect(
      unanswered(
        chosen,
        [...new Set(ps)].map((partition) => ({ topicName: 't', partition })),
      ),
    ).toEqual([]);
  });
});
