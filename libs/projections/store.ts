import type { Knex } from 'knex';
import { HubError } from '../errors/index.js';
import { assertSqlIdentifier, sqlArray, type Migration } from '../db/index.js';
import { encodeCopyRows, NotCopyable, schemaColumns, sendCopy, type SchemaColumns } from '../db/copy.js';
import { insertAssumingNew, type Projection } from './runner.js';
import type { EventSkipping } from '../events/codec.js';
import type { ClinicalEvent, EventType, EventTypeMap } from '../events/index.js';
import type { DecodedRecord } from '../kafka/consumer.js';

/**
 * A read model as a set of keyed tables, evolved by a pure function over an
 * in-memory draft. The I/O around it is always the same three steps per
 * batch, whatever the batch size: load the touched rows (one `= any(...)`
 * select per table), evolve them in memory, write the changed ones back (one
 * multi-row upsert / delete per table). The domain never sees SQL.
 */
export type Row = Record<string, unknown>;

export interface TableSpec {
  /** Single text primary-key column (composite keys are encoded into one string by the domain). */
  key: string;
  /** Column holding the enterprise patient id, rewritten when patients are merged. */
  patientColumn?: string;
  /** jsonb columns holding FHIR resources whose `subject.reference` names the patient. */
  subjectColumns?: readonly string[];
  /**
   * The element of those resources that names the patient, when it is not `subject`
   * (AllergyIntolerance.patient, Coverage.beneficiary).
   */
  subjectElement?: 'patient' | 'beneficiary';
  /** jsonb columns: serialised on write (node-pg would turn JS arrays into Postgres arrays). */
  jsonColumns?: readonly string[];
  /** timestamptz columns: epoch ms in the domain, Date in the database. */
  timeColumns?: readonly string[];
  /**
   * Rows are created once and never rewritten (e.g. one per applied event),
   * so they are written without `on conflict`; should one exist after all,
   * the batch is applied again upserting (KeyExists), as for any other table.
   */
  appendOnly?: boolean;
}

export type TableSpecs<T> = { readonly [K in keyof T]: TableSpec };

/** Which rows (by key) of which tables an event needs to see. */
export type Needs<T> = { [K in keyof T]?: string[] };

export type Resolve = (patientId: string) => string;

/** Any event union a read model may be typed by: ClinicalEvent, or it without skipped fields (EventSkipping). */
export type AnyEvent = {
  type: EventType;
  data: { meta: EventTypeMap[EventType]['meta']; patientId: string };
};

/** The event(s) of the given type(s) of union E (default ClinicalEvent), narrowed as a switch case would. */
export type EventOf<K extends EventType, E extends AnyEvent = ClinicalEvent> = Extract<E, { type: K }>;

/**
 * The fields of an event type the store itself reads (ids, merges, links:
 * readModelProjection) and the runner (meta.eventId): no read model may skip them.
 */
type StoreReads<K extends EventType> =
  | 'meta'
  | 'patientId'
  | (K extends 'PatientsMerged' ? 'mergedPatientId' : never)
  | (K extends 'PatientsLinked' | 'PatientsUnlinked' ? 'otherPatientId' : never);

/**
 * Top-level data fields a read model never reads, per event type: its
 * runner leaves them undecoded (runner.ts Projection.skip) and its handlers
 * see the events without them (EventSkipping), so reading one does not
 * compile. Declared `as const` beside the model, which is typed by it.
 */
export type ReadModelSkips = {
  readonly [K in EventType]?: readonly Exclude<keyof EventTypeMap[K] & string, StoreReads<K>>[];
};

/** A read model that decodes every field. */
export type NoSkips = Record<never, never>;

/** What one event type does to a read model's draft. Pure, as evolve. */
export type EvolveHandler<T extends { [K in keyof T]: object }, E extends AnyEvent = ClinicalEvent> = (
  draft: Draft<T>,
  e: E,
  resolve: Resolve,
) => void;

/**
 * An evolve as a table of one handler per event type: a new event type
 * without its handler does not compile, as with an exhaustive switch, and
 * each handler reads on its own.
 */
export type EvolveHandlers<T extends { [K in keyof T]: object }, E extends AnyEvent = ClinicalEvent> = {
  [K in EventType]: EvolveHandler<T, EventOf<K, E>>;
};

