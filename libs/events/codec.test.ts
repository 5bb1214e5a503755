import avsc from 'avsc';
import fc from 'fast-check';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readSegment, registryServing } from '../../test/support/log-segment.js';
import { isHubError } from '../errors/index.js';
import {
  checkForEncode,
  codecSkipping,
  createEventCodec,
  type EventCodec,
  type SkipFields,
} from './codec.js';
import { EVENT_CONTRACTS, EVENT_TYPES, avroTypeOf, type ClinicalEvent, type EventType } from './index.js';
import type { RegistryClient } from './registry.js';

/** Schema ids by subject, the only registry call encode makes. */
function idsOnly(): RegistryClient {
  const ids = new Map<string, number>();
  const registry: Pick<RegistryClient, 'idOf'> = {
    idOf: (subject) => Promise.resolve(ids.get(subject) ?? ids.set(subject, ids.size + 1).size),
  };
  return registry as RegistryClient;
}

/** What encode wrote before the reused buffer: magic 0, the id, Type.toBuffer's body. */
function wireBefore(id: number, type: EventType, data: unknown): Buffer {
  const head = Buffer.alloc(5);
  head.writeInt32BE(id, 1);
  return Buffer.concat([head, avroTypeOf(type).toBuffer(data)]);
}

function idOfBytes(wire: Buffer): number {
  return wire.readInt32BE(1);
}

/** avsc's own random values of every contract: every field, union branch and list length comes up. */
const samples: ClinicalEvent[] = EVENT_TYPES.flatMap((type) =>
  Array.from({ length: 12 }, () => ({ type, data: avroTypeOf(type).random() as object }) as ClinicalEvent),
);

describe('event codec: encoding into a reused buffer', () => {
  it('property: given any sequence of events and any starting buffer size, when encoded, then the bytes equal the header + Type.toBuffer ones', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: samples.length - 1 }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 2048 }),
        async (picks, scratchBytes) => {
          // Given a codec whose buffer starts small enough to have to grow
          const codec = createEventCodec(idsOnly(), { scratchBytes });
          for (const i of picks) {
            const e = samples[i] ?? samples[0]!;
            // When the event is encoded
            const wire = await codec.encode(e);
            // Then it is byte for byte what encode gave before, and decodes back
            expect(wire.equals(wireBefore(idOfBytes(wire), e.type, e.data))).toBe(true);
            expect(avroTypeOf(e.type).fromBuffer(wire.subarray(5))).toEqual(
              avroTypeOf(e.type).fromBuffer(avroTypeOf(e.type).toBuffer(e.data)),
            );
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('given two events encoded one after the other, when the first is read afterwards, then the second did not overwrite it', async () => {
    const codec = createEventCodec(idsOnly());
    const [a, b] = [samples[0]!, samples[1]!];
    const first = await codec.encode(a);
    const copy = Buffer.from(first);
    await codec.encode(b);
    expect(first.equals(copy)).toBe(true);
  });

  it('given an event larger than the buffer may grow (1 MiB), when encoded, then the bytes are still exact', async () => {
    const codec = createEventCodec(idsOnly(), { scratchBytes: 16 });
    const base = samples.find((e) => e.type === 'AttachmentStored') ?? samples[0]!;
    const big = { ...base, data: { ...base.data, patientId: 'x'.repeat(3 * 1024 * 1024) } } as ClinicalEvent;
    for (const e of [big, base, big]) {
      const wire = await codec.encode(e);
      expect(wire.equals(wireBefore(idOfBytes(wire), e.type, e.data))).toBe(true);
    }
  });
});

