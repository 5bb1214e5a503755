import { describe, expect, it } from 'vitest';
import { generateResources } from '../../../test/fixtures/fhir/generate.js';
import { inlinePreparer, workerPreparer } from './prepare-pool.js';

describe('prepare pool', () => {
  it('given lines, when validated in worker threads, then the result equals the inline one, in line order', async () => {
    const items = [...generateResources(40, { prefix: 'pp' })].map((r, i) => ({
      line: i + 1,
      text: i === 7 ? '{"resourceType":"Patient","gender":"x","gender":"y"}' : JSON.stringify(r),
      isEntry: false,
    }));
    const pool = workerPreparer(2);
    try {
      const viaWorkers = await pool.prepare(items, 'f');
      const inline = await inlinePreparer().prepare(items, 'f');
      expect(viaWorkers.map((p) => p.item.line)).toEqual(inline.map((p) => p.item.line));
      expect(viaWorkers.map((p) => p.entry ?? p.bad)).toEqual(inline.map((p) => p.entry ?? p.bad));
      expect(viaWorkers[7]?.bad?.reason).toBe('json-duplicate-key');
    } finally {
      await pool.close();
    }
    await expect(pool.prepare(items, 'f')).rejects.toThrow(/closed/);
    // Each worker loads the FHIR definitions (and, under tsx, compiles the validator) first.
  }, 30_000);
});