/** The evolve that dispatches each event to its type's handler. */
export function evolveByType<T extends { [K in keyof T]: object }, E extends AnyEvent = ClinicalEvent>(
  handlers: EvolveHandlers<T, E>,
): EvolveHandler<T, E> {
  // The table's key and the handler's event type are the same K; TypeScript
  // cannot correlate them through the union, so the lookup is widened once here.
  return (draft, e, resolve) => (handlers[e.type] as EvolveHandler<T, E>)(draft, e, resolve);
}

/**
 * The mutable working set of one batch. Not I/O: the domain reads rows that
 * were loaded for it and records puts/deletes, which the store then writes.
 */
export class Draft<T extends { [K in keyof T]: object }> {
  /** Per table its rows, the keys the batch changed, and keys only known present: one lookup per get or put. */
  private readonly tables = new Map<keyof T, TableDraft>();

  constructor(
    loaded?: { [K in keyof T]?: Iterable<[string, T[K]]> },
    present?: { [K in keyof T]?: ReadonlySet<string> },
  ) {
    if (loaded) {
      for (const t of Object.keys(loaded) as (keyof T)[]) {
        const m = this.table(t).rows;
        for (const [k, v] of loaded[t] ?? []) m.set(k, v);
      }
    }
    if (present) {
      for (const t of Object.keys(present) as (keyof T)[]) {
        const keys = present[t];
        if (keys && keys.size > 0) this.table(t).present = keys;
      }
    }
  }

  private table(t: keyof T): TableDraft {
    let d = this.tables.get(t);
    if (!d) this.tables.set(t, (d = { rows: new Map(), dirty: new Set(), present: undefined }));
    return d;
  }

  get<K extends keyof T>(t: K, key: string): T[K] | undefined {
    const d = this.table(t);
    const v = d.rows.get(key);
    // A row the batch only knows to exist must not read as absent: the
    // evolve would write a new row over the stored one.
    if (v === undefined && d.present?.has(key))
      throw new HubError(
        'HUB_PROJECTION_FAILED',
        `a row of ${String(t)} was read but only its presence was loaded`,
      );
    return (v ?? undefined) as T[K] | undefined;
  }

  /** Whether the row exists (loaded, put, or known present), without needing its content. */
  has<K extends keyof T>(t: K, key: string): boolean {
    const d = this.table(t);
    const v = d.rows.get(key);
    return v === undefined ? (d.present?.has(key) ?? false) : v !== null;
  }

  put<K extends keyof T>(t: K, key: string, row: T[K]): void {
    const d = this.table(t);
    d.rows.set(key, row);
    d.dirty.add(key);
  }

  delete<K extends keyof T>(t: K, key: string): void {
    const d = this.table(t);
    d.rows.set(key, null);
    d.dirty.add(key);
  }

  /** Current rows of a table (for tests and the store's write step). */
  all<K extends keyof T>(t: K): Map<string, T[K]> {
    const out = new Map<string, T[K]>();
    for (const [k, v] of this.table(t).rows) if (v) out.set(k, v as T[K]);
    return out;
  }

  changes<K extends keyof T>(t: K): { upserts: T[K][]; deletes: string[] } {
    const upserts: T[K][] = [];
    const deletes: string[] = [];
    const { rows, dirty } = this.table(t);
    for (const k of dirty) {
      const v = rows.get(k);
      if (v) upserts.push(v as T[K]);
      else deletes.push(k);
    }
    return { upserts, deletes };
  }
}

interface TableDraft {
  rows: Map<string, object | null>;
  /** Keys put or deleted, in the order first changed (the order rows are written in). */
  dirty: Set<string>;
  /** Keys known to exist whose rows were not loaded (ReadModel.presence). */
  present: ReadonlySet<string> | undefined;
}

export interface ReadModel<T extends { [K in keyof T]: object }, S extends ReadModelSkips = NoSkips> {
  name: string;
  topics: readonly string[];
  tables: TableSpecs<T>;
  migrations: readonly Migration[];
  /** Fields its events are decoded without (see ReadModelSkips); the handlers below see them so. */
  skip?: S;
  needs(e: EventSkipping<S>, resolve: Resolve): Needs<T>;
  /**
   * Rows the event only needs to know exist (Draft.has), not read: only
   * their keys are loaded, not their content (a catch-up reads back each
   * touched patient's resource per batch otherwise). Keys also in `needs`
   * are loaded whole.
   */
  presence?(e: EventSkipping<S>, resolve: Resolve): Needs<T>;
  /** Pure: reads and writes the draft only. `resolve` maps a retired patient id to its survivor. */
  evolve(draft: Draft<T>, e: EventSkipping<S>, resolve: Resolve, rec: { topic: string }): void;
  /** Called with resends that were suppressed as duplicates (same event id, new offset). */
  duplicates?(trx: Knex.Transaction, schema: string, records: readonly DecodedRecord[]): Promise<void>;
}

