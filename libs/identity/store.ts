/**
 * The master patient index's state: one Postgres schema (`identity` by
 * default, IDENTITY_SCHEMA for tests) shared by the identity-matcher (its
 * single writer of records, pairs, decisions and offsets), the API and the
 * `hub identity` CLI (which read, and only INSERT steward commands: the
 * matcher is the single writer of clinical.identity.v1, so a steward's
 * decision becomes an event in the same order as the matcher's own).
 *
 * records and display hold PHI: they are served only by the steward API and
 * CLI, never logged. pairs, decisions and evidence hold none.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { migrateSchema, type Migration } from '../db/index.js';
import { HubError } from '../errors/index.js';
import type { Address, HumanName, Identifier, MatchEvidence } from '../events/index.js';

export const IDENTITY_SCHEMA = 'identity';

/** What a pair's latest decision (pairs) and every decision (decisions) both say: the pair, the score, who and why. */
function decisionColumns(t: Knex.CreateTableBuilder): void {
  t.text('patient_id').notNullable();
  t.text('other_patient_id').notNullable();
  t.double('score').nullable();
  t.text('weights_version').nullable();
  t.jsonb('evidence').notNullable();
  t.jsonb('rules').notNullable();
  t.text('decided_by').notNullable();
  t.text('reason').nullable();
  t.index(['patient_id']);
  t.index(['other_patient_id']);
}

export const identityMigrations: readonly Migration[] = [
  {
    name: '0001_identity',
    async up(knex, schema) {
      // A fresh builder per statement: a knex schema builder re-runs what it holds.
      const s = () => knex.schema.withSchema(schema);
      await s().createTable('records', (t) => {
        t.text('patient_id').primary();
        t.jsonb('record').notNullable(); // MatchRecord (normalised)
        t.jsonb('demographics').notNullable(); // merged Demographics, for the next mergeDemographics
        t.jsonb('display').notNullable(); // RecordDisplay, for the steward's side-by-side
        t.specificType('block_keys', 'text[]').notNullable();
        t.boolean('active').notNullable().defaultTo(true);
        t.text('merged_into').nullable();
        t.jsonb('source').nullable();
        t.timestamp('updated_at', { useTz: true }).notNullable();
        t.index(['block_keys'], 'records_block_keys_gin', 'gin');
      });
      await s().createTable('pairs', (t) => {
        t.text('pair_key').primary();
        decisionColumns(t);
        t.text('state').notNullable();
        t.text('basis').notNullable();
        t.text('event_id').notNullable();
        t.timestamp('updated_at', { useTz: true }).notNullable();
        t.index(['state']);
      });
      await s().createTable('decisions', (t) => {
        t.text('event_id').primary();
        t.text('pair_key').notNullable();
        decisionColumns(t);
        t.text('type').notNullable();
        t.timestamp('decided_at', { useTz: true }).notNullable();
      });
      await s().createTable('commands', (t) => {
        t.uuid('id').primary();
        t.text('kind').notNullable();
        t.text('patient_id').notNullable();
        t.text('other_patient_id').notNullable();
        t.text('decided_by').notNullable();
        t.text('reason').nullable();
        t.timestamp('requested_at', { useTz: true }).notNullable();
        t.text('status').notNullable();
        t.text('event_id').nullable();
        t.text('error').nullable();
        t.index(['status', 'requested_at']);
      });
      await s().createTable('offsets', (t) => {
        t.text('topic').notNullable();
        t.integer('partition').notNullable();
        t.bigInteger('last_offset').notNullable();
        t.bigInteger('fence').notNullable().defaultTo(0);
        t.primary(['topic', 'partition']);
      });
    },
  },
];

export async function migrateIdentity(knex: Knex, schema: string): Promise<void> {
  await migrateSchema(knex, schema, identityMigrations);
}

/** The pair's key: both enterprise ids, the lower first (string order), as in the events' Kafka key. */
export function pairKeyOf(a: string, b: string): { pairKey: string; lo: string; hi: string } {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return { pairKey: `${lo}|${hi}`, lo, hi };
}

/** What a steward sees of one record (PHI: served by the steward API and CLI only). */
export interface RecordDisplay {
  names: HumanName[];
  birthDate: string | null;
  sex: string | null;
  identifiers: Identifier[];
  /** The first address, if any. */
  address: Address | null;
  /** The first phone number as sent, if any. */
  phone: string | null;
}

/** Where the record's last event came from. */
export interface RecordSource {
  system: string;
  facility: string | null;
}

export type PairState = 'proposed' | 'linked' | 'unlinked' | 'rejected';
/** auto: the matcher decided (it may revise); steward: a person did (binding on the matcher). */
export type PairBasis = 'auto' | 'steward';

