import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, eventually, uniqueId, type TestContext } from '../../test/support/harness.js';
import { EVENT_CONTRACTS, type ClinicalEvent, type EventType } from '../events/index.js';
import { DEFAULT_IDENTITY_POLICY } from '../identity/index.js';
import { mapHl7Message } from './map.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/hl7');

/** Every event the corpus maps to, in corpus order. */
function mapCorpus(recordedAt: number): ClinicalEvent[] {
  const events: ClinicalEvent[] = [];
  for (const f of readdirSync(FIXTURES).sort()) {
    if (!f.endsWith('.hl7') || f.startsWith('bad-')) continue;
    const out = mapHl7Message(readFileSync(join(FIXTURES, f)), {
      recordedAt,
      policy: DEFAULT_IDENTITY_POLICY,
      rawMessageRef: `fixture:${f}`,
      timeZone: 'UTC',
    });
    if (out.kind !== 'mapped') throw new Error(`${f} was refused: ${out.refusal.error.message}`);
    events.push(...out.events);
  }
  return events;
}

/**
 * The mapper's output against the real registry and broker: every event of
 * the corpus (including the new A12/A13 schemas) encodes with the registered
 * contract, is keyed by the patient, and decodes back to exactly what was
 * mapped; a re-mapped resend carries the same event ids.
 */
describe('HL7 mapping → real Kafka and registry', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await createTestContext('hl7map');
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  it('given the corpus mapped twice, when published and read back, then events round-trip and ids de-duplicate', async () => {
    const first = mapCorpus(1_700_000_000_000);
    const resend = mapCorpus(1_700_000_999_000);
    expect(resend.map((e) => e.data.meta.eventId)).toEqual(first.map((e) => e.data.meta.eventId));
    const types = new Set(first.map((e) => e.type));
    for (const t of [
      'EncounterTransferCancelled',
      'EncounterDischargeCancelled',
      'PatientsMerged',
      'ResultCorrected',
    ]) {
      expect(types.has(t as EventType)).toBe(true);
    }

    await ctx.producer.publish(first);
    await ctx.producer.publish(resend);

    const topics = [...new Set(Object.values(EVENT_CONTRACTS).map((c) => ctx.topic(c.topic)))];
    const read: { key: string; event: ClinicalEvent }[] = [];
    const consumer = ctx.kafka.consumer({ groupId: uniqueId('hl7map-reader') });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          if (!message.value) return;
          read.push({ key: message.key?.toString() ?? '', event: await ctx.codec.decode(message.value) });
        },
      });
      await eventually(() => Promise.resolve(read.length >= first.length * 2 ? true : undefined), {
        what: 'all published events read back',
      });
    } finally {
      await consumer.disconnect();
    }

    expect(read).toHaveLength(first.length * 2);
    for (const { key, event } of read) expect(key).toBe(event.data.patientId);
    // The log holds the resend; consumers de-duplicate by event id, which leaves exactly the first mapping.
    const byId = new Map(read.map((r) => [r.event.data.meta.eventId, r.event]));
    expect(byId.size).toBe(first.length);
    for (const e of first) {
      const back = byId.get(e.data.meta.eventId);
      expect(back?.type).toBe(e.type);
      expect({ ...back?.data, meta: { ...back?.data.meta, recordedAt: 0 } }).toEqual({
        ...e.data,
        meta: { ...e.data.meta, recordedAt: 0 },
      });
    }
  });
});
