// Scenario 3, replay: each projection rebuilt from offset 0 over the same
// published events (indexes in place), events/s; limit = binary COPY of the
// rows that projection produced into identical empty tables, expressed as
// the events/s the replay would reach if applying cost no more than loading
// its result. The two alternate: replay slice, COPY slice of the rows that
// slice produced, replay slice, ... so that each pair saw the same machine;
// the ratio is the median over the pairs, with its IQR. Between them, a read
// of the same log by the runner's consumer alone (read-limit.ts): its ratio
// to COPY is the ceiling of the replay's.
import type { SingleBar } from 'cli-progress';
import { runReplayBench, type ReplayedProjection } from '../bench-replay.js';
import { measureCopyLimit } from './copy-limit.js';
import { fmtRatio, medianFigure, pairSpread, progressBar, type BenchEnv, type Figure } from './lib.js';
import type { ScenarioResult } from './lib.js';

/**
 * Events each replay slice builds a read model from, at BENCH_SCALE=1.
 * Five slices of 200,000 replay 1,000,000 events per projection in all, the
 * work of the former single 1,000,000-event replay, so the scenario takes
 * no longer than it did (about 70 s per projection at 15k events/s). A
 * slice stays far behind the log (200,000 events of lag, batches far above
 * the runner's bulk threshold), which is what a rebuild is.
 */
export const REPLAY_SLICE_EVENTS = 200_000;

/** One replay slice and the COPY slice of the rows it produced. */
export interface ReplayPair {
  replay: ReplayedProjection;
  rows: number;
  copySeconds: number;
}

/** Figures and note of one projection's pairs. */
export function projectionFigures(
  name: string,
  pairs: readonly ReplayPair[],
): { figures: Figure[]; note: string } {
  const ratioSpread = pairSpread(
    pairs.map((p) => ({ hub: p.replay.eventsPerSec, limit: p.replay.events / p.copySeconds })),
    'higher',
  );
  const rows = pairs[0]?.rows ?? 0;
  const reads = pairs.flatMap((p) => (p.replay.read ? [{ pair: p, seconds: p.replay.read.seconds }] : []));
  const readSpread = pairSpread(
    reads.map(({ pair, seconds }) => ({
      hub: pair.replay.events / seconds,
      limit: pair.replay.events / pair.copySeconds,
    })),
    'higher',
  );
  const figures: Figure[] = [
    medianFigure(
      `${name} replay`,
      pairs.map((p) => p.replay.eventsPerSec),
      'events/s',
      { limit: `${name} COPY limit`, ratioSpread },
    ),
    medianFigure(
      `${name} COPY limit`,
      pairs.map((p) => p.replay.events / p.copySeconds),
      'events/s',
    ),
    // The consumer alone, against the same COPY: the ceiling of the replay ratio above.
    ...(reads.length > 0
      ? [
          medianFigure(
            `${name} read limit`,
            reads.map(({ pair, seconds }) => pair.replay.events / seconds),
            'events/s',
            { limit: `${name} COPY limit`, ratioSpread: readSpread },
          ),
        ]
      : []),
  ];
  const note =
    `${name}: ${rows.toLocaleString('en-US')} rows in its tables after each slice; ` +
    `replay seconds ${pairs.map((p) => p.replay.seconds.toFixed(2)).join(', ')} ` +
    `(plus ${pairs.map((p) => p.replay.startSeconds.toFixed(2)).join(', ')} s to connect and be assigned its partitions, not counted); ` +
    `COPY seconds ${pairs.map((p) => p.copySeconds.toFixed(2)).join(', ')}; ` +
    `replay/COPY of each pair ${ratioSpread.values.map(fmtRatio).join(', ')}` +
    (reads.length > 0
      ? `; read seconds ${reads.map((r) => r.seconds.toFixed(2)).join(', ')}, ` +
        `read CPU µs/event ${pairs.map((p) => p.replay.read?.cpuUsPerEvent.toFixed(1) ?? '-').join(', ')}, ` +
        `read/COPY (the ceiling of replay/COPY) ${readSpread.values.map(fmtRatio).join(', ')}.`
      : '.');
  return { figures, note };
}

export async function replayScenario(env: BenchEnv): Promise<ScenarioResult> {
  const events = Math.max(1000, Math.round(REPLAY_SLICE_EVENTS * env.scale));
  const rounds = Math.max(1, env.slices);
  const pairs = new Map<string, ReplayPair[]>();
  let bar: SingleBar | null = null;
  let phase = '';
  const r = await runReplayBench({
    kafkaBrokers: env.stack.kafka.brokers,
    registryUrl: env.stack.registryUrl,
    databaseUrl: env.databaseUrl,
    events,
    rounds,
    readLimit: true,
    log: (l) => (l.trim() ? env.log(`replay: ${l}`) : undefined),
    progress: (p, done, total) => {
      if (p !== phase) {
        bar?.stop();
        phase = p;
        bar = progressBar(p === 'publish' ? 'replay: publish' : `replay: ${p}`, total, 'events');
      }
      bar?.update(done);
    },
    afterEach: async (p) => {
      bar?.stop();
      bar = null;
      phase = '';
      // The COPY slice right after the replay slice: the rows it produced, into fresh twins, once.
      const c = await measureCopyLimit(env.databaseUrl, p.schema, undefined, 1);
      const list = pairs.get(p.name) ?? [];
      list.push({ replay: p, rows: c.rows, copySeconds: c.seconds });
      pairs.set(p.name, list);
      env.log(
        `replay ${p.name} ${p.round + 1}/${rounds}: ${Math.round(p.eventsPerSec)} events/s; ` +
          (p.read ? `read limit ${Math.round(p.events / p.read.seconds)} events/s; ` : '') +
          `COPY ${Math.round(p.events / c.seconds)} events/s`,
      );
    },
  });
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const [name, list] of pairs) {
    const f = projectionFigures(name, list);
    figures.push(...f.figures);
    notes.push(f.note);
  }
  notes.push(`Published ${r.published.toLocaleString('en-US')} events in ${r.publishSeconds.toFixed(1)} s.`);
  return {
    scenario: '3. Replay: each projection from offset 0',
    setup:
      `${events.toLocaleString('en-US')} synthetic events (hospital-day generator: registrations, encounters, orders, results, ` +
      `merges) published once to 3 topics x 6 partitions. Each projection is built ${rounds} times from offset 0, each time into a ` +
      `fresh schema with its indexes in place and its own consumer group, in this process, timed from the partitions' ` +
      `assignment until its lag is 0 (polled every 10-200 ms, more often near the end; start-up seconds in the notes). ` +
      `Right after each build, its rows are exported (psql \\copy, format binary, untimed) and loaded into empty twins ` +
      `(same columns, constraints, indexes) with binary COPY over one open connection (pg-copy-streams), timed: ` +
      `events / COPY seconds is the limit. Between the two, the same log is read once more from offset 0 by the runner's ` +
      `client (kafkajs, the runner's fetch caps) and codec (its read model's skipped fields undecoded) with nothing behind ` +
      `them (no evolve, no Postgres), timed from the first record: the read limit, whose ratio to the COPY limit is the ` +
      `ceiling of the replay's. Replay, read and COPY values are medians ` +
      `over the ${rounds} slices (IQR beside them); the ratio is the median of the ${rounds} replay/COPY pairs' ratios.` +
      (env.scale !== 1
        ? ` BENCH_SCALE=${env.scale} (full size is ${REPLAY_SLICE_EVENTS.toLocaleString('en-US')} events per slice).`
        : ''),
    figures,
    notes,
  };
}