/** The latest decision about a pair of records (no PHI). */
export interface Pair {
  pairKey: string;
  /** The lower enterprise id. */
  patientId: string;
  /** The higher enterprise id. */
  otherPatientId: string;
  state: PairState;
  score: number | null;
  weightsVersion: string | null;
  evidence: MatchEvidence[];
  rules: string[];
  decidedBy: string;
  reason: string | null;
  basis: PairBasis;
  /** The event that put the pair in this state. */
  eventId: string;
  updatedAt: string;
}

/** One decision in a pair's history: an event on clinical.identity.v1 (no PHI). */
export interface Decision {
  eventId: string;
  pairKey: string;
  patientId: string;
  otherPatientId: string;
  /** PatientLinkProposed | PatientsLinked | PatientsUnlinked | PatientLinkRejected */
  type: string;
  score: number | null;
  weightsVersion: string | null;
  evidence: MatchEvidence[];
  rules: string[];
  decidedBy: string;
  reason: string | null;
  decidedAt: string;
}

/** One entry of the review worklist: a proposed pair with both records side by side. */
export interface ReviewItem {
  pair: Pair;
  /** The record `pair.patientId`. */
  record: RecordDisplay;
  /** The record `pair.otherPatientId`. */
  otherRecord: RecordDisplay;
}

/** Everything the index knows about one record, for `explain`. */
export interface Explanation {
  patientId: string;
  display: RecordDisplay;
  source: RecordSource | null;
  /** False once an EHR merge (A40) retired the record. */
  active: boolean;
  /** The survivor of the A40 that retired it. */
  mergedInto: string | null;
  /** The enterprise ids linked to it, transitively, itself included (sorted). */
  person: string[];
  /** Every pair the record is part of, any state. */
  pairs: Pair[];
  /** Every decision about those pairs, oldest first. */
  history: Decision[];
}

export type CommandKind = 'link' | 'unlink' | 'reject';
export type CommandStatus = 'pending' | 'done' | 'refused';

export interface DecisionRequest {
  kind: CommandKind;
  patientId: string;
  otherPatientId: string;
  /** The steward: the token's subject/client id, or the operator. */
  decidedBy: string;
  reason: string | null;
  /** Defaults to a random UUID; the event id is derived from it. */
  id?: string;
  now?: Date;
}

/** Where a steward's request stands. */
export interface CommandOutcome {
  status: CommandStatus;
  /** The published event, once done. */
  eventId: string | null;
  /** Why it was refused (no PHI). */
  error: string | null;
}

/** A stored steward command, as the matcher picks it. */
export interface Command {
  id: string;
  kind: CommandKind;
  /** The lower enterprise id. */
  patientId: string;
  /** The higher enterprise id. */
  otherPatientId: string;
  decidedBy: string;
  reason: string | null;
  requestedAt: Date;
}

export interface PairRow {
  pair_key: string;
  patient_id: string;
  other_patient_id: string;
  state: PairState;
  score: number | null;
  weights_version: string | null;
  evidence: MatchEvidence[];
  rules: string[];
  decided_by: string;
  reason: string | null;
  basis: PairBasis;
  event_id: string;
  updated_at: Date;
}

export function pairFromRow(r: PairRow): Pair {
  return {
    pairKey: r.pair_key,
    patientId: r.patient_id,
    otherPatientId: r.other_patient_id,
    state: r.state,
    score: r.score,
    weightsVersion: r.weights_version,
    evidence: r.evidence,
    rules: r.rules,
    decidedBy: r.decided_by,
    reason: r.reason,
    basis: r.basis,
    eventId: r.event_id,
    updatedAt: r.updated_at.toISOString(),
  };
}

interface DecisionRow {
  event_id: string;
  pair_key: string;
  patient_id: string;
  other_patient_id: string;
  type: string;
  score: number | null;
  weights_version: string | null;
  evidence: MatchEvidence[];
  rules: string[];
  decided_by: string;
  reason: string | null;
  decided_at: Date;
}

function decisionFromRow(r: DecisionRow): Decision {
  return {
    eventId: r.event_id,
    pairKey: r.pair_key,
    patientId: r.patient_id,
    otherPatientId: r.other_patient_id,
    type: r.type,
    score: r.score,
    weightsVersion: r.weights_version,
    evidence: r.evidence,
    rules: r.rules,
    decidedBy: r.decided_by,
    reason: r.reason,
    decidedAt: r.decided_at.toISOString(),
  };
}

/**
 * The review worklist: proposed pairs whose records are both active (a
 * proposal about a record an EHR merge retired is moot), highest score first.
 */
