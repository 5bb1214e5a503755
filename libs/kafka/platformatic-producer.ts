import {
  findErrorBy,
  ProduceAcks,
  Producer,
  type MessageToProduce,
  type ProduceResult,
  type SASLOptions,
} from '@platformatic/kafka';
import type { ConnectionOptions } from 'node:tls';
import type { IHeaders, KafkaConfig } from 'kafkajs';
import { HubError, isHubError } from '../errors/index.js';
import { keyHash, unanswered } from './partitioner.js';
import {
  coalescingEventProducer,
  mapKafkaError,
  type EventProducer,
  type EventProducerOptions,
  type ProduceTransport,
} from './producer.js';
import { kafkajsSecurity, type KafkaSecurity, type SecurityIo } from './security.js';

/**
 * The hub's EventProducer on @platformatic/kafka (pure JS, Node >= 24.6):
 * the same records, headers, partitions, coalescing and ack deadline as the
 * kafkajs one (producer.ts), a different wire client. Chosen with
 * KAFKA_PRODUCER_CLIENT (producer-client.ts); the A/B that decides the
 * default is scripts/bench/kafka-clients.ts.
 */
export interface PlatformaticProducerOptions extends EventProducerOptions {
  brokers: string[];
  clientId: string;
  security?: KafkaSecurity | undefined;
  /** How long a broker connection may take (ms); 3 s as the kafkajs client. */
  connectionTimeoutMs?: number;
  /** How long one request may wait for its answer before it is retried on a new connection (ms); 30 s as kafkajs. */
  requestTimeoutMs?: number;
  /**
   * Coalesced batches handed to the library at once (default 1). The library
   * itself keeps one produce request per broker connection on the wire with
   * idempotence (it forces maxInflights 1), so more only queues the next
   * batch in the client: no gain measured (scripts/bench/kafka-clients.ts,
   * platformatic-4), and after a failure the queued batch would go out on
   * the failed producer's reset sequences. Per-partition order holds either
   * way (one connection per broker, requests answered in order).
   */
  maxInFlight?: number;
}

type Headers = Map<Buffer, Buffer>;
/** Values may be null: a tombstone, or a dead letter of one (consumer-batch.ts). */
type Message = MessageToProduce<Buffer, Buffer | null, Buffer, Buffer>;

/**
 * Header names as bytes, made once: the hub writes the same few names on
 * every record (four to six per record), and a Buffer per name per record
 * was among the larger allocations of the write path. The library only reads a key (and keys by
 * identity within one record's map), so one Buffer may serve every record.
 * Names come from the hub's code, not from input; bounded anyway.
 */
const headerNames = new Map<string, Buffer>();

function headerName(k: string): Buffer {
  let b = headerNames.get(k);
  if (!b) {
    b = Buffer.from(k);
    if (headerNames.size < 256) headerNames.set(k, b);
  }
  return b;
}

/**
 * kafkajs-style headers as the library's: names and values as bytes; a
 * repeated header (array value) keeps every value, under distinct key
 * objects since the map is keyed by identity.
 */
export function headersOf(h: IHeaders | undefined): Headers {
  const out: Headers = new Map();
  if (!h) return out;
  // for-in, not Object.entries: no pair arrays per record; own keys only, as entries gives.
  for (const k in h) {
    const v = h[k];
    if (v === undefined || !Object.hasOwn(h, k)) continue;
    if (!Array.isArray(v)) {
      out.set(headerName(k), Buffer.isBuffer(v) ? v : Buffer.from(v));
      continue;
    }
    // The first value under the shared name, the others under names of their own.
    v.forEach((x, i) =>
      out.set(i === 0 ? headerName(k) : Buffer.from(k), Buffer.isBuffer(x) ? x : Buffer.from(x)),
    );
  }
  return out;
}

const asBuffer = (k: string | Buffer | null): Buffer | undefined =>
  k === null ? undefined : Buffer.isBuffer(k) ? k : Buffer.from(k);

/**
 * Kafka's Java partitioner for keyed records (murmur2, partitioner.ts); the
 * library takes the result modulo the topic's partition count. Keyless
 * records (none on the hub's own paths) go round-robin per topic.
 */
function hubPartitioner(): (message: Message, key: Buffer | undefined) => number {
  const next = new Map<string, number>();
  return (message, key) => {
    if (key !== undefined) return keyHash(key);
    const n = next.get(message.topic) ?? 0;
    next.set(message.topic, n + 1);
    return n & 0x7fffffff;
  };
}

/** The settings of libs/kafka/security.ts, as kafkajs gets them, in the library's terms. */
export function platformaticSecurity(
  security: KafkaSecurity | undefined,
  io?: SecurityIo,
): {
  tls?: ConnectionOptions;
  sasl?: SASLOptions;
} {
  const { ssl, sasl } = kafkajsSecurity(security, io);
  return {
    ...(ssl && typeof ssl === 'object' ? { tls: ssl } : {}),
    ...(sasl ? { sasl: saslOf(sasl) } : {}),
  };
}

