import type avsc from 'avsc';
import { HubError, isHubError } from '../errors/index.js';
import {
  EVENT_CONTRACTS,
  assertValidEvent,
  avroTypeOf,
  eventTypeOfFullName,
  type ClinicalEvent,
  type EventType,
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
}

const MAGIC = 0;

/** How to read a writer schema's bytes: no resolver when the writer's schema is the reader's. */
interface Reader {
  type: EventType;
  resolver: avsc.Resolver | undefined;
}

function schemaIdOf(value: Buffer): number {
  if (value.length < 5 || value.readUInt8(0) !== MAGIC) {
    throw new HubError('HUB_EVENT_UNDECODABLE', 'record is not in the Confluent wire format (magic byte 0)');
  }
  return value.readInt32BE(1);
}

function read(id: number, { type, resolver }: Reader, value: Buffer): ClinicalEvent {
  try {
    const data = avroTypeOf(type).fromBuffer(value.subarray(5), resolver) as unknown;
    return { type, data } as ClinicalEvent;
  } catch (cause) {
    throw new HubError('HUB_EVENT_UNDECODABLE', `record with schema id ${id} has a corrupt Avro body`, {
      cause,
    });
  }
}

export function createEventCodec(registry: RegistryClient): EventCodec {
  const ids = new Map<string, Promise<number>>();
  const resolvers = new Map<number, Promise<Reader>>();
  const ready = new Map<number, Reader>();

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

  function resolverFor(id: number): Promise<Reader> {
    let p = resolvers.get(id);
    if (!p) {
      p = registry
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
          const reader = avroTypeOf(type);
          // Same canonical schema, same bytes: read directly, not through a
          // resolver's per-field indirection.
          const r: Reader = {
            type,
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
    async encode(event, topic = EVENT_CONTRACTS[event.type].topic) {
      assertValidEvent(event.type, event.data);
      const id = await idFor(event.type, topic);
      const body = avroTypeOf(event.type).toBuffer(event.data);
      const out = Buffer.allocUnsafe(5 + body.length);
      out.writeUInt8(MAGIC, 0);
      out.writeInt32BE(id, 1);
      body.copy(out, 5);
      return out;
    },
    async decode(value) {
      const id = schemaIdOf(value);
      return read(id, ready.get(id) ?? (await resolverFor(id)), value);
    },
    decodeIfResolved(value) {
      const id = schemaIdOf(value);
      const r = ready.get(id);
      return r && read(id, r, value);
    },
    async warmUp(
      types = Object.keys(EVENT_CONTRACTS) as EventType[],
      topicFor = (t: EventType) => EVENT_CONTRACTS[t].topic,
    ) {
      await Promise.all(types.map(async (t) => resolverFor(await idFor(t, topicFor(t)))));
    },
  };
}