export async function listReview(knex: Knex, schema: string, opts: { limit: number }): Promise<ReviewItem[]> {
  const rows = await knex
    .withSchema(schema)
    .from('pairs as p')
    .join('records as a', 'a.patient_id', 'p.patient_id')
    .join('records as b', 'b.patient_id', 'p.other_patient_id')
    .where('p.state', 'proposed')
    .andWhere('a.active', true)
    .andWhere('b.active', true)
    .orderByRaw('p.score desc nulls last, p.pair_key')
    .limit(Math.max(1, Math.min(opts.limit, 1000)))
    .select<(PairRow & { a_display: RecordDisplay; b_display: RecordDisplay })[]>(
      'p.*',
      'a.display as a_display',
      'b.display as b_display',
    );
  return rows.map((r) => ({ pair: pairFromRow(r), record: r.a_display, otherRecord: r.b_display }));
}

/** The ids linked to `patientId`, transitively over linked pairs, itself included. */
async function personOf(knex: Knex, schema: string, patientId: string): Promise<string[]> {
  const r = await knex.raw<{ rows: { id: string }[] }>(
    `with recursive person(id) as (
       select ?::text
       union
       select case when p.patient_id = person.id then p.other_patient_id else p.patient_id end
         from person join ??.pairs p
           on p.state = 'linked' and (p.patient_id = person.id or p.other_patient_id = person.id)
     ) select id from person order by id`,
    [patientId, schema],
  );
  return r.rows.map((x) => x.id);
}

export async function explainPatient(
  knex: Knex,
  schema: string,
  patientId: string,
): Promise<Explanation | null> {
  const rec = await knex
    .withSchema(schema)
    .from('records')
    .where({ patient_id: patientId })
    .first<
      | { display: RecordDisplay; source: RecordSource | null; active: boolean; merged_into: string | null }
      | undefined
    >('display', 'source', 'active', 'merged_into');
  if (!rec) return null;
  const pairs = await knex
    .withSchema(schema)
    .from('pairs')
    .where({ patient_id: patientId })
    .orWhere({ other_patient_id: patientId })
    .orderBy('pair_key')
    .select<PairRow[]>('*');
  const history = await knex
    .withSchema(schema)
    .from('decisions')
    .where({ patient_id: patientId })
    .orWhere({ other_patient_id: patientId })
    .orderBy([{ column: 'decided_at' }, { column: 'event_id' }])
    .select<DecisionRow[]>('*');
  return {
    patientId,
    display: rec.display,
    source: rec.source,
    active: rec.active,
    mergedInto: rec.merged_into,
    person: await personOf(knex, schema, patientId),
    pairs: pairs.map(pairFromRow),
    history: history.map(decisionFromRow),
  };
}

/**
 * Records a steward's decision for the matcher to publish (it validates it
 * against the pair and the records then, and refuses what no longer holds).
 */
export async function requestDecision(
  knex: Knex,
  schema: string,
  req: DecisionRequest,
): Promise<{ commandId: string }> {
  if (req.patientId === req.otherPatientId)
    throw new HubError('HUB_INPUT_INVALID', 'a record cannot be linked to itself');
  const { lo, hi } = pairKeyOf(req.patientId, req.otherPatientId);
  const known = await knex
    .withSchema(schema)
    .from('records')
    .whereIn('patient_id', [lo, hi])
    .count<{ n: string }[]>({ n: '*' });
  if (Number(known[0]?.n ?? 0) !== 2)
    throw new HubError('HUB_NOT_FOUND', 'the master patient index does not know both records');
  const id = req.id ?? randomUUID();
  await knex
    .withSchema(schema)
    .into('commands')
    .insert({
      id,
      kind: req.kind,
      patient_id: lo,
      other_patient_id: hi,
      decided_by: req.decidedBy,
      reason: req.reason,
      requested_at: req.now ?? new Date(),
      status: 'pending',
    });
  return { commandId: id };
}

export async function commandOutcome(
  knex: Knex,
  schema: string,
  commandId: string,
): Promise<CommandOutcome | null> {
  const row = await knex
    .withSchema(schema)
    .from('commands')
    .where({ id: commandId })
    .first<{ status: CommandStatus; event_id: string | null; error: string | null } | undefined>(
      'status',
      'event_id',
      'error',
    );
  return row ? { status: row.status, eventId: row.event_id, error: row.error } : null;
}

const AWAIT_POLL_MS = 100;

/**
 * Waits until the matcher has handled the command (done or refused), or
 * `timeoutMs` passed: then answers it still pending. HUB_NOT_FOUND for an
 * unknown command id.
 */
export async function awaitCommand(
  knex: Knex,
  schema: string,
  commandId: string,
  opts: { timeoutMs: number },
): Promise<CommandOutcome> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const o = await commandOutcome(knex, schema, commandId);
    if (!o) throw new HubError('HUB_NOT_FOUND', 'no such identity command');
    if (o.status !== 'pending' || Date.now() >= deadline) return o;
    await new Promise((r) => setTimeout(r, Math.min(AWAIT_POLL_MS, Math.max(0, deadline - Date.now()))));
  }
}
