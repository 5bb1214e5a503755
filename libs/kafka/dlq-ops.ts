import type { AuditEvent } from '@medplum/fhirtypes';
import { randomUUID } from 'node:crypto';
import { buildOperatorAuditEvent } from '../audit/event.js';
import { createAuditSink, ensureAuditTopic } from '../audit/topic.js';
import { ddlUnderLock, toDbError, type Knex } from '../db/index.js';
import { HubError, isHubError } from '../errors/index.js';
import type { KafkaClient } from './client.js';
import { parseDeadLetter, redriveRecord, type DeadLetterInfo } from './dlq.js';
import type { EventCodec } from '../events/codec.js';
import type { EventProducer } from './producer.js';
import { scanTopic, type ScannedRecord } from './scan.js';

/**
 * What operators do to dead letters: the state of each one, the claim that
 * stops two operators handling the same record twice, and the audit trail of
 * every action. Used by `hub dlq …` (cli/dlq.ts, which only parses options,
 * opens connections and prints); the headers are read by dlq.ts.
 *
 * Decisions (see docs/runbook.md):
 *  - What was done to a dead letter (redriven / discarded) is a row in
 *    Postgres `<ops schema>.dlq_state`, keyed by the dead letter's
 *    topic/partition/offset. A table, not a compacted topic: it is queried by
 *    key and joined in `list`, and a claim (insert … on conflict do nothing)
 *    stops two operators redriving the same record twice.
 *  - Redrive re-publishes the original record to its source topic. Every hub
 *    consumer de-duplicates by event id, so consumers that already applied it
 *    skip it and the one that failed applies it once. A target topic (e.g. a
 *    consumer's private retry topic) can be given instead.
 *  - Every action is a FHIR AuditEvent on the audit topic, written through
 *    the API's audit sink (acks=all), so that the audit projector chains it
 *    into the audit table that `hub audit verify` walks. Reading a payload is
 *    recorded before anything is shown; if that write fails nothing is.
 */

export const DLQ_STATE_TABLE = 'dlq_state';

export type DlqState = 'redriven' | 'discarded';

export interface StateRow {
  dlq_topic: string;
  dlq_partition: number;
  dlq_offset: string;
  state: DlqState;
  reason: string | null;
  actor: string;
  target_topic: string | null;
  at: Date;
}

export interface ListedDeadLetter extends DeadLetterInfo {
  state: DlqState | 'open';
  stateReason: string | null;
}

/** A dead letter as read from its topic, with what has been done to it. */
export interface FoundDeadLetter {
  rec: ScannedRecord;
  info: ListedDeadLetter;
}

/** Where the ops code reads and writes: Kafka for the records, Postgres for their state. */
export interface DlqStore {
  kafka: KafkaClient;
  db: Knex;
  /** Schema of the state table (HUB_OPS_SCHEMA). */
  schema: string;
}

/** `topic/partition/offset`: a dead letter's address, as state keys and audit targets name it. */
export const deadLetterAddress = (t: string, p: number, o: string): string => `${t}/${p}/${o}`;

function kafkaError(err: unknown, what: string): HubError {
  return isHubError(err) ? err : new HubError('HUB_KAFKA_UNAVAILABLE', `could not ${what}`, { cause: err });
}

function kafkaUnavailable(what: string) {
  return (err: unknown): never => {
    throw kafkaError(err, what);
  };
}

function dbUnavailable(err: unknown): never {
  throw toDbError(err);
}

export async function ensureStateTable(db: Knex, schema: string): Promise<void> {
  await ddlUnderLock(db, schema, (trx) =>
    trx.raw(
      `create table if not exists ??.?? (
       dlq_topic text not null,
       dlq_partition integer not null,
       dlq_offset bigint not null,
       state text not null check (state in ('redriven', 'discarded')),
       reason text,
       actor text not null,
       target_topic text,
       at timestamptz not null default now(),
       primary key (dlq_topic, dlq_partition, dlq_offset))`,
      [schema, DLQ_STATE_TABLE],
    ),
  );
}

