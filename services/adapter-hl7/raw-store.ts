import { randomUUID } from 'node:crypto';
import type { IHeaders } from 'kafkajs';
import { HubError } from '../../libs/errors/index.js';
import { endOffsets } from '../../libs/kafka/admin.js';
import type { KafkaClient } from '../../libs/kafka/client.js';

/** One record of a non-event topic (raw inbound HL7, dead letters), headers as strings. */
export interface StoredRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
  timestamp: number;
}

function headerText(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined) continue;
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return out;
}

/**
 * Reads a topic from the beginning up to its end offsets as they were when
 * the call started (a bounded scan, not a subscription). Uses a throw-away
 * consumer group that commits nothing and is deleted afterwards.
 */
export async function readTopic(
  kafka: KafkaClient,
  topic: string,
  opts: { timeoutMs?: number; filter?: (r: StoredRecord) => boolean } = {},
): Promise<StoredRecord[]> {
  const ends = await endOffsets(kafka, topic);
  const remaining = new Map([...ends].filter(([, high]) => high > 0n));
  if (remaining.size === 0) return [];
  const groupId = `hub-scan-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  const out: StoredRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new HubError('HUB_KAFKA_UNAVAILABLE', `reading ${topic} did not finish in time`)),
        opts.timeoutMs ?? 120_000,
      );
      consumer
        .run({
          autoCommit: false,
          eachMessage: ({ partition, message }) => {
            const high = remaining.get(partition);
            const offset = BigInt(message.offset);
            if (high !== undefined && offset < high) {
              const rec: StoredRecord = {
                topic,
                partition,
                offset: message.offset,
                key: message.key ? message.key.toString('utf8') : null,
                value: message.value ?? Buffer.alloc(0),
                headers: headerText(message.headers),
                timestamp: Number(message.timestamp),
              };
              if (!opts.filter || opts.filter(rec)) out.push(rec);
              if (offset >= high - 1n) remaining.delete(partition);
            }
            if (remaining.size === 0) {
              clearTimeout(timer);
              resolve();
            }
            return Promise.resolve();
          },
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        });
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([groupId]))
      .catch(() => undefined)
      .finally(() => void admin.disconnect().catch(() => undefined));
  }
  return out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}
