import { beforeAll, describe, expect, it } from 'vitest';
import { loadFhirDefinitions, parseResource } from './validate.js';

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