/** States of the dead letters on these topics, by address. */
export async function readStates(store: DlqStore, topics: readonly string[]): Promise<Map<string, StateRow>> {
  try {
    await ensureStateTable(store.db, store.schema);
    const rows = (await store.db
      .withSchema(store.schema)
      .from(DLQ_STATE_TABLE)
      .whereIn('dlq_topic', [...topics])
      .select('*')) as StateRow[];
    return new Map(
      rows.map((r) => [deadLetterAddress(r.dlq_topic, r.dlq_partition, String(r.dlq_offset)), r]),
    );
  } catch (err) {
    throw toDbError(err);
  }
}

/**
 * How many dead letters of each topic were handled (redriven or discarded),
 * for `hub status`; empty when no one has handled any yet (no table).
 */
export async function handledCounts(db: Knex, schema: string): Promise<Map<string, number>> {
  const has = await db.raw<{ rows: unknown[] }>(
    `select 1 from information_schema.tables where table_schema = ? and table_name = ?`,
    [schema, DLQ_STATE_TABLE],
  );
  const handled = new Map<string, number>();
  if (has.rows.length === 0) return handled;
  const q = db
    .withSchema(schema)
    .from(DLQ_STATE_TABLE)
    .select('dlq_topic')
    .count({ n: '*' })
    .groupBy('dlq_topic');
  const rows = (await q) as { dlq_topic: string; n: string | number }[];
  for (const x of rows) handled.set(x.dlq_topic, Number(x.n));
  return handled;
}

/** Every record on these topics with its state, in topic then offset order. */
export async function collectDeadLetters(
  store: DlqStore,
  topics: readonly string[],
): Promise<FoundDeadLetter[]> {
  const states = await readStates(store, topics);
  const out: FoundDeadLetter[] = [];
  for (const t of topics) {
    const recs = await scanTopic(store.kafka, t).catch(kafkaUnavailable(`read ${t}`));
    for (const rec of recs) out.push({ rec, info: withState(rec, states) });
  }
  return out;
}

/** One record by its address, or null when there is none. */
export async function findDeadLetter(
  store: DlqStore,
  topic: string,
  partition: number,
  offset: bigint,
): Promise<(FoundDeadLetter & { stateBy: string | null }) | null> {
  const recs = await scanTopic(store.kafka, topic, {
    range: (p) => (p === partition ? { from: offset, to: offset + 1n } : null),
  }).catch(kafkaUnavailable(`read ${topic}`));
  const rec = recs[0];
  if (!rec) return null;
  const states = await readStates(store, [topic]);
  const st = states.get(deadLetterAddress(topic, partition, rec.offset));
  return { rec, info: withState(rec, states), stateBy: st?.actor ?? null };
}

function withState(rec: ScannedRecord, states: ReadonlyMap<string, StateRow>): ListedDeadLetter {
  const st = states.get(deadLetterAddress(rec.topic, rec.partition, rec.offset));
  return { ...parseDeadLetter(rec), state: st?.state ?? 'open', stateReason: st?.reason ?? null };
}

type Claim = Omit<StateRow, 'dlq_topic' | 'dlq_partition' | 'dlq_offset' | 'at'> & { info: DeadLetterInfo };

