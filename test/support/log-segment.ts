import avsc from 'avsc';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClinicalEvent } from '../../libs/events/index.js';
import type { RegistryClient } from '../../libs/events/registry.js';
import { HubPartitioner } from '../../libs/kafka/partitioner.js';
import { Draft, rootOf, timestamptzText, type ReadModel, type Row } from '../../libs/projections/store.js';
import { analyticsModel } from '../../libs/read-models/analytics/model.js';
import { billingModel } from '../../libs/read-models/billing/model.js';
import { portalModel } from '../../libs/read-models/portal/model.js';
import { directoryModel } from '../../services/patient-directory/projection.js';

/**
 * A captured log segment (test/fixtures/log-segment-*): the records an
 * earlier build wrote, as bytes in the Confluent wire format with the writer
 * schemas they name, and the read models that earlier build made of them.
 *
 * This file is used on both sides of the capture: copied into a checkout of
 * the earlier revision it builds that revision's read models
 * (capture-log-segment.ts); in the working tree the replay test builds the
 * current ones with the same rules. So the only thing that differs between
 * the two dumps is the code under test.
 */

export interface WriterSchema {
  /** The schema id the records carry (fixture-local; a test maps it to a registry id). */
  id: number;
  type: string;
  topic: string;
  subject: string;
  schema: object;
}

export interface SegmentRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string;
  /** Magic byte 0, big-endian schema id, Avro body: as on the broker. */
  value: Buffer;
}

export interface LogSegment {
  revision: string;
  schemas: WriterSchema[];
  /** In production order (the order the projections are replayed in). */
  records: SegmentRecord[];
}

interface RecordIndex {
  topic: string;
  partition: number;
  offset: number;
  key: string;
  bytes: number;
}

/** Read models by name, tables by name, rows sorted by key, times as ISO-8601 text. */
export type ReadModelDump = Record<string, Record<string, Row[]>>;

const FILES = {
  schemas: 'schemas.ndjson',
  index: 'records.ndjson',
  values: 'records.bin',
  readModels: 'read-models.ndjson',
};

/** The partition a keyed record lands in (the hub's murmur2 partitioner, as the producer picks it). */
export function partitionOf(topic: string, key: string, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
  return HubPartitioner()({ topic, partitionMetadata, message: { key, value: null } });
}

/** One JSON value per line: small, untouched by prettier, and a recapture diffs by line. */
function writeNdjson(path: string, lines: readonly unknown[]): void {
  writeFileSync(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
}

function readNdjson<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}

interface DumpLine {
  model: string;
  table: string;
  row: Row;
}

export function writeSegment(dir: string, segment: LogSegment, readModels: ReadModelDump): void {
  mkdirSync(dir, { recursive: true });
  writeNdjson(join(dir, FILES.schemas), [{ revision: segment.revision }, ...segment.schemas]);
  writeNdjson(
    join(dir, FILES.index),
    segment.records.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      key: r.key,
      bytes: r.value.length,
    })),
  );
  writeFileSync(join(dir, FILES.values), Buffer.concat(segment.records.map((r) => r.value)));
  const dump: DumpLine[] = Object.entries(readModels).flatMap(([model, tables]) =>
    Object.entries(tables).flatMap(([table, rows]) => rows.map((row) => ({ model, table, row }))),
  );
  writeNdjson(join(dir, FILES.readModels), dump);
}

export function readSegment(dir: string): { segment: LogSegment; readModels: ReadModelDump } {
  const [head, ...schemas] = readNdjson<WriterSchema & { revision?: string }>(join(dir, FILES.schemas));
  const values = readFileSync(join(dir, FILES.values));
  let at = 0;
  const records = readNdjson<RecordIndex>(join(dir, FILES.index)).map(({ bytes, ...r }) => {
    const value = values.subarray(at, at + bytes);
    at += bytes;
    return { ...r, value };
  });
  const readModels: ReadModelDump = {};
  for (const { model, table, row } of readNdjson<DumpLine>(join(dir, FILES.readModels))) {
    ((readModels[model] ??= {})[table] ??= []).push(row);
  }
  return { segment: { revision: head?.revision ?? '', schemas, records }, readModels };
}