function saslOf(sasl: NonNullable<KafkaConfig['sasl']>): SASLOptions {
  // kafkajsSecurity gives only these two shapes (security.ts saslOptions).
  if (
    (sasl.mechanism === 'scram-sha-512' || sasl.mechanism === 'scram-sha-256') &&
    'username' in sasl &&
    'password' in sasl
  ) {
    return {
      mechanism: sasl.mechanism === 'scram-sha-512' ? 'SCRAM-SHA-512' : 'SCRAM-SHA-256',
      username: sasl.username,
      password: sasl.password,
    };
  }
  if (sasl.mechanism === 'oauthbearer' && 'oauthBearerProvider' in sasl) {
    const provider = sasl.oauthBearerProvider;
    return { mechanism: 'OAUTHBEARER', token: async () => (await provider()).value };
  }
  throw new HubError('HUB_CONFIG_INVALID', `SASL mechanism ${sasl.mechanism} is not supported`);
}

/**
 * The library's failures in the hub's error model: anything the library
 * marks retriable (network, timeouts, leader moves) is a retriable
 * HUB_KAFKA_UNAVAILABLE, as kafkajs's are (mapKafkaError); the rest
 * HUB_KAFKA_ERROR. Only the library's error code (PLT_KFK_NETWORK, ...)
 * goes into the message: its errors all have the name "Error".
 */
export function mapPlatformaticError(err: unknown, what = 'kafka write'): HubError {
  if (isHubError(err)) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const retriable =
    findErrorBy(e, 'canRetry', true) !== null ||
    findErrorBy(e, 'code', 'PLT_KFK_NETWORK') !== null ||
    findErrorBy(e, 'code', 'PLT_KFK_TIMEOUT') !== null;
  const code = (e as { code?: unknown }).code;
  const name = typeof code === 'string' ? code : e.name;
  return mapKafkaError({ name, message: e.message, retriable }, what, err);
}

/**
 * With idempotence the library retries until it succeeds when `retries` is
 * 0 or 1; the hub wants a bounded retry (a dead broker surfaces as an error
 * and no AA), so at least 2.
 */
const boundedRetries = (n: number): number => Math.max(2, n);

function platformaticTransport(opts: PlatformaticProducerOptions): ProduceTransport {
  const partitioner = hubPartitioner();
  const producer = new Producer<Buffer, Buffer | null, Buffer, Buffer>({
    clientId: opts.clientId,
    bootstrapBrokers: opts.brokers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    partitioner,
    autocreateTopics: false,
    retries: boundedRetries(opts.retries ?? 10),
    // kafkajs's schedule: 100 ms doubling up to 3 s.
    retryDelay: (_client, _op, attempt) => Math.min(100 * 2 ** attempt, 3_000),
    connectTimeout: opts.connectionTimeoutMs ?? 3_000,
    requestTimeout: opts.requestTimeoutMs ?? 30_000,
    ...platformaticSecurity(opts.security),
  });
  return {
    async connect() {
      try {
        await producer.initIdempotentProducer({});
      } catch (err) {
        // The library keeps reconnecting in the background otherwise.
        void producer.close(true).catch(() => undefined);
        throw mapPlatformaticError(err, 'kafka connect');
      }
    },
    disconnect: () => producer.close(true),
    async send(records) {
      // Partitions chosen here where the topic's metadata is known, so that
      // the answer can be checked against them; the library's first send
      // fetches it and uses the same partitioner.
      const topics = producer.currentMetadata?.topics;
      const messages: Message[] = records.map((r) => {
        const key = asBuffer(r.key);
        const count = topics?.get(r.topic)?.partitionsCount;
        const message: Message = {
          topic: r.topic,
          value: r.value,
          headers: headersOf(r.headers),
        };
        if (key !== undefined) message.key = key;
        if (count !== undefined) message.partition = partitioner(message, key) % count;
        return message;
      });
      let result: ProduceResult;
      try {
        result = await producer.send({ messages });
      } catch (err) {
        throw mapPlatformaticError(err);
      }
      assertEveryPartitionAnswered(messages, result);
    },
  };
}

/**
 * An answer must name every partition the records went to (as the kafkajs
 * path checks, partitioner.ts): a partition left out was not written.
 */
function assertEveryPartitionAnswered(messages: readonly Message[], result: ProduceResult): void {
  const chosen = new Set<string>();
  for (const m of messages) if (m.partition !== undefined) chosen.add(`${m.topic}:${m.partition}`);
  const answered = (result.offsets ?? []).map((o) => ({ topicName: o.topic, partition: o.partition }));
  const missing = unanswered(chosen, answered);
  if (missing.length > 0) {
    throw new HubError(
      'HUB_KAFKA_UNAVAILABLE',
      `kafka answered for ${chosen.size - missing.length} of ${chosen.size} partitions`,
      { retriable: true, details: { unanswered: missing.length } },
    );
  }
}

export function createPlatformaticEventProducer(opts: PlatformaticProducerOptions): EventProducer {
  return coalescingEventProducer(opts, () => platformaticTransport(opts), opts.maxInFlight ?? 1);
}