/** The table every read model keeps for merges: retired id → survivor id. */
export const patientLinksMigration: Migration = {
  name: '0001_patient_links',
  async up(knex, schema) {
    await knex.schema.withSchema(schema).createTable('patient_links', (t) => {
      t.text('merged_id').primary();
      t.text('survivor_id').notNullable();
    });
  },
};

/**
 * Reversible links between records of one person (PatientsLinked /
 * PatientsUnlinked, from the identity matcher or a data steward), in every
 * read model. Unlike a merge, a link rewrites no row: `person_links` keeps
 * each pair's latest decision (a pair's events share its Kafka key, the
 * lower id, so they are applied in order), and the view `persons` says who
 * is whom when read. Patients in no link are not in the view: they are
 * their own person (readers coalesce). Identity events applied by a release
 * before this table were not kept: rebuild the read model to read them.
 */
export const personLinksMigration: Migration = {
  name: '0002_person_links',
  async up(knex, schema) {
    await knex.schema.withSchema(schema).createTable('person_links', (t) => {
      t.text('pair_key').primary();
      t.text('patient_id').notNullable().index();
      t.text('other_patient_id').notNullable().index();
      t.boolean('linked').notNullable();
      t.text('event_id').notNullable();
    });
    // personSql walks merges both ways: survivor → retired ids too.
    await knex.schema.withSchema(schema).alterTable('patient_links', (t) => {
      t.index(['survivor_id']);
    });
    await knex.raw(`create view ??.persons as ${personsSql(`"${assertSqlIdentifier(schema)}"`)}`, [schema]);
  },
};

/**
 * persons(patient_id, person_id): the connected components of the linked
 * pairs, each endpoint first mapped through `patient_links` to its final
 * survivor (a link to a record merged away since holds for its survivor);
 * person_id is the smallest id of the component, so any build of the same
 * links names persons alike. A merge cycle (which the store never makes)
 * leaves its ids as they are.
 */
export function personsSql(s: string): string {
  return `with recursive
  chain(merged_id, survivor_id) as (
    select merged_id, survivor_id from ${s}.patient_links
    union
    select c.merged_id, l.survivor_id from chain c join ${s}.patient_links l on l.merged_id = c.survivor_id),
  final(merged_id, root) as (
    select c.merged_id, c.survivor_id from chain c
     where not exists (select 1 from ${s}.patient_links l where l.merged_id = c.survivor_id)),
  edge(a, b) as (
    select coalesce(fa.root, pl.patient_id), coalesce(fb.root, pl.other_patient_id)
      from ${s}.person_links pl
      left join final fa on fa.merged_id = pl.patient_id
      left join final fb on fb.merged_id = pl.other_patient_id
     where pl.linked),
  sym(a, b) as (select a, b from edge union select b, a from edge),
  reach(patient_id, member) as (
    select a, a from sym
    union
    select r.patient_id, y.b from reach r join sym y on y.a = r.member)
select patient_id, min(member) as person_id from reach group by patient_id`;
}

/**
 * The records of ONE patient's person, for readers that ask about one
 * patient (the API): the same answer as `persons` (the test
 * person-links.int.test.ts holds them equal), but walked from that patient
 * along the indexes instead of computing every component. The component is
 * taken in the graph of merges (either way) and linked pairs together; its
 * ids not merged away are the person's records, as the view's components
 * over final survivors are. One binding: the patient id. Returns
 * `patient_id` rows, sorted; for an id in no link just itself; for an id
 * merged away its survivor's person, without it (it is no person's record:
 * callers keep it alone).
 */
export function personSql(s: string): string {
  return `with recursive reach(id) as (
    select ?::text
    union
    select n.id from reach r cross join lateral (
      select l.survivor_id as id from ${s}.patient_links l where l.merged_id = r.id
      union all select l.merged_id from ${s}.patient_links l where l.survivor_id = r.id
      union all select pl.other_patient_id from ${s}.person_links pl where pl.linked and pl.patient_id = r.id
      union all select pl.patient_id from ${s}.person_links pl where pl.linked and pl.other_patient_id = r.id) n)
  select id as patient_id from reach
   where not exists (select 1 from ${s}.patient_links l where l.merged_id = reach.id and l.survivor_id <> reach.id)
   order by id`;
}

