import { describe, expect, it } from 'vitest';
import { generateResources } from '../../test/fixtures/fhir/generate.js';
import { inlineValidator, resourceValidator, workerValidator, type ToValidate } from './validate-pool.js';

const items = (): ToValidate[] => [
  ...[...generateResources(30, { prefix: 'vp' })].map((r) => ({
    value: r,
    expectedType: (r as { resourceType: string }).resourceType,
  })),
  // Refused for each of validateFhirResource's reasons: the verdicts must carry the same issues.
  { value: { resourceType: 'Patient', birthDate: '1980-13-45' } },
  { value: { resourceType: 'Observation', code: { text: 'x' }, colour: 'red' } },
  { value: { resourceType: 'Encounter', status: 'planned' }, expectedType: 'Patient' },
  { value: { resourceType: 'Medication' } },
  { value: { resourceType: 'Patient', id: 'has_underscore' } },
  {
    value: {
      resourceType: 'Encounter',
      status: 'planned',
      class: { code: 'AMB' },
      period: { start: '2024-01-02T10:00' },
    },
  },
  { value: { resourceType: 'Patient', identifier: [{ system: 'urn:x', value: 'M\u200bRN' }] } },
  { value: 'not an object' },
];

describe('resource validator pool', () => {
  it('given valid and invalid resources, when validated in a worker thread, then each verdict equals the inline one, in order', async () => {
    const pool = workerValidator(1);
    try {
      const inline = await inlineValidator().validate(items());
      expect(inline.slice(0, 30).every((v) => v.ok)).toBe(true);
      expect(inline.slice(30).some((v) => v.ok)).toBe(false);
      expect(await pool.validate(items())).toEqual(inline);
      // Several requests at once, each answered with its own verdicts.
      const [a, b] = await Promise.all([
        pool.validate(items().slice(30)),
        pool.validate(items().slice(0, 3)),
      ]);
      expect(a).toEqual(inline.slice(30));
      expect(b).toEqual(inline.slice(0, 3));
    } finally {
      await pool.close();
    }
    await expect(pool.validate(items())).rejects.toThrow(/closed/);
    // The worker loads the FHIR definitions (and, under tsx, compiles the validator) first.
  }, 60_000);

  it('given 0 threads, then validation stays on the calling thread', async () => {
    const v = resourceValidator(0);
    expect(await v.validate([{ value: { resourceType: 'Medication' } }])).toMatchObject([
      { ok: false, reason: 'unsupported-type', status: 422 },
    ]);
    await v.close();
  });
});
