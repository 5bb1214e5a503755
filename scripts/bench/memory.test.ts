import { describe, expect, it } from 'vitest';
import { memoryResult, type MemoryRun, type ServiceMemory } from './memory.js';

const heap = (used: number, total: number, external: number) => ({
  heap_size_used: used,
  heap_size_total: total,
  external_memory: external,
});

function service(name: string, peak: number, atPeak: ReturnType<typeof heap>): ServiceMemory {
  return {
    name,
    idleMiB: 143,
    peakMiB: { hl7: peak, 'fhir bundles': peak - 10, 'fhir import': peak - 20 },
    heap: heap(43, 81, 7),
    heapIdle: heap(37, 73, 7),
    heapAtPeak: atPeak,
    rssAtPeakMiB: peak,
    cpuSeconds: { hl7: 1, 'fhir bundles': 1, 'fhir import': 1 },
  };
}

const run = (services: ServiceMemory[]): MemoryRun => ({
  services,
  phases: { hl7: 'h', 'fhir bundles': 'b', 'fhir import': 'i' },
});

describe('memory report', () => {
  it('given a peak of 231 MiB with 133 MiB of heap and 24 external, then the notes give that heap and 74 MiB outside it', () => {
    const r = memoryResult(run([service('projector-portal', 231, heap(89, 133, 24))]), {
      seconds: 15,
      importCount: 20_000,
    });
    expect(r.notes).toContain(
      'Heap at idle / at the RSS peak / after the phases (MiB, V8 heap used, heap total, external): projector-portal 37, 73, 7 / 89, 133, 24 / 43, 81, 7.',
    );
    expect((r.notes ?? []).find((n) => n.startsWith("Outside V8's heap"))).toMatch(
      /: projector-portal 74\.$/,
    );
  });

  it('given one service over 244 MiB, then the target note names it and no other', () => {
    const r = memoryResult(
      run([
        service('projector-portal', 255, heap(90, 140, 20)),
        service('adapter-fhir', 227, heap(70, 100, 10)),
      ]),
      { seconds: 15, importCount: 20_000 },
    );
    expect((r.notes ?? []).find((n) => n.startsWith('Target:'))).toMatch(
      /Over it: projector-portal \(255 MiB\)\.$/,
    );
  });
});
