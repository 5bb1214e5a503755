import avsc from 'avsc';
import { HubError, isHubError } from '../errors/index.js';
import {
  EVENT_CONTRACTS,
  assertValidEvent,
  avroTypeOf,
  eventTypeOfFullName,
  invalidPaths,
  isValidEvent,
  type ClinicalEvent,
  type EventType,
  type EventTypeMap,
} from './index.js';
import type { RegistryClient } from './registry.js';
import { subjectFor } from './schema-source.js';

/**
 * Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro
 * binary body. Encoding uses the id of exactly the schema this build was
 * generated from; decoding resolves the writer's schema (by id) against that
 * same reader schema, so older and newer compatible events both decode into
 * the current TypeScript shape.
 */
export interface EventCodec {
  /** `topic` defaults to the catalog's; the registry subject follows it (TopicRecordNameStrategy). */
  encode(event: ClinicalEvent, topic?: string): Promise<Buffer>;
  decode(value: Buffer): Promise<ClinicalEvent>;
  /**
   * decode without a promise, for a record whose writer schema was resolved
   * before (every record after the first few); undefined when it was not and
   * decode must be awaited. Throws as decode rejects.
   */
  decodeIfResolved(value: Buffer): ClinicalEvent | undefined;
  /** Resolves schema ids up front so that the first message pays no registry round trip. */
  warmUp(types?: readonly EventType[], topicFor?: (type: EventType) => string): Promise<void>;
  /** A codec decoding without `skip`'s fields (see codecSkipping); absent on codecs that cannot. */
  skipping?(skip: SkipFields): EventCodec;
}

const MAGIC = 0;
/** Magic byte and schema id in front of every Avro body. */
const HEADER_BYTES = 5;

/**
 * Event payloads that passed `checkForEncode` unchanged since: encode does
 * not check them a second time. Keyed by the object itself (weakly, so a
 * published event is not kept alive); whoever checks an event must not
 * change it afterwards (the HL7 mapper hands its events straight to the
 * producer). avsc still checks every value's type as it writes it.
 */
const checked = new WeakSet<object>();

/**
 * The paths at which `data` does not match its contract or holds text no
 * reader can store (invalidPaths), and when there are none, marks this
 * exact object so that encode skips the same check. For a producer of
 * events that checks them itself before publishing (the HL7 mapper refuses
 * such a message instead of failing its write): one check per event, not two.
 */
export function checkForEncode(type: EventType, data: object): string[] {
  // The common case without avsc's error hook, which tracks a path through every field.
  if (isValidEvent(type, data)) {
    checked.add(data);
    return [];
  }
  return invalidPaths(type, data);
}

/** Bodies up to this size are written into a buffer kept for the next event; larger ones into their own. */
const MAX_SCRATCH_BYTES = 1024 * 1024;

/**
 * Confluent wire bytes of one event with one exact-size allocation: the
 * header and body are written into a reused scratch buffer and copied out
 * once (Type.toBuffer allocates the body, which was then copied again
 * behind the header). A body that does not fit is written a second time
 * into a buffer of its exact size, which is returned as is.
 */
class WireWriter {
  private scratch: Buffer;

  constructor(initialBytes: number) {
    this.scratch = Buffer.allocUnsafe(Math.max(initialBytes, HEADER_BYTES));
  }

  write(type: avsc.Type, id: number, data: unknown): Buffer {
    const end = type.encode(data, this.scratch, HEADER_BYTES);
    if (end < 0) {
      // avsc answers with how many bytes were missing.
      const size = this.scratch.length - end;
      const exact = Buffer.allocUnsafe(size);
      type.encode(data, exact, HEADER_BYTES);
      if (size <= MAX_SCRATCH_BYTES) this.scratch = Buffer.allocUnsafe(Math.min(2 * size, MAX_SCRATCH_BYTES));
      return header(exact, id);
    }
    const out = Buffer.allocUnsafe(end);
    this.scratch.copy(out, HEADER_BYTES, HEADER_BYTES, end);
    return header(out, id);
  }
}

function header(out: Buffer, id: number): Buffer {
  out.writeUInt8(MAGIC, 0);
  out.writeInt32BE(id, 1);
  return out;
}

