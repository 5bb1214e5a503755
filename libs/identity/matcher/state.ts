/**
 * The identity-matcher's reads and writes of the identity schema, inside the
 * transaction of one batch or one round of commands. Only the matcher calls
 * these; the steward surfaces use libs/identity/store.ts.
 */
import type { Knex } from 'knex';
import { sqlArray } from '../../db/index.js';
import type { Demographics, MatchEvidence } from '../../events/index.js';
import type { CandidateSource, MatchRecord } from '../matching/types.js';
import {
  pairFromRow,
  type CommandKind,
  type Pair,
  type PairBasis,
  type PairRow,
  type RecordDisplay,
  type RecordSource,
} from '../store.js';
import { STATE_AFTER, type IdentityEventType } from './plan.js';

/**
 * Serialises every writer of one identity schema (batches and command rounds,
 * in this process and any other replica): a pair's state is read, decided
 * on and written without another decision in between.
 */
export async function lockIdentity(trx: Knex.Transaction, schema: string): Promise<void> {
  await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`identity-matcher:${schema}`]);
}

/** A record as the matcher keeps it. */
export interface StoredRecord {
  patientId: string;
  record: MatchRecord;
  demographics: Demographics;
  active: boolean;
  mergedInto: string | null;
}

interface RecordRow {
  patient_id: string;
  record: MatchRecord;
  demographics: Demographics;
  active: boolean;
  merged_into: string | null;
}

const fromRecordRow = (r: RecordRow): StoredRecord => ({
  patientId: r.patient_id,
  record: r.record,
  demographics: r.demographics,
  active: r.active,
  mergedInto: r.merged_into,
});

export async function loadRecords(
  db: Knex,
  schema: string,
  ids: readonly string[],
): Promise<Map<string, StoredRecord>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .withSchema(schema)
    .from('records')
    .whereIn('patient_id', [...ids])
    .select<RecordRow[]>('patient_id', 'record', 'demographics', 'active', 'merged_into');
  return new Map(rows.map((r) => [r.patient_id, fromRecordRow(r)]));
}

/** What the steward sees of a record: the first address and phone, every name and identifier. */
export function displayOf(d: Demographics): RecordDisplay {
  return {
    names: d.names,
    birthDate: d.birthDate,
    sex: d.administrativeGender,
    identifiers: d.identifiers,
    address: d.addresses[0] ?? null,
    phone: d.telecom.find((t) => t.system === 'phone')?.value ?? null,
  };
}

/** Stores a record's current state; an EHR merge's retirement (active, merged_into) is kept. */
export async function upsertRecord(
  trx: Knex.Transaction,
  schema: string,
  r: {
    record: MatchRecord;
    demographics: Demographics;
    keys: readonly string[];
    source: RecordSource;
    now: Date;
  },
): Promise<void> {
  await trx
    .withSchema(schema)
    .into('records')
    .insert({
      patient_id: r.record.patientId,
      record: JSON.stringify(r.record),
      demographics: JSON.stringify(r.demographics),
      display: JSON.stringify(displayOf(r.demographics)),
      block_keys: trx.raw('?::text[]', [sqlArray(r.keys)]),
      active: true,
      merged_into: null,
      source: JSON.stringify(r.source),
      updated_at: r.now,
    })
    .onConflict('patient_id')
    .merge(['record', 'demographics', 'display', 'block_keys', 'source', 'updated_at']);
}

/**
 * An EHR merge retired `mergedId` into `survivorId`: it is never matched,
 * linked or unlinked again. A record the index never saw is kept as a
 * retired stub (with the demographics the merge carried, if any), so that a
 * late registration of it does not bring it back.
 */
export async function retireRecord(
  trx: Knex.Transaction,
  schema: string,
  r: {
    mergedId: string;
    survivorId: string;
    stub: { record: MatchRecord; demographics: Demographics };
    now: Date;
  },
): Promise<void> {
  await trx
    .withSchema(schema)
    .into('records')
    .insert({
      patient_id: r.mergedId,
      record: JSON.stringify(r.stub.record),
      demographics: JSON.stringify(r.stub.demographics),
      display: JSON.stringify(displayOf(r.stub.demographics)),
      block_keys: trx.raw("'{}'::text[]"),
      active: false,
      merged_into: r.survivorId,
      source: null,
      updated_at: r.now,
    })
    .onConflict('patient_id')
    .merge({
      active: false,
      merged_into: r.survivorId,
      block_keys: trx.raw("'{}'::text[]"),
      updated_at: r.now,
    });
}

