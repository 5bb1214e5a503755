// The consumer's own ceiling for a replay: the published log read from
// offset 0 by the client the projection runner consumes with (kafkajs,
// eachBatch, the runner's fetch caps), each value decoded by the codec the
// runner decodes with (its read model's skipped fields left undecoded), and
// nothing else: no evolve, no Postgres. A projection cannot replay faster
// than this, so read limit / COPY limit is the ceiling of its replay / COPY
// ratio on the machine of the run.
import type { EventCodec } from '../../libs/events/codec.js';
import {
  FETCH_PARTITION_MAX_BYTES,
  GROUPED_FETCH_MAX_BYTES,
  type KafkaClient,
} from '../../libs/kafka/client.js';

export interface ReadLimitOptions {
  kafka: KafkaClient;
  topics: readonly string[];
  /** As the runner decodes: codecSkipping(codec, projection.skip) for a read model that skips fields. */
  codec: Pick<EventCodec, 'decode' | 'decodeIfResolved'>;
  /** A group of its own: the read starts at offset 0. */
  groupId: string;
  /** Records in the topics: the read ends when it has seen them all. */
  total: number;
  /** Decode the values (default true); false reads the records alone. */
  decode?: boolean;
}

export interface ReadLimit {
  /** From the first record until the last. */
  seconds: number;
  /** This process's CPU (user + system) per record over the same span. */
  cpuUsPerEvent: number;
}

/**
 * Reads every record of `topics` once. Timed from the first fetched batch,
 * as a replay is timed from its partitions' assignment: joining the group
 * is not part of the limit.
 */
export async function readLogOnce(o: ReadLimitOptions): Promise<ReadLimit> {
  const consumer = o.kafka.consumer({
    groupId: o.groupId,
    allowAutoTopicCreation: false,
    maxBytes: GROUPED_FETCH_MAX_BYTES,
    maxBytesPerPartition: FETCH_PARTITION_MAX_BYTES,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...o.topics], fromBeginning: true });
    let seen = 0;
    let t0 = 0;
    let cpu0 = process.cpuUsage();
    const decode = o.decode ?? true;
    const end = await new Promise<{ at: number; cpu: NodeJS.CpuUsage }>((resolve, reject) => {
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            if (t0 === 0) {
              t0 = performance.now();
              cpu0 = process.cpuUsage();
            }
            if (decode) {
              for (const m of batch.messages) {
                // Synchronous once the writer schema is known, as the runner decodes (decodeBatch).
                if (m.value && o.codec.decodeIfResolved(m.value) === undefined) await o.codec.decode(m.value);
              }
            }
            seen += batch.messages.length;
            if (seen >= o.total) resolve({ at: performance.now(), cpu: process.cpuUsage(cpu0) });
          },
        })
        .catch(reject);
    });
    return { seconds: (end.at - t0) / 1000, cpuUsPerEvent: (end.cpu.user + end.cpu.system) / o.total };
  } finally {
    await consumer.disconnect();
  }
}