/** How to read a writer schema's bytes: no resolver when the writer's schema is the reader's. */
interface Reader {
  type: EventType;
  /** The reader schema's avsc Type (avroTypeOf(type)), kept here: no map lookup per record. */
  avro: avsc.Type;
  resolver: avsc.Resolver | undefined;
}

function schemaIdOf(value: Buffer): number {
  if (value.length < HEADER_BYTES || value[0] !== MAGIC) {
    throw new HubError('HUB_EVENT_UNDECODABLE', 'record is not in the Confluent wire format (magic byte 0)');
  }
  return value.readInt32BE(1);
}

function corrupt(id: number, cause?: unknown): HubError {
  return new HubError(
    'HUB_EVENT_UNDECODABLE',
    `record with schema id ${id} has a corrupt Avro body`,
    cause === undefined ? undefined : { cause },
  );
}

function read(id: number, { type, avro, resolver }: Reader, value: Buffer): ClinicalEvent {
  let decoded: { value: unknown; offset: number };
  try {
    // From behind the header in place: no view of the body allocated per
    // record (fromBuffer needs one); what fromBuffer checks, checked below.
    decoded = avro.decode(value, HEADER_BYTES, resolver);
  } catch (cause) {
    throw corrupt(id, cause);
  }
  // -1: truncated; short of the end: trailing bytes. Either way not the event that was written.
  if (decoded.offset !== value.length) throw corrupt(id);
  return { type, data: decoded.value } as ClinicalEvent;
}

/**
 * Top-level fields of each event type's data that a reader does not read:
 * a codec built with them (codecSkipping) leaves them undecoded. Avro
 * schema resolution lets a reader schema omit a writer's field, which avsc
 * then steps over in the bytes (no object, no UTF-8 decoding): a read model
 * that never looks at a result's observations does not pay for them.
 */
export type SkipFields = { readonly [K in EventType]?: readonly (keyof EventTypeMap[K] & string)[] };

/** The fields `S` skips of event type K (never when S names none for K). */
type SkippedOf<S extends SkipFields, K extends EventType> = K extends keyof S
  ? S[K] extends readonly (infer F)[]
    ? F & keyof EventTypeMap[K]
    : never
  : never;

/**
 * The events as a codec skipping `S` decodes them: each type's data without
 * its skipped fields, so that reading one does not compile. Skipping
 * nothing is ClinicalEvent itself.
 */
export type EventSkipping<S extends SkipFields> = [keyof S] extends [never]
  ? ClinicalEvent
  : { [K in EventType]: { type: K; data: Omit<EventTypeMap[K], SkippedOf<S, K>> } }[EventType];

export interface CodecOptions {
  /** Initial size of the reused encode buffer (grows to the largest event up to 1 MiB); tests make it small. */
  scratchBytes?: number;
}

/**
 * Reader schemas without skipped fields, by type and field list: every
 * runner of a projection (a bench or a rebuild starts several) compiles
 * each once.
 */
const reducedReaders = new Map<string, avsc.Type>();

/**
 * The contract's schema without `skip`'s fields: the same record name (so
 * that every writer of the type resolves to it) and the kept fields with
 * their docs, aliases and defaults as they are. Each kept field's type is
 * the compiled one of the full reader, not its JSON: a named type defined
 * inside a skipped field (and referenced by name in a later one) still
 * resolves.
 */
function reducedReaderOf(type: EventType, skip: readonly string[]): avsc.Type {
  const full = avroTypeOf(type);
  if (skip.length === 0) return full;
  const key = `${type}\u0000${[...new Set(skip)].sort().join('\u0000')}`;
  let reader = reducedReaders.get(key);
  if (!reader) {
    const schema = EVENT_CONTRACTS[type].schema as unknown as { fields: readonly { name: string }[] };
    const record = full as avsc.types.RecordType;
    const fields = schema.fields
      .filter((f) => !skip.includes(f.name))
      .map((f) => ({ ...f, type: record.field(f.name).type }));
    reader = avsc.Type.forSchema({ ...schema, fields } as unknown as avsc.Schema);
    reducedReaders.set(key, reader);
  }
  return reader;
}

/** Encoding and schema ids, shared by a codec and those derived from it (codecSkipping). */
interface CodecCore {
  registry: RegistryClient;
  encode: EventCodec['encode'];
  idFor(type: EventType, topic: string): Promise<number>;
}

