import avsc from 'avsc';
import fc from 'fast-check';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readSegment, registryServing } from '../../test/support/log-segment.js';
import { createEventCodec } from './codec.js';
import { EVENT_CONTRACTS, EVENT_TYPES, avroTypeOf, isEventType, type EventType } from './index.js';
import { composeAtRevision, schemaRevisions } from './schema-source.js';

/**
 * Schema evolution, value by value: every event type against every version of
 * its schema that git history holds (each commit that changed schemas/).
 * Old writer → current reader: each field the old schema has arrives
 * unchanged, each field added since takes its default. Current writer → old
 * reader (a consumer not yet upgraded): each field the old schema has arrives
 * unchanged, the rest is skipped. Values are random (fast-check) over the
 * whole schema, with realistic strings, codes and instants among them.
 * The registry's verdict on the same versions is evolution.int.test.ts.
 */

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../..');

interface Historical {
  type: EventType;
  /** Revisions whose schemas/ held this exact schema, newest first. */
  revisions: string[];
  schema: object;
}

/** The distinct schemas of each event type in git history (several commits may hold the same one). */
function historicalSchemas(): Historical[] {
  const out = new Map<string, Historical>();
  for (const rev of schemaRevisions(REPO)) {
    for (const e of composeAtRevision(REPO, rev)) {
      if (!isEventType(e.type)) throw new Error(`${e.type} (at ${rev}) is no longer an event type`);
      const key = `${e.type} ${JSON.stringify(e.schema)}`;
      const seen = out.get(key);
      if (seen) seen.revisions.push(rev.slice(0, 7));
      else out.set(key, { type: e.type, revisions: [rev.slice(0, 7)], schema: e.schema });
    }
  }
  return [...out.values()];
}

// ---------------------------------------------------------------------------
// Values of a schema

const REALISTIC_TEXT = [
  'final',
  'preliminary',
  'MRN10001',
  'urn:hl7:authority:HOSP',
  'http://loinc.org',
  'LN',
  'HL7-0078',
  '718-7',
  'Hemoglobin',
  'g/dL',
  'mmol/L',
  '12.0-16.0',
  'H',
  'Müller',
  '王秀英',
  '',
];

const text = fc.oneof(fc.constantFrom(...REALISTIC_TEXT), fc.string({ unit: 'grapheme', maxLength: 12 }));

/** Instants from 1900 to 2100, as clinical data holds (birth dates, historic results, appointments). */
const instant = fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(2100, 0, 1) });

type Json = Record<string, unknown>;

/**
 * An arbitrary for any value of a (self-contained, composed) Avro schema.
 * Named types are defined at their first use, as Avro requires, so walking
 * the schema in order finds every definition before its references.
 */
function valuesOf(schema: unknown): fc.Arbitrary<unknown> {
  const named = new Map<string, fc.Arbitrary<unknown>>();
  const walk = (node: unknown, ns: string | undefined): fc.Arbitrary<unknown> => {
    if (Array.isArray(node)) {
      // ["null", X]: null as often as a value, as optional fields are in real events.
      return fc.oneof(...node.map((branch) => walk(branch, ns)));
    }
    if (typeof node === 'string') return primitive(node) ?? reference(node, ns);
    const def = node as Json;
    const t = def['type'];
    const logical = def['logicalType'];
    if (logical === 'timestamp-millis') return instant;
    if (logical === 'uuid') return fc.uuid();
    if (t === 'record') {
      const name = String(def['name']);
      const space = typeof def['namespace'] === 'string' ? def['namespace'] : ns;
      const full = name.includes('.') || !space ? name : `${space}.${name}`;
      const fields = def['fields'] as Json[];
      const shape: Record<string, fc.Arbitrary<unknown>> = {};
      // Registered before the fields are walked: a recursive type refers to itself.
      const arb = fc.constant(null).chain(() => fc.record(shape));
      named.set(full, arb);
      for (const f of fields) shape[String(f['name'])] = walk(f['type'], space);
      return arb;
    }
    if (t === 'enum') {
      const arb = fc.constantFrom(...(def['symbols'] as string[]));
      named.set(String(def['name']), arb);
      return arb;
    }
    if (t === 'array') return fc.array(walk(def['items'], ns), { maxLength: 3 });
    if (t === 'map') return fc.dictionary(text, walk(def['values'], ns), { maxKeys: 3 });
    return walk(t, ns);
  };
  const reference = (name: string, ns: string | undefined): fc.Arbitrary<unknown> => {
    const arb = named.get(name) ?? (ns ? named.get(`${ns}.${name}`) : undefined);
    if (!arb) throw new Error(`${name} is used before it is defined`);
    return arb;
  };
  return walk(schema, undefined);
}