interface PersonLinkRow {
  pair_key: string;
  patient_id: string;
  other_patient_id: string;
  linked: boolean;
  event_id: string;
}

/** The pair's decision an identity event records, or null for events that decide no link. */
export function personLinkOf(e: ClinicalEvent): PersonLinkRow | null {
  if (e.type !== 'PatientsLinked' && e.type !== 'PatientsUnlinked') return null;
  const { patientId, otherPatientId } = e.data;
  // The event names the lower id first; sorted again so a sender that did not cannot make two rows of one pair.
  const [lo, hi] = patientId <= otherPatientId ? [patientId, otherPatientId] : [otherPatientId, patientId];
  return {
    pair_key: `${lo}|${hi}`,
    patient_id: lo,
    other_patient_id: hi,
    linked: e.type === 'PatientsLinked',
    event_id: e.data.meta.eventId,
  };
}

/**
 * Records each pair's latest decision of the batch (records come in
 * partition order, and a pair's events are on one partition), over the
 * stored one. Proposals and rejections change nothing in a read model.
 */
async function applyPersonLinks(
  trx: Knex.Transaction,
  schema: string,
  records: readonly DecodedRecord[],
): Promise<void> {
  const latest = new Map<string, PersonLinkRow>();
  for (const r of records) {
    const row = personLinkOf(r.event);
    if (row) latest.set(row.pair_key, row);
  }
  if (latest.size === 0) return;
  await trx
    .withSchema(schema)
    .into('person_links')
    .insert([...latest.values()])
    .onConflict('pair_key')
    .merge();
}

/**
 * Epoch ms as timestamptz input text, in UTC. Postgres reads neither of
 * `toISOString`'s six-digit signed years, so those are spelt out the way it
 * reads them (as node-pg does for a Date).
 */
export function timestamptzText(ms: number): string {
  const d = new Date(ms);
  const iso = d.toISOString();
  const y = d.getUTCFullYear();
  if (y >= 1 && y <= 9999) return iso;
  const rest = iso.slice(iso.indexOf('-', 1));
  return y < 1 ? `${String(1 - y).padStart(4, '0')}${rest} BC` : `${y}${rest}`;
}

/** A row as the batch write sends it: times as timestamptz text; the domain's row itself is not touched. */
function toDb(spec: TableSpec, row: Row): Row {
  let out: Row | undefined;
  for (const c of spec.timeColumns ?? []) {
    const v = row[c];
    if (typeof v === 'number') (out ??= { ...row })[c] = timestamptzText(v);
  }
  return out ?? row;
}

const quote = (name: string) => `"${assertSqlIdentifier(name)}"`;
const statements = new Map<string, string>();

/**
 * One statement per table and batch, whatever its size, with the rows as a
 * single jsonb array parameter: `jsonb_populate_recordset` types each field
 * by the table's own row type, so the statement stays a few hundred bytes
 * (no thousands of `$n` for Postgres to parse, nor for knex to number) and
 * there is no second copy of the column types to drift from the migrations.
 * jsonb columns take JSON values as they are (a JS array stays a jsonb
 * array). A JSON `null` in a jsonb column, which populate would make SQL
 * NULL, is kept as jsonb `null` (as before) by reading that column from the
 * array element itself: `jsonNull`, only for batches that hold one.
 */
function writeStatement(
  schema: string,
  table: string,
  spec: TableSpec,
  cols: readonly string[],
  upsert: boolean,
  jsonNull: boolean,
): string {
  const cacheKey = `${upsert ? 'upsert' : 'insert'}${jsonNull ? ' null' : ''} ${schema}.${table}(${cols.join(',')})`;
  let sql = statements.get(cacheKey);
  if (sql === undefined) {
    const target = `${quote(schema)}.${quote(table)}`;
    const json = new Set(spec.jsonColumns ?? []);
    const values = cols.map((c) =>
      // The column name is checked by quote(); inside a literal it needs no further escaping.
      jsonNull && json.has(c)
        ? `coalesce(r.${quote(c)}, e.v -> '${assertSqlIdentifier(c)}')`
        : `r.${quote(c)}`,
    );
    const from = jsonNull
      ? `jsonb_array_elements(?::jsonb) as e(v), jsonb_populate_record(null::${target}, e.v) as r`
      : `jsonb_populate_recordset(null::${target}, ?::jsonb) as r`;
    sql = `insert into ${target} (${cols.map(quote).join(', ')}) select ${values.join(', ')} from ${from}`;
    if (upsert) {
      const updates = cols.filter((c) => c !== spec.key).map((c) => `${quote(c)} = excluded.${quote(c)}`);
      sql += ` on conflict (${quote(spec.key)}) do ${updates.length > 0 ? `update set ${updates.join(', ')}` : 'nothing'}`;
    }
    statements.set(cacheKey, sql);
  }
  return sql;
}

