import { describe, expect, it } from 'vitest';
import { projectionFigures, type ReplayPair } from './replay.js';

/** A pair of 200,000 events: the replay, the read of the same log (when given) and the COPY, in seconds. */
function pair(replaySeconds: number, copySeconds: number, readSeconds?: number): ReplayPair {
  const events = 200_000;
  return {
    replay: {
      name: 'billing',
      round: 0,
      schema: 's',
      events,
      seconds: replaySeconds,
      startSeconds: 0.1,
      eventsPerSec: events / replaySeconds,
      ...(readSeconds === undefined ? {} : { read: { seconds: readSeconds, cpuUsPerEvent: 8.7 } }),
    },
    rows: 1000,
    copySeconds,
  };
}

describe('replay figures', () => {
  it('given reads of the log beside the COPY slices, then the read limit is a figure with its ratio to COPY', () => {
    // COPY 1 s (200,000 events/s), reads 2.0 / 1.6 / 2.5 s: read/COPY 0.5, 0.625, 0.4.
    const { figures, note } = projectionFigures('billing', [pair(5, 1, 2), pair(5, 1, 1.6), pair(5, 1, 2.5)]);
    const read = figures.find((f) => f.name === 'billing read limit');
    expect(read?.limit).toBe('billing COPY limit');
    expect(read?.value).toBe(100_000);
    expect(read?.ratioSpread?.median).toBe(0.5);
    expect(read?.ratioSpread?.n).toBe(3);
    expect(note).toContain('read seconds 2.00, 1.60, 2.50');
    expect(note).toContain('read CPU µs/event 8.7, 8.7, 8.7');
  });

  it('given no reads, then there is no read limit figure and the note says nothing of one', () => {
    const { figures, note } = projectionFigures('billing', [pair(5, 1), pair(5, 1)]);
    expect(figures.map((f) => f.name)).toEqual(['billing replay', 'billing COPY limit']);
    expect(note).not.toContain('read');
  });
});
