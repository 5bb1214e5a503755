import type { Knex } from 'knex';
import { toHubError } from '../../libs/errors/index.js';
import { listTopics } from '../../libs/kafka/admin.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import { FAST_REJOIN, watchGroupMembership } from '../../libs/kafka/membership.js';
import type { Logger } from '../../libs/telemetry/logger.js';

/**
 * Rejected and dead-lettered input, by source and reason, for the data
 * quality views. Dead-letter topics carry raw records (not Avro events), so
 * this is a small side consumer next to the projection runner: it reads only
 * the headers every dead-letter writer sets, never the payload (which may be
 * PHI), and inserts one row per record keyed by its topic position, so a
 * redelivery changes nothing. It writes through the stable schema's view, so
 * a rebuild's switch (which carries the table over) never loses a row.
 */
export interface DeadLetterRow {
  position: string;
  dlq_topic: string;
  source: string;
  reason: string;
  recorded_at: Date;
}

type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;

function header(headers: Record<string, HeaderValue> | undefined, name: string): string | null {
  const v = headers?.[name];
  const first = Array.isArray(v) ? v[0] : v;
  if (first === undefined) return null;
  return typeof first === 'string' ? first : first.toString('utf8');
}

/** Pure: the tally row of one dead-letter record, from its headers and position only. */
export function deadLetterRow(
  topic: string,
  partition: number,
  offset: string,
  timestamp: string,
  headers: Record<string, HeaderValue> | undefined,
): DeadLetterRow {
  // HL7 adapter: sender is "application|facility" (MSH-3|MSH-4); the application names the source.
  const hl7Sender = header(headers, 'hl7-sender');
  const source =
    header(headers, 'hub-dlq-source') ??
    (hl7Sender ? `hl7:${hl7Sender.split('|')[0] ?? ''}` : null) ??
    header(headers, 'hub-dlq-consumer') ??
    'unknown';
  const reason = header(headers, 'hub-reason-code') ?? header(headers, 'hub-dlq-reason-code') ?? 'unknown';
  return {
    position: `${topic}|${partition}|${offset}`,
    dlq_topic: topic,
    source: source.slice(0, 200),
    reason: reason.slice(0, 200),
    recorded_at: new Date(Number(timestamp)),
  };
}

export interface DeadLetterTally {
  start(): Promise<string[]>;
  stop(): Promise<void>;
}

export function createDeadLetterTally(opts: {
  db: Knex;
  kafka: KafkaClient;
  stable: string;
  /** Dead-letter topics to count; those that do not exist (yet) are skipped. */
  topics: readonly string[];
  groupId: string;
  logger: Logger;
}): DeadLetterTally {
  const log = opts.logger.child({ component: 'dead-letter-tally' });
  let consumer: ReturnType<KafkaClient['consumer']> | null = null;
  let membership: { stop(): void } | null = null;
  const tally: DeadLetterTally = {
    async start() {
      const existing = new Set(await listTopics(opts.kafka));
      const topics = opts.topics.filter((t) => existing.has(t));
      if (topics.length === 0) return [];
      const c = opts.kafka.consumer({
        groupId: opts.groupId,
        allowAutoTopicCreation: false,
        // A stop waits for the fetch in flight: kafkajs' 5 s long poll made every SIGTERM take ~5 s.
        maxWaitTimeInMs: 500,
        // A restarted projector rejoins in ~6 s, not after its killed predecessor's 30 s session.
        ...FAST_REJOIN,
      });
      consumer = c;
      membership = watchGroupMembership(c, (seconds) => {
        log.warn({ secondsWithoutHeartbeat: seconds }, 'the group lost this member; reconnecting');
        void tally
          .stop()
          .then(() => tally.start())
          .catch((err: unknown) => log.error({ code: toHubError(err).code }, 'could not reconnect'));
      });
      await c.connect();
      for (const topic of topics) await c.subscribe({ topic, fromBeginning: true });
      await c.run({
        eachBatch: async ({ batch }) => {
          const rows = batch.messages.map((m) =>
            deadLetterRow(batch.topic, batch.partition, m.offset, m.timestamp, m.headers),
          );
          if (rows.length === 0) return;
          try {
            await opts.db
              .withSchema(opts.stable)
              .into('dead_letters')
              .insert(rows)
              .onConflict('position')
              .ignore();
          } catch (err) {
            log.error({ code: toHubError(err).code }, 'could not record dead letters');
            throw err;
          }
        },
      });
      return topics;
    },
    async stop() {
      membership?.stop();
      membership = null;
      const c = consumer;
      consumer = null;
      if (c) await c.disconnect();
    },
  };
  return tally;
}