/** Candidates by blocking key: active records only (a retired record is never matched). */
export function candidateSource(db: Knex, schema: string, limit: number): CandidateSource {
  return {
    async candidates(keys) {
      if (keys.length === 0) return [];
      const rows = await db
        .withSchema(schema)
        .from('records')
        .where('active', true)
        .andWhereRaw('block_keys && ?::text[]', [sqlArray(keys)])
        .orderBy('patient_id')
        .limit(limit)
        .select<{ record: MatchRecord }[]>('record');
      return rows.map((r) => r.record);
    },
  };
}

/** Every pair the record is part of, by pair key. */
export async function pairsOf(db: Knex, schema: string, patientId: string): Promise<Map<string, Pair>> {
  const rows = await db
    .withSchema(schema)
    .from('pairs')
    .where({ patient_id: patientId })
    .orWhere({ other_patient_id: patientId })
    .select<PairRow[]>('*');
  return new Map(rows.map((r) => [r.pair_key, pairFromRow(r)]));
}

export async function pairByKey(db: Knex, schema: string, pairKey: string): Promise<Pair | null> {
  const row = await db
    .withSchema(schema)
    .from('pairs')
    .where({ pair_key: pairKey })
    .first<PairRow | undefined>('*');
  return row ? pairFromRow(row) : null;
}

/** One decision as published: it moves its pair and joins the history. */
export interface AppliedDecision {
  eventId: string;
  type: IdentityEventType;
  pairKey: string;
  patientId: string;
  otherPatientId: string;
  score: number | null;
  weightsVersion: string | null;
  evidence: MatchEvidence[];
  rules: string[];
  decidedBy: string;
  reason: string | null;
  basis: PairBasis;
  decidedAt: Date;
}

export async function applyDecision(
  trx: Knex.Transaction,
  schema: string,
  d: AppliedDecision,
): Promise<void> {
  const common = {
    pair_key: d.pairKey,
    patient_id: d.patientId,
    other_patient_id: d.otherPatientId,
    score: d.score,
    weights_version: d.weightsVersion,
    evidence: JSON.stringify(d.evidence),
    rules: JSON.stringify(d.rules),
    decided_by: d.decidedBy,
    reason: d.reason,
  };
  await trx
    .withSchema(schema)
    .into('pairs')
    .insert({
      ...common,
      state: STATE_AFTER[d.type],
      basis: d.basis,
      event_id: d.eventId,
      updated_at: d.decidedAt,
    })
    .onConflict('pair_key')
    .merge();
  await trx
    .withSchema(schema)
    .into('decisions')
    .insert({ ...common, event_id: d.eventId, type: d.type, decided_at: d.decidedAt })
    .onConflict('event_id')
    .ignore();
}

export interface PendingCommand {
  id: string;
  kind: CommandKind;
  patientId: string;
  otherPatientId: string;
  decidedBy: string;
  reason: string | null;
  requestedAt: Date;
}

/** The oldest pending commands, locked for this round (another replica skips them). */
export async function pendingCommands(
  trx: Knex.Transaction,
  schema: string,
  limit: number,
): Promise<PendingCommand[]> {
  const rows = await trx
    .withSchema(schema)
    .from('commands')
    .where({ status: 'pending' })
    .orderBy([{ column: 'requested_at' }, { column: 'id' }])
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .select<
      {
        id: string;
        kind: CommandKind;
        patient_id: string;
        other_patient_id: string;
        decided_by: string;
        reason: string | null;
        requested_at: Date;
      }[]
    >('id', 'kind', 'patient_id', 'other_patient_id', 'decided_by', 'reason', 'requested_at');
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    patientId: r.patient_id,
    otherPatientId: r.other_patient_id,
    decidedBy: r.decided_by,
    reason: r.reason,
    requestedAt: r.requested_at,
  }));
}

export async function finishCommand(
  trx: Knex.Transaction,
  schema: string,
  id: string,
  outcome: { status: 'done'; eventId: string } | { status: 'refused'; error: string },
): Promise<void> {
  await trx
    .withSchema(schema)
    .from('commands')
    .where({ id })
    .update(
      outcome.status === 'done'
        ? { status: 'done', event_id: outcome.eventId, error: null }
        : { status: 'refused', error: outcome.error },
    );
}

/** Proposed pairs of active records: the review worklist's size (a gauge; no PHI). */
export async function reviewQueueSize(db: Knex, schema: string): Promise<number> {
  const r = await db.raw<{ rows: [{ n: string }] }>(
    `select count(*) as n from ??.pairs p
       join ??.records a on a.patient_id = p.patient_id and a.active
       join ??.records b on b.patient_id = p.other_patient_id and b.active
      where p.state = 'proposed'`,
    [schema, schema, schema],
  );
  return Number(r.rows[0].n);
}
