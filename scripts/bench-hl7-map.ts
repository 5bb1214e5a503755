/**
 * Throughput of the pure HL7 mapper (no I/O): decode + parse + map + Avro
 * validation of every event, over the test corpus, in one thread.
 *
 *   npx tsx scripts/bench-hl7-map.ts [messages]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mapHl7Message } from '../libs/hl7/map.js';
import { DEFAULT_IDENTITY_POLICY } from '../libs/identity/index.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '../test/fixtures/hl7');
const corpus = readdirSync(dir)
  .filter((f) => f.endsWith('.hl7') && !f.startsWith('bad-'))
  .map((f) => readFileSync(join(dir, f)));
const ctx = { recordedAt: 0, policy: DEFAULT_IDENTITY_POLICY, rawMessageRef: null, timeZone: 'UTC' };
const n = Number(process.argv[2] ?? 50_000);
/** The corpus over and over. */
const message = (i: number): Buffer => {
  const m = corpus[i % corpus.length];
  if (!m) throw new Error(`no .hl7 messages in ${dir}`);
  return m;
};

for (let i = 0; i < 2_000; i++) mapHl7Message(message(i), ctx);
let events = 0;
const started = performance.now();
for (let i = 0; i < n; i++) {
  const out = mapHl7Message(message(i), ctx);
  if (out.kind === 'mapped') events += out.events.length;
}
const s = (performance.now() - started) / 1000;
console.log(
  `${n} messages (${events} events) in ${s.toFixed(2)} s: ${Math.round(n / s)} msg/s, ` +
    `${((s / n) * 1e6).toFixed(0)} µs/msg, one thread; corpus ${corpus.length} messages; ${cpus().length} cpus`,
);