/**
 * The part of a registry the codec's decode uses (writer schema by id),
 * serving the given schemas: decoding as the projectors do, without a
 * registry server. Every other call fails.
 */
export function registryServing(schemas: readonly { id: number; schema: object }[]): RegistryClient {
  const byId = new Map(schemas.map((s) => [s.id, s.schema]));
  const unused = (): never => {
    throw new Error('not used to decode');
  };
  return {
    url: 'memory:',
    typeOf: (id) => {
      const s = byId.get(id);
      if (!s) return Promise.reject(new Error(`schema id ${id} is not served`));
      return Promise.resolve(avsc.Type.forSchema(s as avsc.Schema));
    },
    register: unused,
    idOf: unused,
    versions: unused,
    schemaAt: unused,
    setCompatibility: unused,
    getCompatibility: unused,
    isCompatible: unused,
    subjects: unused,
    deleteSubject: unused,
  };
}

/** A decoded record: the event and the topic it was read from. */
export interface ReplayedEvent {
  topic: string;
  event: ClinicalEvent;
}

type AnyModel = ReadModel<Record<string, Row>>;

/** The read models a downstream consumer of the clinical topics builds, by the name of their stable schema. */
function models(): Record<string, AnyModel> {
  return {
    portal: portalModel() as unknown as AnyModel,
    billing: billingModel() as unknown as AnyModel,
    analytics: analyticsModel() as unknown as AnyModel,
    'patient-directory': directoryModel() as unknown as AnyModel,
  };
}

/** The key column of every table of every read model (the dumps are sorted by it). */
export function tableKeys(): Record<string, Record<string, string>> {
  return Object.fromEntries(
    Object.entries(models()).map(([name, m]) => [
      name,
      Object.fromEntries(Object.entries(m.tables).map(([t, spec]) => [t, spec.key])),
    ]),
  );
}

/** Times as the database gives them back (ISO text), bytes by length: JSON that two builds can compare. */
function normalised(row: Row, timeColumns: readonly string[]): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) {
    if (typeof v === 'number' && timeColumns.includes(k)) out[k] = timestamptzText(v);
    else if (Buffer.isBuffer(v)) out[k] = { bytes: v.length };
    else out[k] = v;
  }
  return JSON.parse(JSON.stringify(out)) as Row;
}

/**
 * Every read model's rows after the events, replayed as the projector's
 * store does it: each event once per model (a resend's event id is applied
 * once), a merge's link learned before the merge is evolved, later events
 * resolved to the survivor. The store's SQL half (moving a retired patient's
 * rows, rendering Encounter.period offsets) is not modelled: it does not
 * depend on the event schemas and has its own integration tests.
 */
export function buildReadModels(events: readonly ReplayedEvent[]): ReadModelDump {
  const dump: ReadModelDump = {};
  for (const [name, model] of Object.entries(models())) {
    const draft = new Draft<Record<string, Row>>();
    const links = new Map<string, string>();
    const applied = new Set<string>();
    for (const { topic, event } of events) {
      if (!model.topics.includes(topic) || applied.has(event.data.meta.eventId)) continue;
      applied.add(event.data.meta.eventId);
      if (event.type === 'PatientsMerged') links.set(event.data.mergedPatientId, event.data.patientId);
      model.evolve(draft, event, (id) => rootOf(links, id), { topic });
    }
    const tables: Record<string, Row[]> = {};
    for (const [table, spec] of Object.entries(model.tables)) {
      tables[table] = [...draft.all(table)]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([, row]) => normalised(row, spec.timeColumns ?? []));
    }
    dump[name] = tables;
  }
  return dump;
}