describe('event codec: one check per event', () => {
  const valid = samples.find((e) => e.type === 'PatientRegistered')!;
  const withNul = (): ClinicalEvent => ({ ...valid, data: { ...valid.data, patientId: 'a\u0000b' } });

  it('given an event that was not checked, when it holds NUL, then encode refuses it (HUB_EVENT_INVALID with the path)', async () => {
    const codec = createEventCodec(idsOnly());
    const err: unknown = await codec.encode(withNul()).catch((e: unknown) => e);
    expect(isHubError(err) && err.code).toBe('HUB_EVENT_INVALID');
    expect(err instanceof Error && err.message).toContain('patientId');
  });

  it('given an invalid event, when checked, then its paths are returned and encode still checks it', async () => {
    const e = withNul();
    expect(checkForEncode(e.type, e.data)).toEqual(['patientId (lone surrogate or NUL in text)']);
    const wrongType = { ...valid.data, patientId: 7 };
    expect(checkForEncode('PatientRegistered', wrongType)).toEqual(['patientId']);
    await expect(createEventCodec(idsOnly()).encode(e)).rejects.toThrow(/patientId/);
  });

  it('given a valid event checked by the producer of it, when encoded, then encode does not check that object again', async () => {
    // Given an event checked once (as the HL7 mapper does) ...
    const e = { ...valid, data: { ...valid.data } } as ClinicalEvent;
    expect(checkForEncode(e.type, e.data)).toEqual([]);
    // ... and then changed, which a caller must not do: encode no longer looks at its text
    (e.data as { patientId: string }).patientId = 'a\u0000b';
    const wire = await createEventCodec(idsOnly()).encode(e);
    expect(wire.equals(wireBefore(idOfBytes(wire), e.type, e.data))).toBe(true);
    // while a copy with the same content, never checked, is refused
    await expect(createEventCodec(idsOnly()).encode(withNul())).rejects.toThrow(/patientId/);
  });

  it('given every contract, when topics are the catalog ones, then each type gets its own subject id', async () => {
    const codec = createEventCodec(idsOnly());
    const ids = new Set<number>();
    for (const type of EVENT_TYPES) {
      const e = samples.find((s) => s.type === type)!;
      ids.add(idOfBytes(await codec.encode(e, EVENT_CONTRACTS[type].topic)));
    }
    expect(ids.size).toBe(EVENT_TYPES.length);
  });
});

/** Ids by subject for encode, and each id's writer Type for decode (the build's own schemas). */
function registryOfThisBuild(): RegistryClient {
  const types = new Map<number, EventType>();
  const base = idsOnly();
  const registry: Pick<RegistryClient, 'idOf' | 'typeOf'> = {
    idOf: async (subject, schema) => {
      const id = await base.idOf(subject, schema);
      const type = EVENT_TYPES.find((t) => subject.endsWith(EVENT_CONTRACTS[t].fullName));
      if (type) types.set(id, type);
      return id;
    },
    typeOf: (id) => Promise.resolve(avroTypeOf(types.get(id) ?? 'PatientRegistered')),
  };
  return registry as RegistryClient;
}

