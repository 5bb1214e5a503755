import { getAllDataTypes, tryGetProfile, validateResource } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateResources } from '../../test/fixtures/fhir/generate.js';
import {
  bundleEntries,
  fhirDefinitionFiles,
  loadFhirDefinitions,
  parseResource,
  validateFhirResource,
} from './validate.js';

describe('FHIR validation (@medplum/core against R4 StructureDefinitions)', () => {
  // Indexing the definitions takes seconds on a busy machine: once, outside the first test's 5 s timeout.
  beforeAll(() => loadFhirDefinitions(), 60_000);

  it('given a valid Patient, then it is accepted', () => {
    const r = parseResource(
      '{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2","value":"M1"}],"birthDate":"1980-02-03"}',
      'Patient',
    );
    expect(r.ok).toBe(true);
  });

  it('given a bad primitive, then 422 with the FHIRPath of the element', () => {
    const r = parseResource('{"resourceType":"Patient","birthDate":"1980-13-45"}');
    expect(r).toMatchObject({ ok: false, status: 422, reason: 'fhir-invalid' });
    if (!r.ok) expect(r.issues[0]?.expression).toEqual(['Patient.birthDate']);
  });

  it('given a missing required element or an unknown one, then each is located', () => {
    const r = parseResource('{"resourceType":"Observation","code":{"text":"x"},"colour":"red"}');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      const where = r.issues.flatMap((i) => i.expression ?? []);
      expect(where).toEqual(expect.arrayContaining(['Observation.status', 'Observation.colour']));
    }
  });

  it('given another resource type than the endpoint, or an unsupported type, then it is refused', () => {
    expect(parseResource('{"resourceType":"Encounter","status":"planned"}', 'Patient')).toMatchObject({
      ok: false,
      status: 400,
    });
    expect(parseResource('{"resourceType":"Medication"}')).toMatchObject({ ok: false, status: 422 });
  });

  it('given malformed JSON, then 400 before any FHIR check', () => {
    expect(parseResource('{"resourceType":"Patient",')).toMatchObject({ ok: false, status: 400 });
  });
});

describe('resource ids', () => {
  it('given an id outside the FHIR id alphabet, then 422 at <Type>.id', () => {
    const r = parseResource('{"resourceType":"Patient","id":"has_underscore"}');
    expect(r).toMatchObject({ ok: false, status: 422, issues: [{ expression: ['Patient.id'] }] });
  });
});

