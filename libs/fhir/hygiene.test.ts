import { Readable } from 'node:stream';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_IDENTITY_POLICY } from '../identity/index.js';
import { identifierTextPlain } from './identifiers.js';
import { toHubIdentifier } from './mapping.js';
import { readBundleEntries, readNdjson } from './stream.js';
import { loadFhirDefinitions, parseJsonBody, parseResource, validateFhirResource } from './validate.js';

/**
 * FHIR input through identifier hygiene and text validity: identifiers that
 * do not look like what they are get 400 naming the element; JSON that is
 * not valid Unicode (invalid UTF-8 bytes, "\ud800" escapes) or holds NUL
 * gets 400; names keep their characters in NFC.
 */

// Indexing the R4 StructureDefinitions takes seconds on a busy machine: once, outside any test's timeout.
beforeAll(() => loadFhirDefinitions(), 60_000);

const patient = (identifier: object, extra: object = {}) =>
  JSON.stringify({ resourceType: 'Patient', identifier: [identifier], ...extra });

describe('FHIR Identifier.value and .system', () => {
  it.each<[string, string]>([
    ['a bidi control (RLO)', 'MRN\u202e10001'],
    ['a zero-width space', 'MRN\u200b10001'],
    ['full-width digits', 'MRN\uff11\uff10'],
    ["a Cyrillic 'А'", '\u0410BC10001'],
    ['a Greek omicron', 'M\u039fN1'],
  ])('given a Patient identifier with %s, then 400 naming Patient.identifier[0].value', (_what, value) => {
    const r = parseResource(patient({ system: 'urn:oid:1.2', value }), 'Patient');
    expect(r).toMatchObject({ ok: false, status: 400, reason: 'identifier-invalid' });
    if (!r.ok) {
      expect(r.issues[0]!.expression).toEqual(['Patient.identifier[0].value']);
      expect(r.issues[0]!.diagnostics).not.toContain('MRN');
    }
  });

  it('given a zero-width space in Identifier.system, then 400 naming the system', () => {
    const r = parseResource(patient({ system: 'urn:oid:1.2\u200b', value: 'M1' }), 'Patient');
    expect(r).toMatchObject({ ok: false, status: 400 });
    if (!r.ok) expect(r.issues[0]!.expression).toEqual(['Patient.identifier[0].system']);
  });

  it('given a bidi control in a reference identifier (Encounter.subject.identifier), then 400 naming it', () => {
    const r = parseResource(
      JSON.stringify({
        resourceType: 'Encounter',
        status: 'finished',
        class: { code: 'IMP' },
        subject: { identifier: { system: 'urn:oid:1.2', value: 'M\u200f1' } },
      }),
      'Encounter',
    );
    expect(r).toMatchObject({ ok: false, status: 400 });
    if (!r.ok) expect(r.issues[0]!.expression).toEqual(['Encounter.subject.identifier.value']);
  });

  it('given names with accents and a non-Latin identifier of one script, then the resource is accepted', () => {
    const r = parseResource(
      patient({ system: 'urn:oid:1.2', value: 'МРН-123' }, { name: [{ family: 'Müller', given: ['Zoë'] }] }),
      'Patient',
    );
    expect(r.ok).toBe(true);
  });

  it('given accented names and plain identifiers, then the typed walk is skipped (identifierTextPlain); a bad identifier beside such names is still found', () => {
    const names = { name: [{ family: 'Müller', given: ['Zoë'] }], address: [{ city: 'Zürich' }] };
    const ok = { resourceType: 'Patient', identifier: [{ system: 'urn:oid:1.2', value: 'M1' }], ...names };
    expect(identifierTextPlain(ok)).toBe(true);
    const bad = JSON.stringify({
      resourceType: 'Encounter',
      status: 'finished',
      class: { code: 'IMP' },
      subject: { identifier: { system: 'urn:oid:1.2', value: 'M\u200f1' }, display: 'Zoë Müller' },
    });
    expect(identifierTextPlain(JSON.parse(bad))).toBe(false);
    const r = parseResource(bad, 'Encounter');
    expect(r).toMatchObject({ ok: false, status: 400, reason: 'identifier-invalid' });
    if (!r.ok) expect(r.issues[0]!.expression).toEqual(['Encounter.subject.identifier.value']);
  });

  it('given an identifier with surrounding spaces, then the hub identifier is trimmed (one patient)', () => {
    expect(toHubIdentifier({ system: 'urn:oid:1.2', value: ' M1 ' }, DEFAULT_IDENTITY_POLICY)).toMatchObject({
      value: 'M1',
    });
    expect(toHubIdentifier({ system: 'urn:oid:1.2', value: '  ' }, DEFAULT_IDENTITY_POLICY)).toBeNull();
  });
});