describe('event codec: decoding in place', () => {
  it('property: given any events, when decoded (first awaited, then without a promise), then each equals what fromBuffer reads from its body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: samples.length - 1 }), { minLength: 1, maxLength: 20 }),
        async (picks) => {
          // Given events of several schema ids, interleaved
          const codec = createEventCodec(registryOfThisBuild());
          for (const i of picks) {
            const e = samples[i] ?? samples[0]!;
            const wire = await codec.encode(e);
            const expected = {
              type: e.type,
              data: avroTypeOf(e.type).fromBuffer(wire.subarray(5)) as unknown,
            };
            // When decoded both ways, then both read the same event
            expect(await codec.decode(wire)).toEqual(expected);
            expect(codec.decodeIfResolved(wire)).toEqual(expected);
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it('given a body cut short or followed by more bytes, when decoded, then it is undecodable (as fromBuffer refused it)', async () => {
    const codec = createEventCodec(registryOfThisBuild());
    const wire = await codec.encode(samples.find((e) => e.type === 'PatientRegistered')!);
    await codec.decode(wire);
    for (const bad of [wire.subarray(0, wire.length - 1), Buffer.concat([wire, Buffer.from([0])])]) {
      const err: unknown = await codec.decode(bad).catch((e: unknown) => e);
      expect(isHubError(err) && err.code).toBe('HUB_EVENT_UNDECODABLE');
      expect(() => codec.decodeIfResolved(bad)).toThrow(/corrupt Avro body/);
    }
  });
});

/** Top-level field names of an event type's contract. */
const fieldsOf = (type: EventType): string[] =>
  (EVENT_CONTRACTS[type].schema as unknown as { fields: { name: string }[] }).fields.map((f) => f.name);

/** What a reader skipping `skip` must read: the whole decode without those fields. */
function minus(e: ClinicalEvent, skip: SkipFields): { type: EventType; data: Record<string, unknown> } {
  const data: Record<string, unknown> = { ...e.data };
  for (const f of skip[e.type] ?? []) delete data[f];
  return { type: e.type, data };
}

/** Any skip list: per event type, any subset of its top-level fields (all of them too). */
const skipLists: fc.Arbitrary<SkipFields> = fc
  .tuple(...EVENT_TYPES.map((t) => fc.subarray(fieldsOf(t))))
  .map((lists) => Object.fromEntries(EVENT_TYPES.map((t, i) => [t, lists[i] ?? []])) as SkipFields);

describe('event codec: readers that skip fields (codecSkipping)', () => {
  const results = samples.filter((e) => e.type === 'ResultReported');
  const skipObservations: SkipFields = { ResultReported: ['observations', 'reportText'] };

  it('property: given any skip list and any events, when decoded by a codec skipping it (awaited, then without a promise), then each is the whole decode without the skipped fields', async () => {
    await fc.assert(
      fc.asyncProperty(
        skipLists,
        fc.array(fc.nat({ max: samples.length - 1 }), { minLength: 1, maxLength: 20 }),
        async (skip, picks) => {
          // Given a codec and one derived from it that skips the fields
          const codec = createEventCodec(registryOfThisBuild());
          const lean = codecSkipping(codec, skip);
          for (const i of picks) {
            const e = samples[i] ?? samples[0]!;
            // When an event written with the whole schema is decoded by both
            const wire = await lean.encode(e);
            const whole = await codec.decode(wire);
            // Then the lean one is the whole one minus the fields, nothing else changed
            const expected = minus(whole, skip);
            expect(await lean.decode(wire)).toEqual(expected);
            expect(lean.decodeIfResolved(wire)).toEqual(expected);
            for (const f of skip[e.type] ?? [])
              expect(Object.hasOwn(lean.decodeIfResolved(wire)!.data, f)).toBe(false);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('given a result, when decoded skipping its observations, then they are absent and every other field is as written', async () => {
    const codec = createEventCodec(registryOfThisBuild());
    const lean = codecSkipping(codec, skipObservations);
    for (const e of results) {
      const wire = await codec.encode(e);
      const decoded = (await lean.decode(wire)).data as unknown as Record<string, unknown>;
      expect(decoded.observations).toBeUndefined();
      expect(decoded.reportText).toBeUndefined();
      expect(decoded).toEqual(minus(await codec.decode(wire), skipObservations).data);
    }
  });

  it('given a body cut short or followed by more bytes, when decoded skipping fields, then it is still undecodable', async () => {
    const codec = createEventCodec(registryOfThisBuild());
    const lean = codecSkipping(codec, skipObservations);
    // The observations (skipped) are the bytes cut or followed: stepping over them still checks the length.
    const e =
      results.find((r) => r.type === 'ResultReported' && r.data.observations.length > 0) ?? results[0]!;
    const wire = await codec.encode(e);
    await lean.decode(wire);
    for (const bad of [wire.subarray(0, wire.length - 1), Buffer.concat([wire, Buffer.from([0])])]) {
      const err: unknown = await lean.decode(bad).catch((x: unknown) => x);
      expect(isHubError(err) && err.code).toBe('HUB_EVENT_UNDECODABLE');
      expect(() => lean.decodeIfResolved(bad)).toThrow(/corrupt Avro body/);
    }
  });

  it('given a codec derived from a derived one, then it skips only its own list (from the whole reader)', async () => {
    const codec = createEventCodec(registryOfThisBuild());
    const again = codecSkipping(codecSkipping(codec, skipObservations), { ResultReported: ['notes'] });
    const e = results[0]!;
    const wire = await codec.encode(e);
    expect(await again.decode(wire)).toEqual(minus(await codec.decode(wire), { ResultReported: ['notes'] }));
  });

  it('given a codec not made by createEventCodec (a fake), then it is used as it is', () => {
    const fake: EventCodec = {
      encode: () => Promise.resolve(Buffer.alloc(0)),
      decode: () => Promise.reject(new Error('fake')),
      decodeIfResolved: () => undefined,
      warmUp: () => Promise.resolve(),
    };
    expect(codecSkipping(fake, skipObservations)).toBe(fake);
  });

  it('given the captured log segment of 716b293 (old writer schemas), when decoded skipping any fields, then each record is the whole decode without them', async () => {
    // Old writers resolve to the reduced reader as they do to the whole one (FULL_TRANSITIVE):
    // a reader without a field asks nothing more of a writer.
    const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
    const { segment } = readSegment(join(repo, 'test/fixtures/log-segment-716b293'));
    // The writers really are older: at least one differs from this build's schema of its type.
    const writers = segment.schemas.map((w) => avsc.Type.forSchema(w.schema as avsc.Schema));
    expect(
      writers.some((w) => {
        const type = EVENT_TYPES.find((t) => EVENT_CONTRACTS[t].fullName === w.name);
        return type !== undefined && !w.equals(avroTypeOf(type));
      }),
    ).toBe(true);
    await fc.assert(
      fc.asyncProperty(skipLists, async (skip) => {
        const codec = createEventCodec(registryServing(segment.schemas));
        const lean = codecSkipping(codec, skip);
        for (const r of segment.records) {
          expect(await lean.decode(r.value)).toEqual(minus(await codec.decode(r.value), skip));
        }
      }),
      { numRuns: 10 },
    );
  });
});