/**
 * A codec that decodes events without `skip`'s fields (EventSkipping) and
 * encodes as `codec` does, sharing its schema ids. Each writer schema
 * resolves to the contract's schema minus those fields, which Avro schema
 * resolution allows whatever the writer's version: a writer that the full
 * reader resolves, this one resolves too. Its decode still says
 * ClinicalEvent (the consumer's record type is one for every projection):
 * only code typed by EventSkipping<skip> (a read model declaring
 * ReadModel.skip) may read its events' data beyond what no list can skip.
 * A codec that cannot skip (no `skipping`, e.g. a test's fake) is returned
 * as it is: whole events are what the reduced ones are, plus fields nobody reads.
 */
export function codecSkipping(codec: EventCodec, skip: SkipFields): EventCodec {
  return codec.skipping?.(skip) ?? codec;
}

function decodingCodec(core: CodecCore, readerOf: (type: EventType) => avsc.Type): EventCodec {
  const resolvers = new Map<number, Promise<Reader>>();
  const ready = new Map<number, Reader>();
  let lastId = -1;
  let lastReader: Reader | undefined;

  function resolverFor(id: number): Promise<Reader> {
    let p = resolvers.get(id);
    if (!p) {
      p = core.registry
        .typeOf(id)
        .then((writer) => {
          const name = writer.name ?? '';
          const type = eventTypeOfFullName(name);
          if (!type) {
            throw new HubError(
              'HUB_EVENT_UNKNOWN_TYPE',
              `schema id ${id} is ${name}, not a known event type`,
            );
          }
          const reader = readerOf(type);
          // Same canonical schema, same bytes: read directly, not through a
          // resolver's per-field indirection.
          const r: Reader = {
            type,
            avro: reader,
            resolver: writer.equals(reader) ? undefined : reader.createResolver(writer),
          };
          ready.set(id, r);
          return r;
        })
        .catch((err: unknown) => {
          // A registry outage must not be cached as a permanent failure.
          if (!isHubError(err) || err.retriable) resolvers.delete(id);
          throw err;
        });
      resolvers.set(id, p);
    }
    return p;
  }

  return {
    encode: core.encode,
    // Derived again (a runner given a derived codec): from the full reader, never reduced twice.
    skipping: (skip) => decodingCodec(core, (type) => reducedReaderOf(type, skip[type] ?? [])),
    async decode(value) {
      const id = schemaIdOf(value);
      return read(id, ready.get(id) ?? (await resolverFor(id)), value);
    },
    decodeIfResolved(value) {
      const id = schemaIdOf(value);
      // A catch-up reads runs of one schema id: the last one answers without a map lookup.
      if (id !== lastId || lastReader === undefined) {
        lastReader = ready.get(id);
        lastId = id;
      }
      return lastReader && read(id, lastReader, value);
    },
    async warmUp(
      types = Object.keys(EVENT_CONTRACTS) as EventType[],
      topicFor = (t: EventType) => EVENT_CONTRACTS[t].topic,
    ) {
      await Promise.all(types.map(async (t) => resolverFor(await core.idFor(t, topicFor(t)))));
    },
  };
}

export function createEventCodec(registry: RegistryClient, opts: CodecOptions = {}): EventCodec {
  const writer = new WireWriter(opts.scratchBytes ?? 64 * 1024);
  const ids = new Map<string, Promise<number>>();

  function idFor(type: EventType, topic: string): Promise<number> {
    const c = EVENT_CONTRACTS[type];
    const subject = subjectFor(topic, c.fullName);
    let p = ids.get(subject);
    if (!p) {
      p = registry.idOf(subject, c.schema).catch((err: unknown) => {
        ids.delete(subject);
        if (isHubError(err) && err.code === 'HUB_SCHEMA_NOT_REGISTERED') {
          throw new HubError(
            'HUB_SCHEMA_NOT_REGISTERED',
            `${subject} is not registered with this build's schema; run \`hub schemas register\``,
            { cause: err },
          );
        }
        throw err;
      });
      ids.set(subject, p);
    }
    return p;
  }

  const core: CodecCore = {
    registry,
    idFor,
    async encode(event, topic = EVENT_CONTRACTS[event.type].topic) {
      if (!checked.has(event.data)) assertValidEvent(event.type, event.data);
      const id = await idFor(event.type, topic);
      return writer.write(avroTypeOf(event.type), id, event.data);
    },
  };
  return decodingCodec(core, avroTypeOf);
}