/** Keeps one statement's JSON well below Postgres' 1 GB value limit and its memory modest. */
const MAX_STATEMENT_CHARS = 32 * 1024 * 1024;

/**
 * Writes rows of one table: with `upsert`, over whatever exists; without,
 * as new rows (a key that exists after all throws KeyExists).
 */
async function writeRows(
  trx: Knex.Transaction,
  schema: string,
  table: string,
  spec: TableSpec,
  rows: readonly Row[],
  upsert: boolean,
): Promise<void> {
  const jsonCols = spec.jsonColumns ?? [];
  const jsonNull = jsonCols.length > 0 && rows.some((r) => jsonCols.some((c) => r[c] === null));
  const sql = writeStatement(schema, table, spec, columnsOf(rows), upsert, jsonNull);
  const send = async (part: readonly Row[]): Promise<void> => {
    const json = JSON.stringify(part);
    if (json.length > MAX_STATEMENT_CHARS && part.length > 1) {
      const half = Math.ceil(part.length / 2);
      await send(part.slice(0, half));
      await send(part.slice(half));
    } else if (upsert) {
      await trx.raw(sql, [json]);
    } else {
      await insertAssumingNew(() => trx.raw(sql, [json]));
    }
  };
  await send(spec.timeColumns?.length ? rows.map((r) => toDb(spec, r)) : rows);
}

/** Every column any row sets, as a multi-row insert would list them. */
function columnsOf(rows: readonly Row[]): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const c in row) seen.add(c);
  return [...seen];
}

/**
 * New rows of one table by binary COPY (the bulk path of a catch-up): the
 * same rows the plain insert writes, with the same KeyExists on a key that
 * exists after all. Rows with a value COPY would have to guess at
 * (NotCopyable) go through the insert statement instead.
 */
async function copyRows(
  trx: Knex.Transaction,
  schema: string,
  table: string,
  spec: TableSpec,
  rows: readonly Row[],
  columns: SchemaColumns,
): Promise<void> {
  const types = columns.get(table);
  let copy: ReturnType<typeof encodeCopyRows> | null = null;
  try {
    if (types) {
      copy = encodeCopyRows(
        { schema, table, types, jsonNullColumns: new Set(spec.jsonColumns ?? []) },
        columnsOf(rows),
        rows,
      );
    }
  } catch (err) {
    if (!(err instanceof NotCopyable)) throw err;
  }
  if (copy) await insertAssumingNew(() => sendCopy(trx, copy));
  else await writeRows(trx, schema, table, spec, rows, false);
}

/** A row as node-pg parsed it, times as epoch ms: changed in place (the row is this batch's own, fresh from the driver). */
function fromDb(spec: TableSpec, row: Row): Row {
  for (const c of spec.timeColumns ?? []) {
    const v = row[c];
    if (v instanceof Date) row[c] = v.getTime();
  }
  return row;
}

/** Follows retired → survivor links to the final survivor (merges can chain). */
export function rootOf(links: ReadonlyMap<string, string>, id: string): string {
  let cur = id;
  for (let i = 0; i < 64; i++) {
    const next = links.get(cur);
    if (next === undefined || next === cur) return cur;
    cur = next;
  }
  return cur;
}

interface LinkRow {
  merged_id: string;
  survivor_id: string;
}

async function loadLinks(trx: Knex.Transaction, schema: string, ids: string[]): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  let frontier = [...new Set(ids)];
  while (frontier.length > 0) {
    const rows = await trx
      .withSchema(schema)
      .from('patient_links')
      .whereRaw('merged_id = any(?::text[])', [sqlArray(frontier)])
      .select<LinkRow[]>('merged_id', 'survivor_id');
    frontier = [];
    for (const r of rows) {
      if (!links.has(r.merged_id)) {
        links.set(r.merged_id, r.survivor_id);
        frontier.push(r.survivor_id);
      }
    }
  }
  return links;
}

