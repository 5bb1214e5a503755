import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readBundleEntries, readNdjson } from './stream.js';

async function all<T>(g: AsyncGenerator<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of g) out.push(x);
  return out;
}

/** A stream that delivers the text in tiny pieces, so that entries straddle chunk boundaries. */
function trickle(text: string, size = 3): Readable {
  const parts: string[] = [];
  for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
  return Readable.from(parts.map((p) => Buffer.from(p)));
}

describe('bulk input readers', () => {
  it('given NDJSON with blank lines, then items keep their file line numbers', async () => {
    const items = await all(readNdjson(trickle('{"a":1}\n\n{"b":2}\r\n{"c":3}')));
    expect(items.map((i) => [i.line, i.text])).toEqual([
      [1, '{"a":1}'],
      [3, '{"b":2}'],
      [4, '{"c":3}'],
    ]);
  });

  it('given an oversize line, then it is yielded empty (to be dead-lettered), not held', async () => {
    const items = await all(
      readNdjson(trickle(`{"a":"${'x'.repeat(100)}"}\n{"b":2}`), { maxLineLength: 50 }),
    );
    expect(items.map((i) => [i.line, i.text.length > 0])).toEqual([
      [1, false],
      [2, true],
    ]);
  });

  it('given a pretty-printed Bundle, then each entry element comes out whole, braces in strings included', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      meta: { tag: [{ code: 'entry' }] },
      entry: [
        {
          fullUrl: 'urn:uuid:1',
          resource: { resourceType: 'Patient', id: 'a', name: [{ text: 'x } ] " {' }] },
        },
        { resource: { resourceType: 'Observation', id: 'b', status: 'final', code: { text: 'y' } } },
      ],
      total: 2,
    };
    const items = await all(readBundleEntries(trickle(JSON.stringify(bundle, null, 2), 7)));
    expect(items).toHaveLength(2);
    expect(items.map((i) => JSON.parse(i.text) as unknown)).toEqual(bundle.entry);
    expect(items.map((i) => i.line)).toEqual([1, 2]);
    expect(items.every((i) => i.isEntry)).toBe(true);
  });
});
