// Scenario 4: the Avro codec through the registry path (Confluent wire
// format, schema ids cached after warm-up) against JSON stringify + parse
// of the same events, in the same process, alternating rounds so that
// machine noise hits both alike.
import { createEventCodec } from '../../libs/events/codec.js';
import { registerAllSchemas } from '../../libs/events/contracts.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import { createRegistryClient } from '../../libs/events/registry.js';
import { eventMix } from './events.js';
import type { BenchEnv, ScenarioResult } from './lib.js';

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

  // Warm-up: JIT both paths.
  for (let i = 0; i < 3; i++) {
    await avroRound();
    jsonRound();
  }
  let avroNs = 0n;
  let jsonNs = 0n;
  let avroN = 0;
  let jsonN = 0;
  let avroBytes = 0;
  let jsonBytes = 0;
  const deadline = Date.now() + env.seconds * 1000;
  env.log(`codec: ${events.length} events per round, alternating Avro and JSON for ${env.seconds}s`);
  while (Date.now() < deadline) {
    let t = process.hrtime.bigint();
    avroBytes = await avroRound();
    avroNs += process.hrtime.bigint() - t;
    avroN += events.length;
    t = process.hrtime.bigint();
    jsonBytes = jsonRound();
    jsonNs += process.hrtime.bigint() - t;
    jsonN += events.length;
  }
  const avroRate = avroN / (Number(avroNs) / 1e9);
  const jsonRate = jsonN / (Number(jsonNs) / 1e9);
  return {
    scenario: '4. Codec: Avro (registry path) vs JSON',
    setup:
      `${events.length} events of the benchmark mix (registrations, admissions, orders, 5-line results, discharges); ` +
      `3 warm-up rounds, then alternating Avro encode+decode and JSON stringify+parse rounds for ${env.seconds}s in one process.`,
    figures: [
      {
        name: 'Avro encode+decode',
        value: avroRate,
        unit: 'events/s',
        better: 'higher',
        limit: 'JSON stringify+parse',
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
    ],
  };
}