/**
 * Merges against the other instances of the same read model. A merge moves
 * the retired patient's rows with one UPDATE, which cannot see rows another
 * instance is writing under the retired id in a transaction still open (it
 * looked the id up before the merge committed): that row would keep the
 * retired id forever, unlike in a build by one instance (the rebalance-storm
 * fault test found it). So a batch with merges waits for every other batch
 * of the schema to commit and holds them off until it commits; batches
 * without merges only share the lock. Taken before links and rows are read,
 * so each of them (read committed: per statement) sees the merge.
 */
async function lockForMerges(trx: Knex.Transaction, schema: string, merging: boolean): Promise<void> {
  const fn = merging ? 'pg_advisory_xact_lock' : 'pg_advisory_xact_lock_shared';
  await trx.raw(`select ${fn}(hashtext(?))`, [`hub_merges:${schema}`]);
}

/**
 * The patients whose rows a batch's new links move: those retired now, and
 * those retired into them before (recursively, over the survivor index), so
 * that a row left under an earlier retired id follows too. Not every link of
 * the read model's history: a catch-up over years of merges would read and
 * send them all with every merge (and past 32,767 links the statement no
 * longer fit Postgres' bind parameters).
 */
async function movingIds(
  trx: Knex.Transaction,
  schema: string,
  retired: readonly string[],
): Promise<string[]> {
  const { rows } = await trx.raw<{ rows: { id: string }[] }>(
    `with recursive moving(id) as (
       select unnest(?::text[])
       union
       select l.merged_id from ??.patient_links l join moving m on l.survivor_id = m.id
     ) select id from moving`,
    [sqlArray(retired), schema],
  );
  return rows.map((r) => r.id);
}

/**
 * Records merges first, then moves every row of a retired patient (and of
 * patients retired into it before) to the final survivor, one UPDATE per
 * table. Applying merges ahead of the rest of the batch is safe because the
 * end state of a merge does not depend on when it is seen: facts of a retired
 * id land on the survivor either way.
 */
async function applyMerges(
  trx: Knex.Transaction,
  schema: string,
  tables: Record<string, TableSpec>,
  merges: { survivor: string; retired: string }[],
): Promise<void> {
  if (merges.length === 0) return;
  const links = new Map<string, string>();
  for (const m of merges) if (m.survivor !== m.retired) links.set(m.retired, m.survivor);
  if (links.size === 0) return;
  await trx
    .withSchema(schema)
    .into('patient_links')
    .insert([...links].map(([merged_id, survivor_id]) => ({ merged_id, survivor_id })))
    .onConflict('merged_id')
    .merge();
  const moving = await movingIds(trx, schema, [...links.keys()]);
  // Each one's final survivor, following the links on from it (merges can chain).
  const forward = await loadLinks(trx, schema, moving);
  const pairs = moving.map((old) => [old, rootOf(forward, old)] as const).filter(([o, r]) => o !== r);
  if (pairs.length === 0) return;
  // Two array parameters, whatever the number of pairs.
  const olds = sqlArray(pairs.map(([o]) => o));
  const roots = sqlArray(pairs.map(([, r]) => r));
  for (const [name, spec] of Object.entries(tables)) {
    if (!spec.patientColumn) continue;
    const col = spec.patientColumn;
    const subjects = (spec.subjectColumns ?? []).map(
      (c) =>
        `, "${c}" = jsonb_set("${c}", '{${spec.subjectElement ?? 'subject'}}', jsonb_build_object('reference', 'Patient/' || v.root))`,
    );
    await trx.raw(
      `update ??.?? as t set "${col}" = v.root${subjects.join('')} from unnest(?::text[], ?::text[]) as v(old, root) where t."${col}" = v.old`,
      [schema, name, olds, roots],
    );
  }
}

/** How a batch's changes are written: which keys are new, whether to upsert everything, whether by COPY. */
interface WritePlan {
  /** Per table, keys looked for and not found (empty when careful). */
  absent: ReadonlyMap<string, ReadonlySet<string>>;
  /** Per table, every key looked for (found or not). */
  lookedUp: ReadonlyMap<string, ReadonlySet<string>>;
  careful: boolean;
  /** The schema's column types when new rows go by binary COPY (the bulk path); null: insert statements. */
  columns: SchemaColumns | null;
}

