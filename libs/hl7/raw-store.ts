import type { KafkaClient } from '../kafka/client.js';
import { scanTopic } from '../kafka/scan.js';

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

/**
 * Reads a topic from the beginning up to its end offsets as they were when
 * the call started (a bounded scan, not a subscription).
 */
export async function readTopic(
  kafka: KafkaClient,
  topic: string,
  opts: { timeoutMs?: number; filter?: (r: StoredRecord) => boolean } = {},
): Promise<StoredRecord[]> {
  const records = (await scanTopic(kafka, topic, { timeoutMs: opts.timeoutMs ?? 120_000 })).map(
    (r): StoredRecord => ({
      ...r,
      key: r.key ? r.key.toString('utf8') : null,
      value: r.value ?? Buffer.alloc(0),
    }),
  );
  return opts.filter ? records.filter(opts.filter) : records;
}