describe('FHIR JSON text validity', () => {
  it.each([
    ['a lone high surrogate escape', '"\\ud800"', 'json-lone-surrogate'],
    ['a lone low surrogate escape', '"\\udc00"', 'json-lone-surrogate'],
    ['a reversed pair', '"\\udc00\\ud800"', 'json-lone-surrogate'],
    ['a NUL escape', '"a\\u0000b"', 'json-nul-character'],
  ])('given a name with %s, then 400 naming the element', (_what, family, reason) => {
    const r = parseJsonBody(`{"resourceType":"Patient","name":[{"family":${family}}]}`);
    expect(r).toMatchObject({ ok: false, status: 400, reason });
    if (!r.ok) expect(r.issues[0]!.expression).toEqual(['Patient.name[0].family']);
  });

  it('given a valid surrogate pair escape (an emoji), then it is accepted', () => {
    const r = parseJsonBody('{"resourceType":"Patient","name":[{"text":"\\ud83d\\ude00"}]}');
    expect(r).toMatchObject({ ok: true, value: { name: [{ text: '😀' }] } });
  });

  it('given body bytes that are not UTF-8, then 400 json-invalid-utf8', () => {
    const bytes = Buffer.concat([
      Buffer.from('{"resourceType":"Patient","name":[{"family":"M'),
      Buffer.from([0xfc]),
      Buffer.from('ller"}]}'),
    ]);
    expect(parseJsonBody(bytes)).toMatchObject({ ok: false, status: 400, reason: 'json-invalid-utf8' });
  });

  it('given UTF-8 bytes with a BOM, then they parse', () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"resourceType":"Patient"}')]);
    expect(parseJsonBody(bytes).ok).toBe(true);
  });

  it('given the same name in NFC and NFD, then both parse to the same (NFC) value', () => {
    const nfc = 'Müller-Ångström'.normalize('NFC');
    const parse = (s: string) => {
      const r = parseJsonBody(Buffer.from(`{"resourceType":"Patient","name":[{"family":"${s}"}]}`, 'utf8'));
      if (!r.ok) throw new Error('refused');
      return (r.value as { name: { family: string }[] }).name[0]!.family;
    };
    expect(parse(nfc.normalize('NFD'))).toBe(nfc);
    expect(parse(nfc)).toBe(nfc);
  });

  it('given a valid resource, then validateFhirResource returns it unchanged', () => {
    const v = { resourceType: 'Patient', identifier: [{ system: 'urn:oid:1.2', value: 'Ä-1' }] };
    expect(validateFhirResource(v, 'Patient')).toEqual({ ok: true, value: v });
  });
});

async function all<T>(g: AsyncGenerator<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of g) out.push(x);
  return out;
}

/** Bytes in pieces of `size`, so multi-byte characters straddle chunks. */
function trickle(b: Buffer, size = 1): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) parts.push(Buffer.from(b.subarray(i, i + size)));
  return Readable.from(parts);
}

describe('bulk readers on bytes', () => {
  it('given NDJSON with multi-byte characters split across chunks, then the text is intact', async () => {
    const text = '{"n":"Zoë 山田 😀"}\n{"n":"Ångström"}\r\n';
    const items = await all(readNdjson(trickle(Buffer.from(text, 'utf8'))));
    expect(items.map((i) => i.text)).toEqual(['{"n":"Zoë 山田 😀"}', '{"n":"Ångström"}']);
  });

  it('given an NDJSON line with invalid UTF-8, then only that line is flagged and the others pass', async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"a":1}\n{"n":"M'),
      Buffer.from([0xfc]),
      Buffer.from('ller"}\n{"b":2}\n'),
    ]);
    const items = await all(readNdjson(trickle(bytes, 4)));
    expect(items.map((i) => [i.line, i.text, i.invalidUtf8 ?? false])).toEqual([
      [1, '{"a":1}', false],
      [2, '', true],
      [3, '{"b":2}', false],
    ]);
  });

  it('reads any text in any chunking as readline would (\\n, \\r\\n, \\r), line numbers included', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.string({ unit: 'grapheme', maxLength: 8 }).map((s) => s.replace(/[\r\n]/g, '')),
            fc.constantFrom('\n', '\r\n', '\r'),
          ),
          { maxLength: 8 },
        ),
        fc.integer({ min: 1, max: 7 }),
        async (lines, size) => {
          const text = lines.map(([l, sep]) => l + sep).join('');
          // A \r followed by \n is one break, wherever the two came from.
          const expected = text
            .split(/\r\n|\r|\n/)
            .map((l, i) => ({ line: i + 1, text: l }))
            .filter((x) => !/^[\t\n\v\f\r ]*$/.test(x.text));
          const items = await all(readNdjson(trickle(Buffer.from(text, 'utf8'), size)));
          expect(items.map((i) => ({ line: i.line, text: i.text }))).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('given a lone CR as line break (as readline reads it), then lines still split', async () => {
    const items = await all(readNdjson(trickle(Buffer.from('{"a":1}\r{"b":2}'), 3)));
    expect(items.map((i) => [i.line, i.text])).toEqual([
      [1, '{"a":1}'],
      [2, '{"b":2}'],
    ]);
  });

  it('given a Bundle document with one entry that is not UTF-8, then only that entry is flagged', async () => {
    const bytes = Buffer.concat([
      Buffer.from(
        '{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"n":"Zoë"}},{"resource":{"n":"',
      ),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}},{"resource":{"n":"ok"}}]}'),
    ]);
    const items = await all(readBundleEntries(trickle(bytes, 5)));
    expect(items.map((i) => [i.line, i.text, i.invalidUtf8 ?? false])).toEqual([
      [1, '{"resource":{"n":"Zoë"}}', false],
      [2, '', true],
      [3, '{"resource":{"n":"ok"}}', false],
    ]);
  });
});