/** Per table: one delete, then new rows inserted (or copied) and the others upserted. */
async function writeChanges<T extends { [K in keyof T]: object }>(
  trx: Knex.Transaction,
  schema: string,
  tables: Record<string, TableSpec>,
  draft: Draft<T>,
  plan: WritePlan,
): Promise<void> {
  const insert = (t: string, spec: TableSpec, rows: readonly Row[]) =>
    plan.columns
      ? copyRows(trx, schema, t, spec, rows, plan.columns)
      : writeRows(trx, schema, t, spec, rows, false);
  for (const [t, spec] of Object.entries(tables)) {
    const { upserts, deletes } = draft.changes(t as keyof T);
    if (deletes.length > 0) {
      await trx
        .withSchema(schema)
        .from(t)
        .whereRaw('?? = any(?::text[])', [spec.key, sqlArray(deletes)])
        .delete();
    }
    const rows = upserts as Row[];
    if (rows.length === 0) continue;
    if (!plan.careful && spec.appendOnly) {
      await insert(t, spec, rows);
      continue;
    }
    const isNew = plan.columns ? await newKeys(trx, schema, t, spec, rows, plan) : plan.absent.get(t);
    if (isNew) {
      const inserts = rows.filter((r) => isNew.has(String(r[spec.key])));
      const updates = rows.filter((r) => !isNew.has(String(r[spec.key])));
      if (inserts.length > 0) await insert(t, spec, inserts);
      if (updates.length > 0) await writeRows(trx, schema, t, spec, updates, true);
    } else {
      await writeRows(trx, schema, t, spec, rows, true);
    }
  }
}

/**
 * The bulk path's new rows of a table: keys looked for and not found, plus
 * keys the batch wrote without looking for them (an evolve that replaces a
 * row whole) that do not exist either, found by one key probe, so that
 * they too go by COPY instead of an upsert statement.
 */
async function newKeys(
  trx: Knex.Transaction,
  schema: string,
  table: string,
  spec: TableSpec,
  rows: readonly Row[],
  plan: WritePlan,
): Promise<ReadonlySet<string>> {
  const looked = plan.lookedUp.get(table);
  const unseen = rows.map((r) => String(r[spec.key])).filter((k) => !looked?.has(k));
  const absent = new Set(plan.absent.get(table));
  // Keys are text (or uuid): any other key type is left to the upsert.
  const keyType = { 25: 'text', 2950: 'uuid' }[plan.columns?.get(table)?.get(spec.key) ?? 0];
  if (unseen.length === 0 || !keyType) return absent;
  const found = await trx
    .withSchema(schema)
    .from(table)
    .whereRaw(`?? = any(?::${keyType}[])`, [spec.key, sqlArray(unseen)])
    .pluck<string[]>(spec.key);
  const exists = new Set(found.map(String));
  for (const k of unseen) if (!exists.has(k)) absent.add(k);
  return absent;
}

/**
 * Per table, the keys the records name (`of` each event), leaving out those
 * already in `except` (keys loaded whole need no presence check).
 */
function wantedKeys(
  records: readonly DecodedRecord[],
  of: (e: ClinicalEvent) => Needs<{ [k: string]: object }>,
  except?: ReadonlyMap<string, ReadonlySet<string>>,
): Map<string, Set<string>> {
  const wanted = new Map<string, Set<string>>();
  for (const r of records) {
    const n = of(r.event);
    // for…in rather than Object.entries: no array of pairs per event.
    for (const t in n) {
      const keys = n[t];
      if (!keys || keys.length === 0) continue;
      const skip = except?.get(t);
      let s = wanted.get(t);
      for (const k of keys) {
        if (skip?.has(k)) continue;
        if (!s) wanted.set(t, (s = new Set()));
        s.add(k);
      }
    }
  }
  return wanted;
}

function missingOf(keys: ReadonlySet<string>, found: readonly string[]): Set<string> {
  const missing = new Set(keys);
  for (const k of found) missing.delete(k);
  return missing;
}

/**
 * The rows a batch reads, whole (`wanted`) or only whether they exist
 * (`presenceOnly`, added to `wanted` as looked up), each locked; and,
 * unless careful, per table the keys looked for and not found.
 */
