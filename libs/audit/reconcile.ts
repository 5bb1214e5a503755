import type { Knex } from 'knex';
import { toHubError } from '../errors/index.js';
import type { KafkaClient } from '../kafka/client.js';
import { listTopics } from '../kafka/admin.js';
import { partitionOffsets, scanTopic, type ScannedRecord } from '../kafka/scan.js';
import { canonicalJson } from './chain.js';
import { auditHeadSeq, storedAuditEvents } from './store.js';
import { auditIdOf } from './topic.js';

/**
 * The audit table against the audit topic it is built from: the chain shows
 * that rows were not edited, this shows that none were left out or made up.
 * Every record on the topic must be in the table (same id, same content),
 * on the audit DLQ (a known gap, with its reason), or still ahead of the
 * projector's committed position (lag); everything else is an unexplained
 * gap. Reads the topic in batches, one table lookup per batch: memory grows
 * with the number of ids, not of events.
 */
export interface AuditReconciliation {
  topic: { name: string; records: number; firstOffset: number; endOffset: number };
  /** `rows`: the table up to its head when the check began; `matched`: those a topic record accounts for. */
  table: { rows: number; matched: number };
  /** Known gaps: records the projector dead-lettered, with why. */
  deadLettered: { count: number; byReason: Record<string, number>; first: string[] };
  /** Records past the projector's committed position: not yet appended, not a gap. */
  pending: number;
  /** Records on the topic repeating an earlier record's id (a producer retry): appended once. */
  duplicates: number;
  /** Unexplained: on the topic, in neither the table nor the DLQ, behind the projector. */
  missing: { count: number; first: string[] };
  /** In the table with different content than on the topic. */
  altered: { count: number; first: string[] };
  /** Table rows no topic record accounts for; null when the topic no longer starts at offset 0. */
  notOnTopic: number | null;
  ok: boolean;
}

const FIRST = 10;

interface DeadLetterRef {
  reason: string;
  label: string;
}

/** Dead letters of `topic` on the audit DLQ, by `<partition>:<offset>` of the source record. */
async function deadLettersOf(
  kafka: KafkaClient,
  dlqTopic: string,
  topic: string,
  timeoutMs: number,
): Promise<Map<string, DeadLetterRef>> {
  const out = new Map<string, DeadLetterRef>();
  if (!(await listTopics(kafka)).includes(dlqTopic)) return out;
  for (const r of await scanTopic(kafka, dlqTopic, { timeoutMs })) {
    const h = r.headers;
    if (h['hub-dlq-source-topic'] !== topic) continue;
    const at = `${h['hub-dlq-source-partition'] ?? '?'}:${h['hub-dlq-source-offset'] ?? '?'}`;
    const id = h['hub-audit-id'];
    out.set(at, { reason: h['hub-dlq-reason-code'] ?? 'unknown', label: id ? `${at} (${id})` : at });
  }
  return out;
}

