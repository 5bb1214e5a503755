import avsc from 'avsc';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { composeEvents, type Catalog, type SchemaFile } from './schema-source.js';

const catalog = (events: string[]): Catalog => ({
  defaults: { partitions: 3, replicationFactor: 1, compatibility: 'BACKWARD_TRANSITIVE' },
  topics: [{ name: 't.v1', aggregate: 'a', key: 'k', retentionMs: -1, events, owner: 'o', description: 'd' }],
});

const code: SchemaFile = {
  file: 'common/Code.avsc',
  json: { type: 'record', name: 'Code', namespace: 'x.common', fields: [{ name: 'code', type: 'string' }] },
};
const ev: SchemaFile = {
  file: 'a/Happened.avsc',
  json: {
    type: 'record',
    name: 'Happened',
    namespace: 'x.a',
    fields: [
      { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
      { name: 'first', type: 'x.common.Code' },
      { name: 'second', type: ['null', 'x.common.Code'], default: null },
    ],
  },
};

describe('composeEvents', () => {
  it('inlines a shared type at its first use and refers to it by name afterwards', () => {
    const [c] = composeEvents([code, ev], catalog(['Happened']));
    expect(c?.subject).toBe('t.v1-x.a.Happened');
    const fields = (c?.schema['fields'] ?? []) as { name: string; type: unknown }[];
    expect(fields[1]?.type).toMatchObject({ type: 'record', name: 'Code', namespace: 'x.common' });
    expect(fields[2]?.type).toEqual(['null', 'x.common.Code']);
    // self-contained: parses with no registry of other types
    expect(() => avsc.Type.forSchema(c!.schema as avsc.Schema)).not.toThrow();
  });

  it('keeps logical types, which registries and other consumers rely on', () => {
    const [c] = composeEvents([code, ev], catalog(['Happened']));
    const fields = (c?.schema['fields'] ?? []) as { name: string; type: unknown }[];
    expect(fields[0]?.type).toEqual({ type: 'long', logicalType: 'timestamp-millis' });
  });

  it('names the file and the missing type when a reference does not resolve', () => {
    expect(() => composeEvents([ev], catalog(['Happened']))).toThrow(/unknown type x\.common\.Code/);
  });

  it('refuses a catalog entry that no schema defines', () => {
    expect(() => composeEvents([code, ev], catalog(['Nope']))).toThrow(HubError);
  });
});
