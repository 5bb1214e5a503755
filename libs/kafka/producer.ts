import { CompressionTypes, type IHeaders, type Message, type Producer, type TopicMessages } from 'kafkajs';
import { HubError, isHubError } from '../errors/index.js';
import { EVENT_CONTRACTS, type ClinicalEvent } from '../events/index.js';
import type { EventCodec } from '../events/codec.js';
import type { KafkaClient } from './client.js';
import { assertAllAnswered, trackingPartitioner } from './partitioner.js';

export interface RawRecord {
  topic: string;
  key: string | Buffer | null;
  value: Buffer | null;
  headers?: IHeaders;
}

export interface PublishedEvent {
  topic: string;
  eventId: string;
}

/**
 * Writes to Kafka with acks=all on an idempotent producer. `publish` resolves
 * only once the broker has acknowledged every record: that is the moment an
 * adapter may answer AA / 201. Concurrent calls are coalesced into one
 * request (the next batch forms while the previous one is in flight), which
 * is what makes per-message awaiting affordable under load.
 */
export interface EventProducer {
  connect(): Promise<void>;
  publish(events: readonly ClinicalEvent[], extraHeaders?: IHeaders): Promise<PublishedEvent[]>;
  publishRaw(records: readonly RawRecord[]): Promise<void>;
  /**
   * For /ready: not ok while a write has waited longer than the ack timeout
   * (a hung broker) or when the last write failed; ok again as soon as a
   * write is acknowledged.
   */
  health(): { ok: boolean; detail?: string };
  disconnect(): Promise<void>;
}

/**
 * Resolves or rejects as `write` does, unless `ms` pass first: then rejects
 * with a retriable HUB_KAFKA_UNAVAILABLE. The write itself goes on (Kafka
 * offers no way to take it back); a caller that must know whether it landed
 * after all keeps `write`.
 */
export function withAckDeadline<T>(write: Promise<T>, ms: number): Promise<T> {
  return raceDeadline(
    write,
    ms,
    () =>
      new HubError('HUB_KAFKA_UNAVAILABLE', `kafka write not acknowledged within ${ms} ms`, {
        retriable: true,
        details: { ackTimeoutMs: ms },
      }),
  );
}

function raceDeadline<T>(p: Promise<T>, ms: number, late: () => HubError): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/**
 * How long one produce request may take, kafkajs's retries included, before
 * the writer gives up on it: Kafka's Java producer bounds a record the same
 * way (delivery.timeout.ms, the same default of 120 s). kafkajs bounds each
 * attempt and the number of retries, but not the reconnects and metadata
 * refreshes between them; writes are sent one request at a time, so a
 * request that never settled would hold every later write of the process
 * behind it. Past the deadline the request counts as failed (callers get a
 * retriable HUB_KAFKA_UNAVAILABLE and resend; a copy that lands after all is
 * absorbed downstream by its event id) and the next one goes out on a new
 * producer.
 */
export const DELIVERY_TIMEOUT_MS = 120_000;

export function withDeliveryDeadline<T>(request: Promise<T>, ms = DELIVERY_TIMEOUT_MS): Promise<T> {
  return raceDeadline(
    request,
    ms,
    () =>
      new HubError('HUB_KAFKA_UNAVAILABLE', `kafka request not answered within ${ms} ms`, {
        retriable: true,
        details: { deliveryTimeoutMs: ms },
      }),
  );
}