async function committedOffsets(
  kafka: KafkaClient,
  topic: string,
  groupId: string,
): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((t?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function parsed(r: ScannedRecord): unknown {
  try {
    return JSON.parse(r.value?.toString('utf8') ?? 'null') as unknown;
  } catch {
    return null;
  }
}

/** The running tally over the topic's batches. */
class Tally {
  readonly seen = new Set<string>();
  readonly dlqByReason: Record<string, number> = {};
  readonly dlqFirst: string[] = [];
  dlqCount = 0;
  matched = 0;
  pending = 0;
  duplicates = 0;
  readonly missing: string[] = [];
  missingCount = 0;
  readonly altered: string[] = [];
  alteredCount = 0;

  /** Records in no row: classified once the dead letters are known (they are read alongside). */
  private readonly unmatched: { partition: number; offset: string; id: string | null }[] = [];

  constructor(
    private readonly committed: ReadonlyMap<number, bigint>,
    /** Rows appended after the check began are not counted as matched: the table is judged up to this seq. */
    private readonly headSeq: number,
  ) {}

  async batch(db: Knex, schema: string, records: readonly ScannedRecord[]): Promise<void> {
    const items = records.map((r) => {
      const value = parsed(r);
      return { r, value, id: auditIdOf(value) };
    });
    const stored = await storedAuditEvents(
      db,
      schema,
      items.flatMap((i) => (i.id ? [i.id] : [])),
    );
    for (const { r, value, id } of items) this.record(r, value, id, stored);
  }

  private record(
    r: ScannedRecord,
    value: unknown,
    id: string | null,
    stored: ReadonlyMap<string, { seq: number; event: unknown }>,
  ): void {
    const at = `${r.partition}:${r.offset}`;
    if (id !== null && this.seen.has(id)) {
      this.duplicates++;
      return;
    }
    if (id !== null) this.seen.add(id);
    const row = id === null ? undefined : stored.get(id);
    if (row !== undefined) {
      if (row.seq <= this.headSeq) this.matched++;
      if (canonicalJson(row.event) !== canonicalJson(value)) {
        this.alteredCount++;
        if (this.altered.length < FIRST) this.altered.push(id ?? at);
      }
      return;
    }
    this.unmatched.push({ partition: r.partition, offset: r.offset, id });
  }

  /** Each record in no row: a known gap (dead-lettered), not yet appended (lag), or unexplained. */
  classify(dlq: ReadonlyMap<string, DeadLetterRef>): void {
    for (const u of this.unmatched) {
      const at = `${u.partition}:${u.offset}`;
      const dead = dlq.get(at);
      if (dead) {
        this.dlqCount++;
        this.dlqByReason[dead.reason] = (this.dlqByReason[dead.reason] ?? 0) + 1;
        if (this.dlqFirst.length < FIRST) this.dlqFirst.push(dead.label);
      } else if (BigInt(u.offset) >= (this.committed.get(u.partition) ?? -1n)) {
        this.pending++;
      } else {
        this.missingCount++;
        if (this.missing.length < FIRST) this.missing.push(u.id ? `${at} (${u.id})` : at);
      }
    }
  }
}

export async function reconcileAudit(opts: {
  kafka: KafkaClient;
  db: Knex;
  schema: string;
  topic: string;
  dlqTopic: string;
  groupId: string;
  timeoutMs?: number;
}): Promise<AuditReconciliation> {
  const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  // The table's head first: every row up to it came from a record the scan below will see.
  const headSeq = await auditHeadSeq(opts.db, opts.schema);
  const offsets = await partitionOffsets(opts.kafka, opts.topic);
  const committed = await committedOffsets(opts.kafka, opts.topic, opts.groupId);
  const tally = new Tally(committed, headSeq);
  let failure: unknown = null;
  // Both topics at once: each scan waits for its own group to form (seconds on a default broker).
  const [dlq] = await Promise.all([
    deadLettersOf(opts.kafka, opts.dlqTopic, opts.topic, timeoutMs),
    scanTopic(opts.kafka, opts.topic, {
      timeoutMs,
      each: async (records) => {
        // Thrown here, kafkajs would fetch the batch again and count it twice: the first failure ends the scan's use.
        if (failure === null)
          await tally.batch(opts.db, opts.schema, records).catch((err: unknown) => (failure = err));
      },
    }),
  ]);
  if (failure !== null) throw toHubError(failure);
  tally.classify(dlq);
  let records = 0n;
  let first = 0n;
  let end = 0n;
  for (const o of offsets.values()) {
    records += o.high - o.low;
    first += o.low;
    end += o.high;
  }
  // Seqs are consecutive from 1 (store.ts), so the head is the row count; the chain check catches a gap.
  const rows = headSeq;
  const notOnTopic = first === 0n ? Math.max(0, rows - tally.matched) : null;
  return {
    topic: { name: opts.topic, records: Number(records), firstOffset: Number(first), endOffset: Number(end) },
    table: { rows, matched: tally.matched },
    deadLettered: { count: tally.dlqCount, byReason: tally.dlqByReason, first: tally.dlqFirst },
    pending: tally.pending,
    duplicates: tally.duplicates,
    missing: { count: tally.missingCount, first: tally.missing },
    altered: { count: tally.alteredCount, first: tally.altered },
    notOnTopic,
    ok: tally.missingCount === 0 && tally.alteredCount === 0 && (notOnTopic ?? 0) === 0,
  };
}