function primitive(name: string): fc.Arbitrary<unknown> | undefined {
  switch (name) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'int':
      return fc.integer();
    case 'long':
      // avsc zig-zags a long through a double: beyond ±2^52 it is not exact
      // (a library limit, not an evolution one; no clinical count comes near it).
      return fc.oneof(instant, fc.integer({ min: -(2 ** 52) + 1, max: 2 ** 52 - 1 }));
    case 'float':
      return fc.float({ noNaN: true });
    case 'double':
      return fc.oneof(fc.constantFrom(0.1, 7.9, 139, 1e-9), fc.double({ noNaN: true }));
    case 'bytes':
      return fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b));
    case 'string':
      return text;
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------
// What a reader must see of a writer's value

/** The branch of a ["null", X] union a value was written with. */
function branchOf(union: avsc.types.UnwrappedUnionType, value: unknown): avsc.Type {
  const b = union.types.find((t) => t.isValid(value));
  if (!b) throw new Error(`no branch of ${union.branchName ?? 'union'} holds the value`);
  return b;
}

/** The reader's type that takes a writer's named or primitive type (same name, or same kind). */
function matching(reader: avsc.Type, writer: avsc.Type): avsc.Type {
  if (!(reader instanceof avsc.types.UnwrappedUnionType)) return reader;
  const same = reader.types.find((t) =>
    writer.name ? t.name === writer.name : t.typeName === writer.typeName,
  );
  if (!same) throw new Error(`reader union has no branch for ${writer.name ?? writer.typeName}`);
  return same;
}

/**
 * Checks, path by path, what a reader decoded from a writer's value: each
 * field both schemas have is the written value (recursively), each field
 * only the reader has is its default, and the reader's record has exactly its
 * own fields (a field only the writer has is skipped). Returns the problems.
 */
function resolutionProblems(
  writer: avsc.Type,
  reader: avsc.Type,
  written: unknown,
  read: unknown,
  path = '',
): string[] {
  if (writer instanceof avsc.types.UnwrappedUnionType) {
    return resolutionProblems(branchOf(writer, written), reader, written, read, path);
  }
  const r = matching(reader, writer);
  if (writer instanceof avsc.types.RecordType && r instanceof avsc.types.RecordType) {
    const w = written as Json;
    const got = read as Json;
    const problems: string[] = [];
    const names = r.fields.map((f) => f.name);
    if (JSON.stringify(Object.keys(got)) !== JSON.stringify(names)) {
      problems.push(`${path}: fields ${Object.keys(got).join(',')} instead of ${names.join(',')}`);
    }
    for (const f of r.fields) {
      const wf = writer.field(f.name);
      const at = `${path}.${f.name}`;
      if (wf) problems.push(...resolutionProblems(wf.type, f.type, w[f.name], got[f.name], at));
      else if (JSON.stringify(got[f.name]) !== JSON.stringify(f.defaultValue())) {
        problems.push(`${at}: added field is ${JSON.stringify(got[f.name])}, not its default`);
      }
    }
    return problems;
  }
  if (writer instanceof avsc.types.ArrayType && r instanceof avsc.types.ArrayType) {
    const w = written as unknown[];
    const got = read as unknown[];
    if (w.length !== got.length) return [`${path}: ${w.length} items became ${got.length}`];
    return w.flatMap((x, i) => resolutionProblems(writer.itemsType, r.itemsType, x, got[i], `${path}[${i}]`));
  }
  if (writer instanceof avsc.types.MapType && r instanceof avsc.types.MapType) {
    const w = written as Json;
    const got = read as Json;
    // avsc declares valuesType as any.
    const [wv, rv] = [writer.valuesType as avsc.Type, r.valuesType as avsc.Type];
    return Object.keys(w).flatMap((k) => resolutionProblems(wv, rv, w[k], got[k], `${path}{${k}}`));
  }
  return Object.is(written, read) ||
    (Buffer.isBuffer(written) && Buffer.isBuffer(read) && written.equals(read))
    ? []
    : [`${path}: ${JSON.stringify(written)} became ${JSON.stringify(read)}`];
}

// ---------------------------------------------------------------------------

const history = historicalSchemas();
const label = (h: Historical) => `${h.type} as of ${h.revisions.join(', ')}`;
const RUNS = 40;

