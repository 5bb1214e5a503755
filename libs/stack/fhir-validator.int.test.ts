import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stackConfig } from './config.js';
import { validateFhir, type FhirValidationReport } from './fhir-validator.js';

const V3_HIGH = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'H' };

// Real FHIR R4 made-up resources, each showing one promise of tools/fhir-validator/README.md.
const SAMPLES: Record<string, object> = {
  'valid-observation': {
    resourceType: 'Observation',
    id: 'o1',
    status: 'final',
    code: {
      coding: [
        { system: 'http://loinc.org', code: '2345-7' },
        { system: 'urn:hl7:codesystem:99LAB', code: 'GLU' },
      ],
    },
    subject: { reference: 'Patient/p1' },
    effectiveDateTime: '2026-03-01T08:30:00Z',
    valueQuantity: { value: 182, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
    // The FHIR coding first, the v2 original beside it: one coding from the value set is enough.
    interpretation: [
      { coding: [V3_HIGH, { system: 'http://terminology.hl7.org/CodeSystem/v2-0078', code: 'H' }] },
    ],
  },
  'bad-second-coding': {
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'glucose' },
    interpretation: [
      { coding: [V3_HIGH, { system: 'http://terminology.hl7.org/CodeSystem/v2-0078', code: 'ZZZ' }] },
    ],
  },
  'empty-entry': { resourceType: 'Bundle', type: 'searchset', total: 0, entry: [] },
  'bad-v2-table-code': {
    resourceType: 'Encounter',
    id: 'e1',
    status: 'in-progress',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
    serviceType: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0069', code: 'NOT-A-SERVICE' }],
    },
  },
  'table-0296-language': {
    resourceType: 'Patient',
    id: 'p1',
    communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'ENG' }] } }],
  },
};

describe('tools/fhir-validator (HAPI, offline) through libs/stack/fhir-validator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hub-fhir-validator-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  let report: FhirValidationReport;
  const of = (name: string) => report.files.find((f) => f.file.endsWith(`${name}.json`))!;

  it('validates many files in one JVM and reports each', async () => {
    // Given the samples on disk
    for (const [name, body] of Object.entries(SAMPLES))
      writeFileSync(join(dir, `${name}.json`), JSON.stringify(body));
    // When the validator runs over the directory
    report = await validateFhir([dir], { repoDir: stackConfig('test').repoDir });
    // Then every file is reported, errors counted
    expect(report.fileCount).toBe(5);
    expect(report.errorCount).toBe(report.files.reduce((n, f) => n + f.errors.length, 0));
  }, 900_000);

  it('a LOINC or local code system it cannot check is a warning, not an error', () => {
    expect(of('valid-observation').errors).toEqual([]);
    const warnings = of('valid-observation').warnings.map((w) => `${w.location}: ${w.message}`);
    expect(warnings.join('\n')).toContain('http://loinc.org');
    // A v2 original beside the FHIR coding does not make the concept "not in the value set".
    expect(warnings.filter((w) => w.startsWith('Observation.interpretation'))).toEqual([]);
  });

  it('a wrong code beside a right one is still an error (every coding of a system it holds is checked)', () => {
    expect(of('bad-second-coding').errors.map((e) => e.message)).toEqual([
      "Unknown code 'http://terminology.hl7.org/CodeSystem/v2-0078#ZZZ'",
    ]);
  });

  it('an empty array, a code not in the v2 table named, and a language that is not BCP-47 are errors', () => {
    expect(of('empty-entry').errors.map((e) => e.location)).toEqual(['Bundle.entry']);
    expect(of('bad-v2-table-code').errors.map((e) => e.location)).toContain('Encounter.serviceType');
    expect(
      of('table-0296-language')
        .errors.map((e) => e.location)
        .join('\n'),
    ).toContain('language');
  });
});