describe('bundleEntries (the definitions read one entry at a time)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bundle-entries-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const entriesOf = (text: string, chunkSize: number): unknown[] => {
    const file = join(dir, `b${n++}.json`);
    writeFileSync(file, text);
    return [...bundleEntries(file, chunkSize)].map((e) => JSON.parse(e) as unknown);
  };

  it('given any Bundle text and chunk size, then the entries are those of JSON.parse, in order', () => {
    // Strings with quotes, backslashes, brackets and non-ASCII characters; other top-level keys
    // before and after `entry` (arrays too), an `entry` key deeper down; compact or indented.
    const value = fc.jsonValue({ maxDepth: 3 });
    const text = fc.string({ unit: 'binary', maxLength: 12 });
    fc.assert(
      fc.property(
        fc.array(fc.record({ fullUrl: text, resource: value }), { maxLength: 6 }),
        fc.dictionary(text, value, { maxKeys: 3 }),
        fc.constantFrom(undefined, 2),
        fc.integer({ min: 1, max: 64 }),
        (entry, others, indent, chunkSize) => {
          const bundle = {
            resourceType: 'Bundle',
            meta: { entry: [{ not: 'this one' }] },
            link: [{ relation: 'self', url: 'x"]}' }],
            ...others,
            entry,
            tail: ['entry', { entry: [1] }],
          };
          const json = JSON.stringify(bundle, null, indent);
          expect(entriesOf(json, chunkSize)).toEqual((JSON.parse(json) as { entry: unknown[] }).entry);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('given a truncated file, then it is refused rather than read short', () => {
    expect(() => entriesOf('{"resourceType":"Bundle","entry":[{"resource":{"a":"b"}}, {"res', 8)).toThrow(
      /truncated/,
    );
  });

  it("given the R4 definition files, then each file's entries are those of JSON.parse", () => {
    for (const file of fhirDefinitionFiles()) {
      const whole = (JSON.parse(readFileSync(file, 'utf8')) as { entry: unknown[] }).entry;
      const read = [...bundleEntries(file)].map((e) => JSON.parse(e) as unknown);
      expect(read.length).toBe(whole.length);
      expect(read).toEqual(whole);
    }
  }, 60_000);
});

/** The fixtures (test/fixtures/fhir) and made-up resources, refused ones and contained ones of other types. */
function corpus(): Resource[] {
  const fixtures = join(import.meta.dirname, '../../test/fixtures/fhir');
  const files = readdirSync(fixtures).filter((f) => f.endsWith('.json'));
  const obs = (contained: unknown[], extra: object = {}) =>
    ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, contained, ...extra }) as Resource;
  return [
    ...files.map((f) => JSON.parse(readFileSync(join(fixtures, f), 'utf8')) as Resource),
    ...readFileSync(join(fixtures, 'sample.ndjson'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Resource),
    ...([...generateResources(24, { prefix: 'def' })] as Resource[]),
    { resourceType: 'Patient', birthDate: '1980-13-45' },
    { resourceType: 'Observation', code: { text: 'x' }, colour: 'red' } as unknown as Resource,
    { resourceType: 'Encounter', status: 'planned' } as Resource,
    { resourceType: 'Patient', name: [{ given: 'not an array' }] } as unknown as Resource,
    obs([{ resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Doe' }] }], {
      performer: [{ reference: '#p1' }],
    }),
    obs([{ resourceType: 'Medication', id: 'm1', code: { text: 'aspirin' } }], {
      focus: [{ reference: '#m1' }],
    }),
    obs([{ resourceType: 'Practitioner', id: 'p1', birthDate: '1980-13-45' }], {
      performer: [{ reference: '#p1' }],
    }),
    obs([{ resourceType: 'Medication', id: 'm1', colour: 'red' }]),
    {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { fullUrl: 'urn:uuid:1', resource: { resourceType: 'Practitioner', name: [{ family: 'Doe' }] } },
      ],
    },
  ];
}

/** @medplum/core's own answer: no issue (warnings aside) or the OperationOutcome's issues. */
function medplumVerdict(r: Resource): unknown {
  try {
    return validateResource(r).filter((i) => i.severity === 'error');
  } catch (err) {
    return (err as { outcome?: { issue?: unknown } }).outcome?.issue ?? String(err);
  }
}

/** What the worker that loads the whole files answers. */
interface WholeLoad {
  types: Record<string, unknown>;
  profiles: Record<string, unknown>;
  verdicts: unknown[];
}

describe('definitions read entry by entry', () => {
  beforeAll(() => loadFhirDefinitions(), 60_000);

  it('given the whole files parsed and indexed at once (in a thread of its own), then every type, profile and verdict is the same', async () => {
    // The previous load in a worker: a module instance of @medplum/core of its own. Its schemas
    // come back by structured clone (cycles, Sets and Infinity kept), and its verdicts with them.
    const files = fhirDefinitionFiles();
    const resources = corpus();
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
      const { readFileSync } = require('node:fs');
      import(workerData.core).then((core) => {
        const urls = [];
        for (const file of workerData.files) {
          const bundle = JSON.parse(readFileSync(file, 'utf8'));
          core.indexStructureDefinitionBundle(bundle);
          for (const e of bundle.entry) if (e.resource.resourceType === 'StructureDefinition') urls.push(e.resource.url);
        }
        const verdicts = workerData.resources.map((r) => {
          try { return core.validateResource(r).filter((i) => i.severity === 'error'); }
          catch (err) { return err.outcome?.issue ?? String(err); }
        });
        const profiles = Object.fromEntries(urls.map((u) => [u, core.tryGetProfile(u)]));
        parentPort.postMessage({ types: core.getAllDataTypes(), profiles, verdicts });
      });`,
      { eval: true, workerData: { core: import.meta.resolve('@medplum/core'), files, resources } },
    );
    const whole = await new Promise<WholeLoad>((resolve, reject) => {
      worker.once('message', (m: WholeLoad) => resolve(m));
      worker.once('error', reject);
    });
    await worker.terminate();

    expect(Object.keys(getAllDataTypes()).sort()).toEqual(Object.keys(whole.types).sort());
    for (const [name, schema] of Object.entries(whole.types))
      expect(getAllDataTypes()[name], name).toEqual(schema);
    for (const [url, schema] of Object.entries(whole.profiles))
      expect(tryGetProfile(url), url).toEqual(schema);
    expect(resources.map(medplumVerdict)).toEqual(whole.verdicts);
    // Refused ones among them, so that equal verdicts are not all "valid".
    expect(whole.verdicts.filter((v) => Array.isArray(v) && v.length > 0).length).toBeGreaterThanOrEqual(6);
  }, 120_000);

  it('given a contained resource of a type the hub does not take (FHIR R4 allows any), then it is checked against its own definition', () => {
    const obs = (contained: object, extra: object = {}) => ({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      contained: [contained],
      ...extra,
    });
    const performer = { performer: [{ reference: '#p1' }] };
    expect(
      validateFhirResource(
        obs({ resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Doe' }] }, performer),
      ),
    ).toMatchObject({ ok: true });
    expect(
      validateFhirResource(obs({ resourceType: 'Medication', id: 'm1', code: { text: 'aspirin' } })),
    ).toMatchObject({ ok: true });
    expect(
      validateFhirResource(
        obs({ resourceType: 'Practitioner', id: 'p1', birthDate: '1980-13-45' }, performer),
      ),
    ).toMatchObject({
      ok: false,
      status: 422,
      issues: [{ expression: ['Observation.contained[0].birthDate'] }],
    });
  });
});