describe('schema evolution against every schema version in git history', () => {
  it('given the git history of schemas/, then it holds more than one version of the contract and every event type of each', () => {
    const revisions = schemaRevisions(REPO);
    expect(revisions.length).toBeGreaterThan(1);
    // An event type never disappears: the catalog keeps every type any revision had.
    for (const h of history) expect(EVENT_TYPES).toContain(h.type);
    expect(
      history.filter((h) => JSON.stringify(h.schema) !== JSON.stringify(EVENT_CONTRACTS[h.type].schema)),
    ).not.toHaveLength(0);
  });

  describe.each(history.map((h) => [label(h), h] as const))('%s', (_name, h) => {
    const old = avsc.Type.forSchema(h.schema as avsc.Schema);
    const current = avroTypeOf(h.type);

    it('when an old writer wrote it, then the current reader (through the codec) keeps every old field and defaults the new ones', async () => {
      // Given the codec the services decode with, the old schema registered under id 1
      const codec = createEventCodec(registryServing([{ id: 1, schema: h.schema }]));
      await fc.assert(
        fc.asyncProperty(valuesOf(h.schema), async (value) => {
          const wire = Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), old.toBuffer(value)]);
          // When it is decoded
          const decoded = await codec.decode(wire);
          // Then it is that event type, old fields unchanged, new fields at their defaults, valid for re-encoding
          expect(decoded.type).toBe(h.type);
          expect(resolutionProblems(old, current, value, decoded.data)).toEqual([]);
          expect(current.isValid(decoded.data)).toBe(true);
        }),
        { numRuns: RUNS },
      );
    });

    it('when the current writer wrote it, then the old reader (a consumer not yet upgraded) reads every field it knows unchanged', () => {
      const resolver = old.createResolver(current);
      fc.assert(
        fc.property(valuesOf(EVENT_CONTRACTS[h.type].schema), (value) => {
          const decoded: unknown = old.fromBuffer(current.toBuffer(value), resolver);
          expect(resolutionProblems(current, old, value, decoded)).toEqual([]);
        }),
        { numRuns: RUNS },
      );
    });
  });
});

describe('the resolution check itself', () => {
  const v1 = avsc.Type.forSchema({
    type: 'record',
    name: 'T',
    fields: [{ name: 'a', type: 'string' }],
  });
  const v2 = avsc.Type.forSchema({
    type: 'record',
    name: 'T',
    fields: [
      { name: 'a', type: 'string' },
      { name: 'b', type: ['null', 'string'], default: null },
    ],
  });

  it('given a faithful resolution, then it reports nothing', () => {
    const read: unknown = v2.fromBuffer(v1.toBuffer({ a: 'x' }), v2.createResolver(v1));
    expect(resolutionProblems(v1, v2, { a: 'x' }, read)).toEqual([]);
  });

  it('given a changed value, an added field off its default or a missing field, then it names each path', () => {
    expect(resolutionProblems(v1, v2, { a: 'x' }, { a: 'y', b: null })).toEqual(['.a: "x" became "y"']);
    expect(resolutionProblems(v1, v2, { a: 'x' }, { a: 'x', b: 'z' })).toEqual([
      '.b: added field is "z", not its default',
    ]);
    expect(resolutionProblems(v2, v1, { a: 'x', b: 'z' }, {})).toEqual([
      ': fields  instead of a',
      '.a: "x" became undefined',
    ]);
  });
});

describe('the captured log segment of 716b293 (events the old mappers wrote)', () => {
  const { segment } = readSegment(join(REPO, 'test/fixtures/log-segment-716b293'));

  it('when every record is decoded by this build, then each carries exactly what the old schema decodes, plus defaults', async () => {
    // Given the records as the old build wrote them, and its schemas
    const codec = createEventCodec(registryServing(segment.schemas));
    const writers = new Map(segment.schemas.map((s) => [s.id, avsc.Type.forSchema(s.schema as avsc.Schema)]));
    for (const r of segment.records) {
      const writer = writers.get(r.value.readInt32BE(1));
      if (!writer) throw new Error('record names a schema the segment does not hold');
      // When decoded by the current codec
      const decoded = await codec.decode(r.value);
      // Then every old field is the value the old schema alone reads
      const asWritten: unknown = writer.fromBuffer(r.value.subarray(5));
      expect(resolutionProblems(writer, avroTypeOf(decoded.type), asWritten, decoded.data)).toEqual([]);
    }
  });

  it('given an old ResultReported, when decoded, then its codes, values and units read as before and the new facts are empty', async () => {
    const codec = createEventCodec(registryServing(segment.schemas));
    const reports = [];
    for (const r of segment.records) {
      const e = await codec.decode(r.value);
      if (e.type === 'ResultReported' && e.data.observations.length > 0) reports.push(e.data);
    }
    const o = reports[0]?.observations[0];
    expect(o?.code.alternates).toEqual([]);
    expect(o?.code.text).toBeNull();
    expect(o?.unitCode).toBeNull();
    expect(o?.notes).toEqual([]);
    expect(o?.components).toEqual([]);
    expect(o?.observationId).toBeNull();
    expect(reports[0]?.notes).toEqual([]);
    expect(reports[0]?.specimens).toEqual([]);
    // The primary coding is what the old event said, so an old reader and a new one agree on it.
    expect(typeof o?.code.system).toBe('string');
    expect(typeof o?.code.code).toBe('string');
  });
});