interface Pending {
  records: RawRecord[];
  enqueuedAt: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * One Kafka client's write path as the coalescing writer drives it: an
 * idempotent acks=all producer. `send` resolves once every record of the
 * request is acknowledged by all in-sync replicas. A transport that failed a
 * request is replaced by a new one (new producer id), see renewIfFailed.
 */
export interface ProduceTransport {
  connect(): Promise<void>;
  send(records: readonly RawRecord[]): Promise<void>;
  disconnect(): Promise<void>;
}

/** What every EventProducer takes, whichever Kafka client it writes through. */
export interface EventProducerOptions {
  codec: EventCodec;
  /** Transactional id is not used: one idempotent producer per process. */
  retries?: number;
  /** Where each event type goes; the catalog topic by default (tests use their own topics). */
  topicFor?: (type: ClinicalEvent['type']) => string;
  onPublished?: (topic: string, type: string, count: number) => void;
  /** Per caller and topic: seconds from handing records over until acks=all (metrics). */
  onProduced?: (topic: string, seconds: number) => void;
  /** Events acknowledged per meta.source.system (metrics: "interface silent" alerts). */
  onSources?: (counts: ReadonlyMap<string, number>, atMs: number) => void;
  /**
   * KAFKA_ACK_TIMEOUT_MS: publish and publishRaw reject after this long
   * without acks, and health() reports a write waiting longer as not ok.
   * Unset: callers wait for kafkajs' own retries, and health() uses 5 s.
   */
  ackTimeoutMs?: number;
  /**
   * False: callers are not rejected at the ack timeout (they apply it
   * themselves and keep the write, as the HL7 adapter does to answer a
   * resend without writing twice); health() still uses it. Default true.
   */
  rejectAtAckTimeout?: boolean;
  /**
   * Records of concurrent callers are coalesced into one produce request up
   * to about this many bytes; a record larger than this goes in a request of
   * its own. See DEFAULT_MAX_REQUEST_BYTES.
   */
  maxRequestBytes?: number;
}

export interface ProducerOptions extends EventProducerOptions {
  kafka: KafkaClient;
}

/**
 * Bound of one coalesced produce request. Kafka checks `max.message.bytes`
 * per partition batch (1 MiB by default on the clinical topics) and
 * `socket.request.max.bytes` (100 MiB) per request: unbounded coalescing
 * let many messages of one patient, or a few 16 MiB HL7 frames, add up past
 * either, and the whole request was refused. Under 1 MiB with room for the
 * per-record overhead; large records (raw frames, attachments, on topics
 * with a raised limit) are sent one per request.
 */
export const DEFAULT_MAX_REQUEST_BYTES = 768 * 1024;

function recordBytes(r: RawRecord): number {
  let n = (r.value?.length ?? 0) + (r.key === null ? 0 : Buffer.byteLength(r.key));
  const h = r.headers;
  // for-in (own keys, as Object.entries): this runs for every record written.
  for (const k in h) {
    if (!Object.hasOwn(h, k)) continue;
    const v = h[k];
    n += k.length;
    if (typeof v === 'string' || Buffer.isBuffer(v)) n += Buffer.byteLength(v);
    else if (Array.isArray(v)) for (const x of v) n += Buffer.byteLength(x);
  }
  return n;
}

/**
 * Splits a batch of callers' records into requests of at most `max` bytes,
 * in order; a single record larger than `max` is a request of its own. A
 * caller's records may span requests: it is answered once all of them are
 * acknowledged (or with the first failure).
 */
export function requestChunks<P extends { records: readonly RawRecord[] }>(
  batch: readonly P[],
  max: number,
): { owner: P; record: RawRecord }[][] {
  const chunks: { owner: P; record: RawRecord }[][] = [];
  let current: { owner: P; record: RawRecord }[] = [];
  let size = 0;
  for (const owner of batch) {
    for (const record of owner.records) {
      const n = recordBytes(record);
      if (current.length > 0 && size + n > max) {
        chunks.push(current);
        current = [];
        size = 0;
      }
      current.push({ owner, record });
      size += n;
    }
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Maps a kafkajs failure to the hub's error model; `what` names the
 * operation in the message. `cause` when `err` is another client's error
 * already reduced to these fields (platformatic-producer.ts).
 */
export function mapKafkaError(err: unknown, what = 'kafka write', cause: unknown = err): HubError {
  if (isHubError(err)) return err;
  const e = err as { name?: string; retriable?: boolean; message?: string };
  const retriable =
    e.retriable === true || /connect|timeout|ECONNREFUSED|not available/i.test(e.message ?? '');
  return new HubError(
    retriable ? 'HUB_KAFKA_UNAVAILABLE' : 'HUB_KAFKA_ERROR',
    `${what} failed: ${e.name ?? 'Error'}`,
    { cause, retriable },
  );
}

/** One idempotent acks=all kafkajs producer; the partitioner and retry bound are the hub's contract. */
function kafkajsTransport(kafka: KafkaClient, retries: number): ProduceTransport {
  // murmur2, as the Java client: a key lands in the same partition whoever
  // produces it, which co-partitioning across topics depends on.
  const { partitioner, chosen } = trackingPartitioner();
  const producer: Producer = kafka.producer({
    createPartitioner: partitioner,
    idempotent: true,
    // kafkajs refuses more with idempotence.
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // Bounded so that a dead broker surfaces as an error (and no AA) instead
    // of an ack that never comes; a resend after the error is de-duplicated
    // downstream by the deterministic event id.
    retry: { retries, initialRetryTime: 100, maxRetryTime: 3000 },
  });
  return {
    connect: () => producer.connect(),
    disconnect: () => producer.disconnect(),
    /**
     * One request through kafkajs (its own retries included); an answer that
     * leaves out a partition the records went to is a failure, not a success
     * (partitioner.ts trackingPartitioner): those records were never sent.
     * `chosen` is shared by the producer's sends: the writer sends one
     * request at a time on a kafkajs transport (maxInFlight 1).
     */
    async send(records) {
      chosen.clear();
      const answered = await producer.sendBatch({
        topicMessages: topicMessagesOf(records),
        acks: -1,
        compression: CompressionTypes.None,
      });
      assertAllAnswered(chosen, answered);
    },
  };
}

/** One produce request's records, by topic, in order. */
function topicMessagesOf(records: readonly RawRecord[]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const r of records) {
    let list = byTopic.get(r.topic);
    if (!list) byTopic.set(r.topic, (list = []));
    list.push({ key: r.key, value: r.value, headers: r.headers ?? {} });
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

/** A transport and its connect, which every request on it awaits first. */
interface Live {
  transport: ProduceTransport;
  ready: Promise<void>;
}

/**
 * Coalesces the records of concurrent callers: what is enqueued while
 * batches are in flight forms the next one, sent in requests of at most
 * `maxRequestBytes`. Up to `maxInFlight` batches are sent at once (1 for
 * kafkajs; see platformatic-producer.ts for more). Each caller is answered
 * once all its records are acknowledged, or with the first failure among
 * them. Also what health() reads: the oldest write waiting and whether the
 * last one failed.
 */
class CoalescingWriter {
  private queue: Pending[] = [];
  private current: Live | null = null;
  /** Set after a failed request: the next one goes out on a new transport (see renewIfFailed). */
  private failedProducer = false;
  private scheduled = false;
  /** Batches being sent, with the enqueuedAt of each one's oldest record (health). */
  private readonly sending = new Map<Pending[], number>();
  /** The sends themselves, until settled (drain). */
  private readonly sent = new Set<Promise<void>>();
  private lastOkAt = 0;
  private lastFailAt = 0;

  constructor(
    private readonly newTransport: () => ProduceTransport,
    private readonly opts: Pick<EventProducerOptions, 'onProduced'>,
    private readonly maxRequestBytes: number,
    private readonly maxInFlight: number,
  ) {}

  async connect(): Promise<void> {
    void this.current?.transport.disconnect().catch(() => undefined);
    const transport = this.newTransport();
    const ready = transport.connect();
    this.current = { transport, ready };
    await ready;
  }

  disconnect(): Promise<void> {
    return this.current?.transport.disconnect() ?? Promise.resolve();
  }

  /**
   * After a failed request, the idempotent producer's sequence numbers cannot
   * be trusted: kafkajs 2.2.4 rolls a partition's sequence back on any error,
   * even one where the broker may have written the batch (the leader killed
   * after replicating it, before answering). The next batch then reuses those
   * numbers, and the new leader, holding the earlier batch under them, takes
   * it for a retry of that batch: it answers success and drops the records,
   * so an acknowledged write is lost (fault suite, test/faults/leader-kill).
   * A new producer gets a new producer id, whose sequences no batch has used.
   */
  private live(): Live {
    if (!this.current) {
      throw new HubError('HUB_KAFKA_UNAVAILABLE', 'producer is not connected', { retriable: true });
    }
    if (!this.failedProducer) return this.current;
    const old = this.current.transport;
    const transport = this.newTransport();
    this.failedProducer = false;
    // Not awaited: a producer that stopped answering may not answer its disconnect either.
    void old.disconnect().catch(() => undefined);
    const ready = transport.connect().catch((err: unknown) => {
      this.failedProducer = true;
      throw err;
    });
    this.current = { transport, ready };
    return this.current;
  }

  private async request(records: readonly RawRecord[]): Promise<void> {
    const { transport, ready } = this.live();
    await ready;
    await transport.send(records);
  }

  enqueue(records: RawRecord[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ records, resolve, reject, enqueuedAt: performance.now() });
      if (this.scheduled) return;
      this.scheduled = true;
      // setImmediate lets every caller in this turn of the event loop join the batch.
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    });
  }

  /** Starts batches while there are records waiting and room in flight. */
  private pump(): void {
    while (this.queue.length > 0 && this.sending.size < this.maxInFlight) {
      const batch = this.queue;
      this.queue = [];
      this.sending.set(batch, batch[0]?.enqueuedAt ?? performance.now());
      const sent: Promise<void> = this.send(batch)
        .catch(() => undefined)
        .finally(() => {
          this.sending.delete(batch);
          this.sent.delete(sent);
          this.pump();
        });
      this.sent.add(sent);
    }
  }

  /** Resolves once every write enqueued so far is answered. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.sent.size > 0) {
      if (this.sent.size > 0) await Promise.all(this.sent);
      else await new Promise<void>((r) => setImmediate(r));
    }
  }

  health(stallMs: number): { ok: boolean; detail?: string } {
    let oldest = this.queue[0]?.enqueuedAt;
    for (const since of this.sending.values()) oldest = Math.min(oldest ?? since, since);
    const waited = oldest === undefined ? 0 : performance.now() - oldest;
    if (waited > stallMs) {
      return { ok: false, detail: `a write has waited ${(waited / 1000).toFixed(1)}s for Kafka acks` };
    }
    if (this.lastFailAt > this.lastOkAt) return { ok: false, detail: 'last write to Kafka failed' };
    return { ok: true };
  }

  /** One batch, its requests one after the other (a caller's records may span them, in order). */
  private async send(batch: Pending[]): Promise<void> {
    const failed = new Map<Pending, unknown>();
    for (const chunk of requestChunks(batch, this.maxRequestBytes)) {
      try {
        await withDeliveryDeadline(this.request(chunk.map((c) => c.record)));
        this.lastOkAt = performance.now();
      } catch (err) {
        this.failedProducer = true;
        this.lastFailAt = performance.now();
        const mapped = mapKafkaError(err);
        for (const { owner } of chunk) if (!failed.has(owner)) failed.set(owner, mapped);
      }
    }
    if (this.opts.onProduced) {
      const now = performance.now();
      for (const p of batch) {
        if (failed.has(p)) continue;
        for (const t of new Set(p.records.map((r) => r.topic)))
          this.opts.onProduced(t, (now - p.enqueuedAt) / 1000);
      }
    }
    // Before answering: a caller that checks health() next sees no write waiting.
    this.sending.delete(batch);
    for (const p of batch) {
      if (failed.has(p)) p.reject(failed.get(p));
      else p.resolve();
    }
  }
}

/** The records of `events`, encoded in order, keyed by patient, with the hub's headers. */
async function eventRecords(
  codec: EventCodec,
  events: readonly ClinicalEvent[],
  topicFor: (type: ClinicalEvent['type']) => string,
  extraHeaders: IHeaders,
): Promise<RawRecord[]> {
  const records: RawRecord[] = [];
  for (const e of events) {
    const topic = topicFor(e.type);
    const value = await codec.encode(e, topic);
    records.push({
      topic,
      key: e.data.patientId,
      value,
      headers: {
        ...extraHeaders,
        'hub-event-type': e.type,
        'hub-event-id': e.data.meta.eventId,
        // A system name, not PHI: lets `hub status` find each source's last message without decoding.
        'hub-source': e.data.meta.source.system,
      },
    });
  }
  return records;
}

/** Tells the metrics what was acknowledged: per topic and type, and per source system. */
function reportPublished(
  opts: Pick<ProducerOptions, 'onPublished' | 'onSources'>,
  events: readonly ClinicalEvent[],
  topicFor: (type: ClinicalEvent['type']) => string,
): void {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
  for (const [type, n] of counts) opts.onPublished?.(topicFor(type as ClinicalEvent['type']), type, n);
  if (opts.onSources) {
    const bySource = new Map<string, number>();
    for (const e of events) {
      const sys = e.data.meta.source.system;
      bySource.set(sys, (bySource.get(sys) ?? 0) + 1);
    }
    opts.onSources(bySource, Date.now());
  }
}

/** The hub's EventProducer on kafkajs: one request in flight, concurrent callers coalesced. */
export function createEventProducer(opts: ProducerOptions): EventProducer {
  return coalescingEventProducer(opts, () => kafkajsTransport(opts.kafka, opts.retries ?? 10), 1);
}

/**
 * The EventProducer semantics (encoding, headers, coalescing, ack deadline,
 * health) over any client's transport: `newTransport` is called at connect
 * and again after a failed request.
 */
export function coalescingEventProducer(
  opts: EventProducerOptions,
  newTransport: () => ProduceTransport,
  maxInFlight: number,
): EventProducer {
  const topicFor = opts.topicFor ?? ((type: ClinicalEvent['type']) => EVENT_CONTRACTS[type].topic);
  const writer = new CoalescingWriter(
    newTransport,
    opts,
    opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    maxInFlight,
  );
  let connected = false;
  const stallMs = opts.ackTimeoutMs ?? 5_000;
  const deadline = <T>(p: Promise<T>): Promise<T> =>
    opts.ackTimeoutMs === undefined || opts.rejectAtAckTimeout === false
      ? p
      : withAckDeadline(p, opts.ackTimeoutMs);
  const enqueue = (records: RawRecord[]): Promise<void> =>
    connected
      ? writer.enqueue(records)
      : Promise.reject(
          new HubError('HUB_KAFKA_UNAVAILABLE', 'producer is not connected', { retriable: true }),
        );

  return {
    async connect() {
      try {
        await writer.connect();
        connected = true;
      } catch (err) {
        throw mapKafkaError(err);
      }
    },
    async publish(events, extraHeaders = {}) {
      const records = await eventRecords(opts.codec, events, topicFor, extraHeaders);
      await deadline(enqueue(records));
      reportPublished(opts, events, topicFor);
      return events.map((e) => ({ topic: topicFor(e.type), eventId: e.data.meta.eventId }));
    },
    async publishRaw(records) {
      await deadline(enqueue([...records]));
    },
    health: () => writer.health(stallMs),
    async disconnect() {
      // Let queued writes finish before closing: they are owed an answer.
      await writer.drain();
      connected = false;
      await writer.disconnect();
    },
  };
}
