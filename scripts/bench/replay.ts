// Scenario 3, replay: each projection rebuilt from offset 0 over the same
// published events (indexes in place), events/s; limit = binary COPY of the
// rows that projection produced into identical empty tables, expressed as
// the events/s the replay would reach if applying cost no more than loading
// its result.
import type { SingleBar } from 'cli-progress';
import { runReplayBench } from '../bench-replay.js';
import { measureCopyLimit } from './copy-limit.js';
import { progressBar, type BenchEnv, type Figure, type ScenarioResult } from './lib.js';

export const REPLAY_FULL_EVENTS = 1_000_000;

export async function replayScenario(env: BenchEnv): Promise<ScenarioResult> {
  const events = Math.max(1000, Math.round(REPLAY_FULL_EVENTS * env.scale));
  const figures: Figure[] = [];
  const notes: string[] = [];
  let bar: SingleBar | null = null;
  let phase = '';
  const r = await runReplayBench({
    kafkaBrokers: env.stack.kafka.brokers,
    registryUrl: env.stack.registryUrl,
    databaseUrl: env.databaseUrl,
    events,
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
      const name = p.name;
      const c = await measureCopyLimit(env.databaseUrl, p.schema);
      const copyEventsPerSec = p.events / c.seconds;
      figures.push(
        {
          name: `${name} replay`,
          value: p.eventsPerSec,
          unit: 'events/s',
          better: 'higher',
          limit: `${name} COPY limit`,
        },
        { name: `${name} COPY limit`, value: copyEventsPerSec, unit: 'events/s', better: 'higher' },
      );
      notes.push(
        `${name}: ${c.rows.toLocaleString('en-US')} rows in its tables; binary COPY loaded them in ${c.seconds.toFixed(2)} s ` +
          `(${Math.round(c.rowsPerSec).toLocaleString('en-US')} rows/s; median of ${c.runs.length} loads: ${c.runs.map((x) => x.toFixed(2)).join(', ')} s); ` +
          `replay took ${p.seconds.toFixed(1)} s.`,
      );
      env.log(
        `replay ${name}: ${Math.round(p.eventsPerSec)} events/s; COPY ${Math.round(copyEventsPerSec)} events/s`,
      );
    },
  });
  notes.push(`Published ${r.published.toLocaleString('en-US')} events in ${r.publishSeconds.toFixed(1)} s.`);
  return {
    scenario: '3. Replay: each projection from offset 0',
    setup:
      `${events.toLocaleString('en-US')} synthetic events (hospital-day generator: registrations, encounters, orders, results, ` +
      `merges) published once to 3 topics x 6 partitions, then each projection built from offset 0 into a fresh schema with ` +
      `its indexes in place, in this process, until its lag is 0 (checked every 200 ms). COPY limit = psql \\copy (format binary) ` +
      `of that schema's tables into empty twins (same columns, constraints, indexes), median of 3 loads, expressed as events / COPY seconds.` +
      (env.scale !== 1
        ? ` BENCH_SCALE=${env.scale} (full size is ${REPLAY_FULL_EVENTS.toLocaleString('en-US')}).`
        : ''),
    figures,
    notes,
  };
}
