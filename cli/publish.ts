/** `hub publish`: events from a file or stdin onto their catalog topics, filled and validated first. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { topicNamer } from '../libs/config/index.js';
import { HubError } from '../libs/errors/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import {
  EVENT_CONTRACTS,
  assertValidEvent,
  avroTypeOf,
  deterministicEventId,
  isEventType,
  type ClinicalEvent,
} from '../libs/events/index.js';
import { createEventProducer, type PublishedEvent } from '../libs/kafka/producer.js';
import { cliKafka, cliRegistry, commonEnv } from './env.js';
import { formatTable, isJsonOutput, print } from './output.js';

/** Fills what a caller may omit (recordedAt, eventType, defaults, a deterministic eventId). */
export function completeEvent(input: unknown, index: number, now: number): ClinicalEvent {
  if (typeof input !== 'object' || input === null) {
    throw new HubError('HUB_INPUT_INVALID', `item ${index}: expected {"type": ..., "data": {...}}`);
  }
  const { type, data } = input as { type?: unknown; data?: unknown };
  if (typeof type !== 'string' || !isEventType(type)) {
    throw new HubError('HUB_INPUT_INVALID', `item ${index}: unknown event type ${JSON.stringify(type)}`);
  }
  if (typeof data !== 'object' || data === null) {
    throw new HubError('HUB_INPUT_INVALID', `item ${index}: "data" must be an object`);
  }
  const d = data as { meta?: Record<string, unknown> };
  const meta = { ...(d.meta ?? {}) };
  meta['eventType'] = type;
  meta['recordedAt'] ??= now;
  if (meta['eventId'] === undefined) {
    const src = (meta['source'] ?? {}) as { system?: unknown; facility?: unknown; messageId?: unknown };
    if (typeof src.system !== 'string' || typeof src.messageId !== 'string') {
      throw new HubError(
        'HUB_INPUT_INVALID',
        `item ${index}: give meta.eventId, or meta.source.system and meta.source.messageId so that a resend is de-duplicated`,
      );
    }
    meta['eventId'] = deterministicEventId([
      src.system,
      typeof src.facility === 'string' ? src.facility : '',
      src.messageId,
      type,
    ]);
  }
  const filled = avroTypeOf(type).clone({ ...d, meta }) as unknown;
  assertValidEvent(type, filled);
  return { type, data: filled } as ClinicalEvent;
}

function parseEventsInput(text: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) return JSON.parse(trimmed) as unknown[];
  if (trimmed.startsWith('{') && !trimmed.includes('\n{')) {
    try {
      return [JSON.parse(trimmed)];
    } catch {
      // fall through to NDJSON
    }
  }
  return trimmed
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as unknown);
}

/** One row per event: the producer answers one PublishedEvent per event, in order. */
function publishedTable(events: readonly ClinicalEvent[], published: readonly PublishedEvent[]): string {
  return formatTable(
    published.map((p, i) => {
      const e = events[i];
      if (!e) throw new HubError('HUB_INTERNAL', `${published.length} events published for ${events.length}`);
      return { type: e.type, topic: p.topic, eventId: p.eventId };
    }),
  );
}

async function runPublish(json: boolean, file: string): Promise<void> {
  const cfg = commonEnv();
  const text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  let items: unknown[];
  try {
    items = parseEventsInput(text);
  } catch (cause) {
    throw new HubError('HUB_INPUT_INVALID', `${file}: not JSON, a JSON array or NDJSON`, { cause });
  }
  const now = Date.now();
  const events = items.map((it, i) => completeEvent(it, i + 1, now));
  const codec = createEventCodec(cliRegistry(cfg));
  const topic = topicNamer(cfg.HUB_TOPIC_SUFFIX);
  const producer = createEventProducer({
    kafka: cliKafka(cfg),
    codec,
    retries: 3,
    topicFor: (t) => topic(EVENT_CONTRACTS[t].topic),
  });
  await producer.connect();
  try {
    const published = await producer.publish(events);
    print(json, published, () => publishedTable(events, published));
  } finally {
    await producer.disconnect();
  }
}

export function registerPublishCommand(program: Command): void {
  program
    .command('publish')
    .description(
      'publish events from a JSON file or stdin ("-"): {"type","data"} objects, an array, or NDJSON',
    )
    .argument('<file>', 'path, or - for stdin')
    .action((file: string) => runPublish(isJsonOutput(program), file));
}
