// Scenario 4: the Avro codec through the registry path (Confluent wire
// format, schema ids cached after warm-up) against JSON stringify + parse
// of the same events, in the same process, alternating rounds (ABBA) so that
// machine noise hits both alike; the ratio is the median over round pairs.
import { createEventCodec } from '../../libs/events/codec.js';
import { registerAllSchemas } from '../../libs/events/contracts.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { eventMix } from './events.js';
import { fmtRatio, pairSpread, type BenchEnv, type ScenarioResult } from './lib.js';

/** Fewest Avro/JSON round pairs, however short BENCH_SECONDS is: the IQR needs five. */
const MIN_PAIRS = 5;

/** Seconds one round of `f` took. */
async function timed(f: () => unknown): Promise<number> {
  const t = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export async function codecScenario(env: BenchEnv): Promise<ScenarioResult> {
  const registry = createRegistryClient(env.stack.registryUrl);
  await registerAllSchemas(registry);
  const codec = createEventCodec(registry);
  await codec.warmUp();
  const events: ClinicalEvent[] = eventMix(9_000);

  async function avroRound(): Promise<number> {
    let bytes = 0;
    for (const e of events) {
      const buf = await codec.encode(e);
      bytes += buf.length;
      await codec.decode(buf);
    }
    return bytes;
  }
  function jsonRound(): number {
    let bytes = 0;
    for (const e of events) {
      const buf = Buffer.from(JSON.stringify(e.data));
      bytes += buf.length;
      JSON.parse(buf.toString('utf8'));
    }
    return bytes;
  }

  // Warm-up: JIT both paths (and the bytes per event, which do not vary).
  let avroBytes = 0;
  let jsonBytes = 0;
  for (let i = 0; i < 3; i++) {
    avroBytes = await avroRound();
    jsonBytes = jsonRound();
  }
  // Seconds of each round pair; Avro first in even pairs, JSON first in odd ones (ABBA).
  const pairs: { avro: number; json: number }[] = [];
  const deadline = Date.now() + env.seconds * 1000;
  env.log(`codec: ${events.length} events per round, alternating Avro and JSON for ${env.seconds}s`);
  while (Date.now() < deadline || pairs.length < MIN_PAIRS) {
    const avroFirst = pairs.length % 2 === 0;
    const first = await timed(avroFirst ? avroRound : jsonRound);
    const second = await timed(avroFirst ? jsonRound : avroRound);
    pairs.push(avroFirst ? { avro: first, json: second } : { avro: second, json: first });
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const avroRate = (events.length * pairs.length) / sum(pairs.map((p) => p.avro));
  const jsonRate = (events.length * pairs.length) / sum(pairs.map((p) => p.json));
  // Events/s per round is events / seconds, so Avro/JSON of a pair is JSON seconds / Avro seconds.
  const ratioSpread = pairSpread(
    pairs.map((p) => ({ hub: events.length / p.avro, limit: events.length / p.json })),
    'higher',
  );
  return {
    scenario: '4. Codec: Avro (registry path) vs JSON',
    setup:
      `${events.length} events of the benchmark mix (registrations, admissions, orders, 5-line results, discharges); ` +
      `3 warm-up rounds, then Avro encode+decode and JSON stringify+parse rounds alternating (ABBA) for ${env.seconds}s ` +
      `(at least ${MIN_PAIRS} pairs) in one process; values pooled, ratio = median of the ${pairs.length} round pairs' ratios with its IQR.`,
    figures: [
      {
        name: 'Avro encode+decode',
        value: avroRate,
        unit: 'events/s',
        better: 'higher',
        limit: 'JSON stringify+parse',
        ratioSpread,
      },
      { name: 'JSON stringify+parse', value: jsonRate, unit: 'events/s', better: 'higher' },
      {
        name: 'Avro bytes/event',
        value: avroBytes / events.length,
        unit: 'B',
        better: 'lower',
        limit: 'JSON bytes/event',
      },
      { name: 'JSON bytes/event', value: jsonBytes / events.length, unit: 'B', better: 'lower' },
    ],
    notes: [
      'Avro encode validates each event against its contract first (as the producer does); JSON does not validate.',
      `Avro/JSON ratio of each round pair: ${ratioSpread.values.map(fmtRatio).join(', ')}.`,
    ],
  };
}
