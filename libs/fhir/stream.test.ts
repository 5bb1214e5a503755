import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { NdjsonSplitter, readBundleEntries, readNdjson } from './stream.js';

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
    const items = await all(readNdjson(trickle(`{"a":"${'x'.repeat(100)}"}\n{"b":2}`), { maxLineBytes: 50 }));
    expect(items.map((i) => [i.line, i.text.length > 0])).toEqual([
      [1, false],
      [2, true],
    ]);
  });

  // #17: a 40 MB line was held whole (+90 MB RSS) before being found too long.
  it('given a 40 MB line, when split with a 1 MiB limit, then never more than the limit is held, and the next line comes whole', () => {
    const limit = 1024 * 1024;
    const splitter = new NdjsonSplitter(limit);
    const chunk = 64 * 1024;
    let maxHeld = 0;
    const items = [...splitter.push(Buffer.from('{"a":1}\n{"big":"'))];
    for (let sent = 0; sent < 40 * 1024 * 1024; sent += chunk) {
      // A fresh chunk each time, as a socket gives them: holding one keeps its memory.
      items.push(...splitter.push(Buffer.alloc(chunk, 0x78)));
      maxHeld = Math.max(maxHeld, splitter.heldBytes);
    }
    items.push(...splitter.push(Buffer.from('"}\n{"b":2}')), ...splitter.end());
    expect(maxHeld).toBeLessThanOrEqual(limit);
    expect(items.map((i) => [i.line, i.text])).toEqual([
      [1, '{"a":1}'],
      [2, ''],
      [3, '{"b":2}'],
    ]);
  });

  it('given a line exactly at the limit, then it is kept; one byte more, then dropped', () => {
    const line = `{"a":"${'x'.repeat(14)}"}`; // 22 bytes
    const at = new NdjsonSplitter(22).push(Buffer.from(`${line}\n`));
    const over = new NdjsonSplitter(21).push(Buffer.from(`${line}\n`));
    expect(at[0]?.text).toBe(line);
    expect(over[0]?.text).toBe('');
  });

  it('given an oversize Bundle entry, then it is yielded empty and the next entry whole', async () => {
    const doc = JSON.stringify({
      resourceType: 'Bundle',
      entry: [{ resource: { x: 'y'.repeat(500) } }, { b: 2 }],
    });
    const items = await all(readBundleEntries(trickle(doc, 64), { maxEntryBytes: 100 }));
    expect(items.map((i) => [i.line, i.text])).toEqual([
      [1, ''],
      [2, '{"b":2}'],
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