/** Takes dead letters for one action in one statement; returns the addresses this call took (others were handled meanwhile). */
async function claimMany(store: DlqStore, rows: readonly Claim[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const q = store.db
    .withSchema(store.schema)
    .into(DLQ_STATE_TABLE)
    .insert(
      rows.map(({ info, ...r }) => ({
        dlq_topic: info.topic,
        dlq_partition: info.partition,
        dlq_offset: info.offset,
        ...r,
      })),
    )
    .onConflict(['dlq_topic', 'dlq_partition', 'dlq_offset'])
    .ignore()
    .returning(['dlq_topic', 'dlq_partition', 'dlq_offset']);
  const inserted = (await q.catch(dbUnavailable)) as {
    dlq_topic: string;
    dlq_partition: number;
    dlq_offset: string | number;
  }[];
  return new Set(inserted.map((r) => deadLetterAddress(r.dlq_topic, r.dlq_partition, String(r.dlq_offset))));
}

/** Gives claims back, so that a later action can take them. */
async function releaseMany(store: DlqStore, infos: readonly DeadLetterInfo[]): Promise<void> {
  if (infos.length === 0) return;
  await store.db
    .withSchema(store.schema)
    .from(DLQ_STATE_TABLE)
    .whereIn(
      ['dlq_topic', 'dlq_partition', 'dlq_offset'],
      infos.map((i) => [i.topic, i.partition, i.offset]),
    )
    .delete();
}

// ---------------------------------------------------------------- audit

export type DlqAction = 'dlq.show.include-phi' | 'dlq.redrive' | 'dlq.discard';

export interface DlqAuditEntry {
  action: DlqAction;
  target: { topic: string; partition: number; offset: string };
  /** Whose record it is, when the dead letter names a patient. */
  patientId: string | null;
  reason: string | null;
  detail?: Record<string, string>;
}

const CRUD: Record<DlqAction, 'R' | 'U' | 'E'> = {
  'dlq.show.include-phi': 'R',
  'dlq.redrive': 'E',
  'dlq.discard': 'U',
};

/**
 * The patient a dead letter belongs to: records the consumer runner parked
 * are clinical events, keyed by patient id (libs/kafka/producer.ts). Other
 * kinds are keyed otherwise and name no patient. Pure.
 */
export function patientOf(d: FoundDeadLetter): string | null {
  if (d.info.kind !== 'consumer' || d.info.eventType === null || d.rec.key === null) return null;
  const key = d.rec.key.toString('utf8');
  return key.length > 0 ? key : null;
}

export function auditEntryFor(
  d: FoundDeadLetter,
  action: DlqAction,
  reason: string | null,
  detail?: Record<string, string>,
): DlqAuditEntry {
  return {
    action,
    target: { topic: d.info.topic, partition: d.info.partition, offset: d.info.offset },
    patientId: patientOf(d),
    reason,
    ...(detail ? { detail } : {}),
  };
}

/** Who acted and from where, for every event of one command run. */
export interface Operator {
  name: string;
  host: string;
}

/** The AuditEvent of one action. Pure given id and time. */
export function dlqAuditEvent(
  entry: DlqAuditEntry,
  who: Operator,
  recorded: number,
  id: string,
  observer = 'hub-cli',
): AuditEvent {
  const t = entry.target;
  return buildOperatorAuditEvent({
    id,
    recorded,
    action: entry.action,
    crud: CRUD[entry.action],
    target: deadLetterAddress(t.topic, t.partition, t.offset),
    patientId: entry.patientId,
    operator: who.name,
    host: who.host,
    reason: entry.reason,
    detail: entry.detail ?? {},
    observer,
  });
}

export interface DlqAuditTrail {
  /** Resolves once every entry is acknowledged by Kafka (acks=all). */
  record(entries: readonly DlqAuditEntry[]): Promise<void>;
}

export function createDlqAuditTrail(o: {
  kafka: KafkaClient;
  producer: EventProducer;
  /** The audit topic the API's projector reads (AUDIT_TOPIC, else hub.audit.v1 with the suffix). */
  topic: string;
  operator: Operator;
  /** Who records it: `hub-cli` (default) or `console`, so the trail says where the action was taken. */
  observer?: string;
  now?: () => number;
}): DlqAuditTrail {
  const sink = createAuditSink(o.producer, o.topic);
  const now = o.now ?? Date.now;
  let topicReady = false;
  return {
    async record(entries) {
      if (entries.length === 0) return;
      if (!topicReady) {
        await ensureAuditTopic(o.kafka, o.topic);
        topicReady = true;
      }
      const at = now();
      await sink.recordAll(entries.map((e) => dlqAuditEvent(e, o.operator, at, randomUUID(), o.observer)));
    },
  };
}

// ---------------------------------------------------------------- actions

/** What an action needs: the store, a connected producer and the audit trail. */
export interface DlqActionDeps extends DlqStore {
  producer: EventProducer;
  audit: DlqAuditTrail;
  operator: Operator;
}

export type RedriveOutcome =
  | { d: FoundDeadLetter; result: 'redriven'; to: string }
  | { d: FoundDeadLetter; result: 'handled-meanwhile' };

export const REDRIVE_CHUNK = 500;

/**
 * Redrives open, redrivable dead letters in DLQ order and in chunks: one
 * claim statement, one produce request and one audit write per chunk. A
 * chunk that cannot be published is released, so a later redrive can take it.
 */
export async function redriveDeadLetters(
  deps: DlqActionDeps,
  todo: readonly FoundDeadLetter[],
  o: { to?: string; reason: string | null; onProgress?(done: number): void },
): Promise<RedriveOutcome[]> {
  const targetOf = (d: FoundDeadLetter): string => o.to ?? d.info.source?.topic ?? '';
  const outcomes: RedriveOutcome[] = [];
  for (let i = 0; i < todo.length; i += REDRIVE_CHUNK) {
    const chunk = todo.slice(i, i + REDRIVE_CHUNK);
    const mine = await claimMany(
      deps,
      chunk.map((d) => ({
        info: d.info,
        state: 'redriven' as const,
        reason: o.reason,
        actor: deps.operator.name,
        target_topic: targetOf(d),
      })),
    );
    const claimed = chunk.filter((d) =>
      mine.has(deadLetterAddress(d.info.topic, d.info.partition, d.info.offset)),
    );
    for (const d of chunk) if (!claimed.includes(d)) outcomes.push({ d, result: 'handled-meanwhile' });
    const now = Date.now();
    try {
      await deps.producer.publishRaw(claimed.map((d) => redriveRecord(d.rec, targetOf(d), now)));
    } catch (err) {
      await releaseMany(
        deps,
        claimed.map((d) => d.info),
      ).catch(() => undefined);
      throw kafkaError(err, 'publish the redriven records');
    }
    await deps.audit.record(
      claimed.map((d) => auditEntryFor(d, 'dlq.redrive', o.reason, { to: targetOf(d) })),
    );
    for (const d of claimed) outcomes.push({ d, result: 'redriven', to: targetOf(d) });
    o.onProgress?.(Math.min(todo.length, i + chunk.length));
  }
  return outcomes;
}

export type DiscardOutcome = { d: FoundDeadLetter; result: 'discarded' | 'handled-meanwhile' | 'not-open' };

/** Marks open dead letters as deliberately not repaired, then audits the ones this call took. */
export async function discardDeadLetters(
  deps: DlqActionDeps,
  found: readonly FoundDeadLetter[],
  reason: string,
): Promise<DiscardOutcome[]> {
  const open = found.filter((d) => d.info.state === 'open');
  const mine = new Set<string>();
  for (let i = 0; i < open.length; i += REDRIVE_CHUNK) {
    const taken = await claimMany(
      deps,
      open.slice(i, i + REDRIVE_CHUNK).map((d) => ({
        info: d.info,
        state: 'discarded' as const,
        reason,
        actor: deps.operator.name,
        target_topic: null,
      })),
    );
    for (const k of taken) mine.add(k);
  }
  const outcomes = found.map((d): DiscardOutcome => {
    if (d.info.state !== 'open') return { d, result: 'not-open' };
    const taken = mine.has(deadLetterAddress(d.info.topic, d.info.partition, d.info.offset));
    return { d, result: taken ? 'discarded' : 'handled-meanwhile' };
  });
  await deps.audit.record(
    outcomes.filter((x) => x.result === 'discarded').map((x) => auditEntryFor(x.d, 'dlq.discard', reason)),
  );
  return outcomes;
}

// ---------------------------------------------------------------- payload

/**
 * A dead letter's value as a person can read it (PHI: callers audit first):
 * a registry-framed event decoded, JSON parsed, HL7 v2 one segment per line,
 * and what cannot be decoded as base64 with the reason code.
 */
export async function decodeDeadLetterValue(codec: EventCodec, rec: ScannedRecord): Promise<unknown> {
  const v = rec.value;
  if (!v) return null;
  if (v.length > 5 && v[0] === 0) {
    try {
      return await codec.decode(v);
    } catch (err) {
      return {
        undecodable: isHubError(err) ? err.code : 'HUB_EVENT_UNDECODABLE',
        base64: v.toString('base64'),
      };
    }
  }
  const text = v.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // HL7 v2 uses CR between segments; show one per line.
    return text.split('\r').filter(Boolean);
  }
}
