import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  EVENT_CONTRACTS,
  EVENT_TYPES,
  TOPIC_CATALOG,
  assertValidEvent,
  avroTypeOf,
  type ClinicalEvent,
  type EventType,
} from '../../libs/events/index.js';
import { mapHl7Message, parseHeader } from '../../libs/hl7/map.js';
import { DEFAULT_IDENTITY_POLICY, identityPolicyFromSite } from '../../libs/identity/index.js';
import { loadSiteConfig, timeZoneFor } from '../../libs/site-config/index.js';
import {
  at,
  attachment,
  dischargeCancelled,
  hospitalDay,
  resulted,
  syntheticEvents,
  transferCancelled,
  transferred,
} from './hospital-day.js';
import {
  buildReadModels,
  partitionOf,
  writeSegment,
  type SegmentRecord,
  type WriterSchema,
} from './log-segment.js';

/**
 * Captures the log segment the replay test reads (test/replay-old-log.e2e.test.ts):
 * run INSIDE a checkout of the earlier revision, with this file and
 * log-segment.ts copied into its test/support/, so that every import below
 * is that revision's code (mappers, schemas, read models):
 *
 *   mkdir -p /tmp/old716 && git archive 716b293 | tar -x -C /tmp/old716 && ln -s "$PWD/node_modules" /tmp/old716/
 *   cp test/support/{capture-log-segment,log-segment}.ts /tmp/old716/test/support/
 *   (cd /tmp/old716 && npx tsx test/support/capture-log-segment.ts 716b293 "$OLDPWD/test/fixtures/log-segment-716b293")
 *
 * What it writes: the records that revision's adapters would have produced
 * for a realistic day (the HL7 corpus mapped by its mapper, the scripted
 * hospital day and a few hundred synthetic events) encoded with its writer
 * schemas, and the rows its read models built from them.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '../..');
/** Fixed ingest time: the mapper is pure, so the same bytes give the same events. */
const RECORDED_AT = Date.UTC(2026, 2, 3, 12);
/** Large reports (the 5 MiB and 16 MiB PDFs) would make the fixture large without exercising anything else. */
const MAX_MESSAGE_BYTES = 64 * 1024;

function hl7Files(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.hl7'))
    .sort()
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).size <= MAX_MESSAGE_BYTES);
}

/** The HL7 fixtures (default identity policy, UTC) and the conformance corpus under its own site configuration. */
function hl7Events(): ClinicalEvent[] {
  const out: ClinicalEvent[] = [];
  for (const file of hl7Files(join(ROOT, 'test/fixtures/hl7'))) {
    const o = mapHl7Message(readFileSync(file), {
      recordedAt: RECORDED_AT,
      policy: DEFAULT_IDENTITY_POLICY,
      rawMessageRef: null,
      timeZone: 'UTC',
    });
    if (o.kind === 'mapped') out.push(...o.events);
  }
  const site = loadSiteConfig(join(ROOT, 'test/conformance/site.yaml'));
  const policy = identityPolicyFromSite(site, {});
  for (const file of hl7Files(join(ROOT, 'test/conformance/messages'))) {
    const bytes = readFileSync(file);
    const h = parseHeader(bytes);
    const app = h?.sendingApplication.split(h.encodingCharacters[0] ?? '^')[0] ?? '';
    const fac = h?.sendingFacility.split(h.encodingCharacters[0] ?? '^')[0] ?? '';
    const timeZone = timeZoneFor(site, app, fac) ?? 'UTC';
    const o = mapHl7Message(bytes, { recordedAt: RECORDED_AT, policy, rawMessageRef: null, timeZone });
    if (o.kind === 'mapped') out.push(...o.events);
  }
  return out;
}

/** The scripted day, the undo events it lacks, an attachment-bearing report and synthetic volume. */
function scriptedEvents(): ClinicalEvent[] {
  const pdf = attachment('P1', 'oru-pdf', at(12, 30), Buffer.from('%PDF-1.4\n% replay fixture\n%%EOF\n'));
  return [
    ...hospitalDay(),
    transferred('P5', 'E5', '3NORTH', 'ICU', 'adt-5t', at(17, 0)),
    transferCancelled('P5', 'E5', '3NORTH', 'adt-5tc', at(17, 10)),
    dischargeCancelled('P2', 'E2', 'adt-2dc', at(13, 40)),
    pdf.stored,
    resulted('P1', 'R2P', 'O2', 'E1', 'xrchest', 'final', 'oru-pdf', at(12, 30), [pdf.observation]),
    ...syntheticEvents(240, 7),
  ];
}

function writerSchemas(): WriterSchema[] {
  return EVENT_TYPES.map((type, i) => {
    const c = EVENT_CONTRACTS[type];
    return { id: i + 1, type, topic: c.topic, subject: c.subject, schema: c.schema };
  });
}

/** What the codec writes: magic byte, schema id, Avro body of the event checked against its schema. */
function encode(e: ClinicalEvent, id: number): Buffer {
  assertValidEvent(e.type, e.data);
  const body = avroTypeOf(e.type).toBuffer(e.data);
  const head = Buffer.alloc(5);
  head.writeInt32BE(id, 1);
  return Buffer.concat([head, body]);
}

function main(): void {
  const [revision, out] = process.argv.slice(2);
  if (!revision || !out) throw new Error('usage: capture-log-segment.ts <revision> <output dir>');
  const schemas = writerSchemas();
  const idOf = new Map<EventType, number>(schemas.map((s) => [s.type as EventType, s.id]));
  const partitions = new Map<string, number>(TOPIC_CATALOG.map((t) => [t.name, t.partitions]));
  const offsets = new Map<string, number>();
  const events = [...hl7Events(), ...scriptedEvents()];
  const records: SegmentRecord[] = events.map((e) => {
    const topic = EVENT_CONTRACTS[e.type].topic;
    const key = e.data.patientId;
    const partition = partitionOf(topic, key, partitions.get(topic) ?? 1);
    const tp = `${topic}/${partition}`;
    const offset = offsets.get(tp) ?? 0;
    offsets.set(tp, offset + 1);
    return { topic, partition, offset, key, value: encode(e, idOf.get(e.type) ?? 0) };
  });
  const readModels = buildReadModels(
    events.map((event) => ({ event, topic: EVENT_CONTRACTS[event.type].topic })),
  );
  writeSegment(out, { revision, schemas, records }, readModels);
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
  process.stdout.write(`${records.length} records: ${JSON.stringify(Object.fromEntries(counts))}\n`);
}

main();
