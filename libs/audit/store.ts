import type { AuditEvent } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { HubError } from '../errors/index.js';
import { assertSqlIdentifier, migrateSchema, toDbError, type Migration } from '../db/index.js';
import { ChainVerifier, GENESIS_HASH, rowHash, type ChainVerdict, type ChainedRow } from './chain.js';
import { summarize, type AuditSummary } from './event.js';

/**
 * The audit table: append-only (a trigger refuses UPDATE, DELETE and
 * TRUNCATE for everyone, the owner included) and hash-chained (chain.ts).
 * Rows get consecutive `seq` numbers computed under a lock in the inserting
 * transaction, not from a sequence, so a rolled-back append leaves no gap and
 * a gap always means a deleted row.
 *
 * The trigger stops mistakes and ordinary users; a superuser can disable it.
 * That is what the chain is for: such an edit is still detected by
 * `hub audit verify`, short of rewriting every later hash. Deleting rows at
 * the very end is not visible in the chain itself: record the verified head
 * (seq + hash, printed by `hub audit verify`) somewhere else to anchor it.
 */
export const AUDIT_TABLE = 'audit_log';

export const auditMigrations: readonly Migration[] = [
  {
    name: '0601_audit_log',
    async up(knex, schema) {
      await knex.schema.withSchema(schema).createTable(AUDIT_TABLE, (t) => {
        t.bigInteger('seq').primary();
        t.uuid('audit_id').notNullable().unique();
        t.text('recorded_at').notNullable();
        t.text('patient_id').index();
        t.text('agent');
        t.text('client_id');
        t.text('action').notNullable();
        t.text('route').notNullable();
        t.text('outcome').notNullable();
        t.text('source_address');
        t.jsonb('event').notNullable();
        t.text('prev_hash').notNullable();
        t.text('hash').notNullable();
        t.timestamp('appended_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      });
      await knex.raw(
        `create or replace function ??.refuse_audit_change() returns trigger language plpgsql as $$
         begin
           raise exception 'audit_log is append-only (% refused)', tg_op using errcode = 'insufficient_privilege';
         end $$`,
        [schema],
      );
      await knex.raw(
        `create trigger audit_log_append_only before update or delete on ??.?? for each row execute function ??.refuse_audit_change()`,
        [schema, AUDIT_TABLE, schema],
      );
      await knex.raw(
        `create trigger audit_log_no_truncate before truncate on ??.?? for each statement execute function ??.refuse_audit_change()`,
        [schema, AUDIT_TABLE, schema],
      );
    },
  },
  {
    // Rows already there keep version 1 (sha256) and keep verifying; keyed appends write 2 (chain.ts).
    name: '0602_audit_chain_version',
    async up(knex, schema) {
      await knex.schema.withSchema(schema).alterTable(AUDIT_TABLE, (t) => {
        t.smallint('chain_version').notNullable().defaultTo(1);
      });
    },
  },
];

export async function migrateAudit(db: Knex, schema: string): Promise<void> {
  await migrateSchema(db, schema, auditMigrations);
}

interface DbRow {
  seq: string;
  audit_id: string;
  recorded_at: string;
  patient_id: string | null;
  agent: string | null;
  client_id: string | null;
  action: string;
  route: string;
  outcome: string;
  source_address: string | null;
  event: unknown;
  prev_hash: string;
  hash: string;
  chain_version: number;
}

/** The columns every reader of the table gets. */
const VIEW_COLUMNS = [
  'seq',
  'audit_id',
  'recorded_at',
  'patient_id',
  'agent',
  'client_id',
  'action',
  'route',
  'outcome',
  'source_address',
] as const;

function viewFromDb(r: Omit<DbRow, 'event' | 'prev_hash' | 'hash'>): AuditRowView {
  return {
    seq: Number(r.seq),
    auditId: r.audit_id,
    recordedAt: r.recorded_at,
    patientId: r.patient_id,
    agent: r.agent,
    clientId: r.client_id,
    action: r.action,
    route: r.route,
    outcome: r.outcome,
    sourceAddress: r.source_address,
  };
}

function fromDb(r: DbRow): ChainedRow & { hash: string } {
  return {
    ...viewFromDb(r),
    event: r.event,
    prevHash: r.prev_hash,
    ...(Number(r.chain_version) === 2 ? { chainVersion: 2 as const } : {}),
    hash: r.hash,
  };
}

/**
 * Appends events in order, skipping ids already in the log (a redelivered
 * record), in the caller's transaction. The advisory lock serialises
 * appenders, whichever process they run in: the chain has one head. With
 * `key` the rows are keyed (version 2); without it only an unkeyed chain can
 * grow: after a keyed head it refuses, rather than write a row that breaks
 * the chain as a downgrade.
 */
export async function appendAudit(
  trx: Knex.Transaction,
  schema: string,
  events: readonly AuditEvent[],
  key: Buffer | null = null,
): Promise<number> {
  assertSqlIdentifier(schema);
  if (events.length === 0) return 0;
  await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`hub_audit:${schema}`]);
  const ids = [...new Set(events.map((e) => e.id ?? ''))];
  const existing = await trx
    .withSchema(schema)
    .from(AUDIT_TABLE)
    .whereRaw('audit_id = any(?::uuid[])', [ids])
    .select<{ audit_id: string }[]>('audit_id');
  const seen = new Set(existing.map((r) => r.audit_id));
  const head = await trx
    .withSchema(schema)
    .from(AUDIT_TABLE)
    .orderBy('seq', 'desc')
    .first<{ seq: string; hash: string; chain_version: number } | undefined>('seq', 'hash', 'chain_version');
  if (!key && head && Number(head.chain_version) === 2) {
    throw new HubError(
      'HUB_CONFIG_INVALID',
      'the audit chain is keyed: appending needs AUDIT_CHAIN_KEY_FILE',
    );
  }
  let seq = head ? Number(head.seq) : 0;
  let prev = head?.hash ?? GENESIS_HASH;
  const rows: Record<string, unknown>[] = [];
  for (const e of events) {
    if (!e.id || seen.has(e.id)) continue;
    seen.add(e.id);
    const s = summarize(e);
    // Round-trip through JSON so that what is hashed is what jsonb gives back.
    const event = JSON.parse(JSON.stringify(e)) as unknown;
    const row: ChainedRow = { seq: ++seq, ...s, event, prevHash: prev, ...(key ? { chainVersion: 2 } : {}) };
    const hash = rowHash(row, key);
    prev = hash;
    rows.push({
      seq: row.seq,
      audit_id: row.auditId,
      recorded_at: row.recordedAt,
      patient_id: row.patientId,
      agent: row.agent,
      client_id: row.clientId,
      action: row.action,
      route: row.route,
      outcome: row.outcome,
      source_address: row.sourceAddress,
      event: JSON.stringify(row.event),
      prev_hash: row.prevHash,
      hash,
      chain_version: key ? 2 : 1,
    });
  }
  for (let i = 0; i < rows.length; i += 500) {
    await trx
      .withSchema(schema)
      .into(AUDIT_TABLE)
      .insert(rows.slice(i, i + 500));
  }
  return rows.length;
}

/**
 * The SQLSTATE of a Postgres data exception (class 22: invalid text, a bad
 * uuid, a value out of range...), else null. Such a statement fails the same
 * way however often it is retried, unlike a lost connection. Looks through a
 * wrapping error's cause.
 */
export function dataErrorCode(err: unknown): string | null {
  let e: unknown = err;
  for (let depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/** Walks the whole chain in seq order, page by page; `key` checks the keyed rows. */
export async function verifyAuditChain(
  db: Knex,
  schema: string,
  opts: { key?: Buffer | null; pageSize?: number } = {},
): Promise<ChainVerdict> {
  assertSqlIdentifier(schema);
  const pageSize = opts.pageSize ?? 2000;
  const v = new ChainVerifier(opts.key ?? null);
  let after = 0;
  try {
    for (;;) {
      const page = await db
        .withSchema(schema)
        .from(AUDIT_TABLE)
        .where('seq', '>', after)
        .orderBy('seq')
        .limit(pageSize)
        .select<DbRow[]>(...VIEW_COLUMNS, 'event', 'prev_hash', 'hash', 'chain_version');
      for (const r of page) if (!v.push(fromDb(r))) return v.verdict();
      const last = page[page.length - 1];
      if (!last || page.length < pageSize) return v.verdict();
      after = Number(last.seq);
    }
  } catch (err) {
    throw toDbError(err);
  }
}

export interface AuditRowView extends AuditSummary {
  seq: number;
}

export async function listAudit(
  db: Knex,
  schema: string,
  q: { patientId?: string; agent?: string; limit: number; beforeSeq?: number },
): Promise<AuditRowView[]> {
  assertSqlIdentifier(schema);
  let query = db.withSchema(schema).from(AUDIT_TABLE).orderBy('seq', 'desc').limit(q.limit);
  if (q.patientId) query = query.where({ patient_id: q.patientId });
  if (q.agent) query = query.where({ agent: q.agent });
  if (q.beforeSeq) query = query.where('seq', '<', q.beforeSeq);
  const rows = await query.select<Omit<DbRow, 'event' | 'prev_hash' | 'hash'>[]>(...VIEW_COLUMNS);
  return rows.map(viewFromDb);
}

/** The newest row's seq (0 when empty): rows up to it are what a reconciliation accounts for. */
export async function auditHeadSeq(db: Knex, schema: string): Promise<number> {
  assertSqlIdentifier(schema);
  const r = await db.withSchema(schema).from(AUDIT_TABLE).max<{ m: string | null }[]>({ m: 'seq' });
  return Number(r[0]?.m ?? 0);
}

/** The stored events (and seq) of those of `ids` that are in the table, by audit id. */
export async function storedAuditEvents(
  db: Knex,
  schema: string,
  ids: readonly string[],
): Promise<Map<string, { seq: number; event: unknown }>> {
  assertSqlIdentifier(schema);
  // Not-uuid text (a poison record's "id") would fail the cast: it cannot be in the table anyway.
  const uuids = ids.filter((id) =>
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id),
  );
  if (uuids.length === 0) return new Map();
  const rows = await db
    .withSchema(schema)
    .from(AUDIT_TABLE)
    .whereRaw('audit_id = any(?::uuid[])', [uuids])
    .select<{ audit_id: string; seq: string; event: unknown }[]>('audit_id', 'seq', 'event');
  return new Map(rows.map((r) => [r.audit_id, { seq: Number(r.seq), event: r.event }]));
}