async function loadRows(
  trx: Knex.Transaction,
  schema: string,
  tables: Record<string, TableSpec>,
  wanted: Map<string, Set<string>>,
  presenceOnly: ReadonlyMap<string, Set<string>> | null,
  careful: boolean,
): Promise<{
  loaded: Record<string, [string, Row][]>;
  present: Record<string, ReadonlySet<string>>;
  absent: Map<string, Set<string>>;
}> {
  const loaded: Record<string, [string, Row][]> = {};
  const present: Record<string, ReadonlySet<string>> = {};
  // Keys looked for and not found: new rows, unless another instance
  // creates one before this commits (then KeyExists, and a careful retry).
  const absent = new Map<string, Set<string>>();
  for (const [t, keys] of wanted) {
    const spec = tables[t];
    if (!spec) continue;
    const rows = await trx
      .withSchema(schema)
      .from(t)
      .whereRaw('?? = any(?::text[])', [spec.key, sqlArray(keys)])
      .forUpdate()
      .select<Row[]>('*');
    const found = rows.map((row): [string, Row] => [String(row[spec.key]), fromDb(spec, row)]);
    loaded[t] = found;
    const foundKeys = found.map(([k]) => k);
    if (!careful) absent.set(t, missingOf(keys, foundKeys));
  }
  for (const [t, keys] of presenceOnly ?? []) {
    const spec = tables[t];
    if (!spec) continue;
    // Locked as a loaded row is, so that batches touching it serialise alike.
    const found = (
      await trx
        .withSchema(schema)
        .from(t)
        .whereRaw('?? = any(?::text[])', [spec.key, sqlArray(keys)])
        .forUpdate()
        .pluck<unknown[]>(spec.key)
    ).map(String);
    present[t] = new Set(found);
    if (!careful) {
      const missing = missingOf(keys, found);
      const seen = absent.get(t);
      if (seen) for (const k of missing) seen.add(k);
      else absent.set(t, missing);
    }
    const looked = wanted.get(t);
    if (looked) for (const k of keys) looked.add(k);
    else wanted.set(t, keys);
  }
  return { loaded, present, absent };
}

/** Turns a read model into a Projection for the shared runner (runner.ts). */
export function readModelProjection<T extends { [K in keyof T]: object }, S extends ReadModelSkips = NoSkips>(
  model: ReadModel<T, S>,
): Projection {
  const tables = model.tables as unknown as Record<string, TableSpec>;
  // The runner decodes this model's events without its skipped fields
  // (Projection.skip): what the records hold is EventSkipping<S>, which the
  // record type (ClinicalEvent, the decoder's in general) cannot say.
  const decoded = (e: ClinicalEvent) => e as EventSkipping<S>;
  return {
    name: model.name,
    topics: model.topics,
    migrations: [patientLinksMigration, personLinksMigration, ...model.migrations],
    ...(model.skip ? { skip: model.skip } : {}),
    ...(model.duplicates ? { duplicates: model.duplicates.bind(model) } : {}),
    async apply(trx, schema, records, opts) {
      // A caller other than the runner cannot redo a batch after KeyExists.
      const careful = opts?.careful ?? true;
      const merges: { survivor: string; retired: string }[] = [];
      const patientIds = new Set<string>();
      for (const r of records) {
        patientIds.add(r.event.data.patientId);
        if (r.event.type === 'PatientsMerged') {
          merges.push({ survivor: r.event.data.patientId, retired: r.event.data.mergedPatientId });
          patientIds.add(r.event.data.mergedPatientId);
        }
      }
      await lockForMerges(trx, schema, merges.length > 0);
      await applyMerges(trx, schema, tables, merges);
      await applyPersonLinks(trx, schema, records);
      const links = await loadLinks(trx, schema, [...patientIds]);
      const resolve: Resolve = (id) => rootOf(links, id);

      const wanted = wantedKeys(records, (e) => model.needs(decoded(e), resolve));
      const presence = model.presence;
      const presenceOnly = presence
        ? wantedKeys(records, (e) => presence(decoded(e), resolve), wanted)
        : null;
      const { loaded, present, absent } = await loadRows(trx, schema, tables, wanted, presenceOnly, careful);
      const draft = new Draft<T>(loaded as { [K in keyof T]?: Iterable<[string, T[K]]> }, present);
      for (const r of records) model.evolve(draft, decoded(r.event), resolve, { topic: r.topic });

      const columns = opts?.bulk && !careful ? await schemaColumns(trx, schema) : null;
      await writeChanges(trx, schema, tables, draft, { absent, lookedUp: wanted, careful, columns });
    },
  };
}
