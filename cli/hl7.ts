import type { Command } from 'commander';
import { kafkaEnv, loadConfig, logEnv, topicNamer, z } from '../libs/config/index.js';
import { HubError } from '../libs/errors/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import { INGEST_TOPICS } from '../libs/events/contracts.js';
import { EVENT_CONTRACTS } from '../libs/events/index.js';
import { mapHl7Message } from '../libs/hl7/map.js';
import { identityEnvDeprecation, identityPolicyFromSite } from '../libs/identity/index.js';
import { senderTimeZones, siteConfigFromEnv } from '../libs/site-config/index.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { readTopic } from '../libs/hl7/raw-store.js';
import { remap, selectRaw, type RemapItem, type RemapSelection } from '../libs/hl7/remap.js';
import { cliKafka, cliRegistry } from './env.js';

function instant(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (!Number.isFinite(t)) throw new HubError('HUB_INPUT_INVALID', `${flag}: expected an ISO-8601 instant`);
  return t;
}

interface RemapFlags {
  since?: string;
  until?: string;
  controlIds?: string;
  dryRun?: boolean;
}

/** Which raw messages the flags pick; refuses an empty or missing selection. */
function remapSelection(o: RemapFlags): RemapSelection {
  const sel: RemapSelection = {};
  const since = instant('--since', o.since);
  const until = instant('--until', o.until);
  if (since !== undefined) sel.since = since;
  if (until !== undefined) sel.until = until;
  if (o.controlIds !== undefined) {
    sel.controlIds = o.controlIds
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (sel.controlIds.length === 0) throw new HubError('HUB_INPUT_INVALID', '--control-ids is empty');
  }
  if (sel.since === undefined && sel.until === undefined && !sel.controlIds) {
    throw new HubError('HUB_INPUT_INVALID', 'give --since/--until and/or --control-ids');
  }
  return sel;
}

function printRemap(
  items: readonly RemapItem[],
  o: { json: boolean; dryRun: boolean; scanned: number; rawTopic: string },
): void {
  if (o.json) {
    process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
    return;
  }
  for (const i of items) {
    process.stdout.write(
      `${i.controlId.padEnd(20)} ${i.messageType.padEnd(9)} ${i.outcome.padEnd(8)} events=${i.events} ${i.detail}\n`,
    );
  }
  const events = items.reduce((n, i) => n + i.events, 0);
  process.stderr.write(
    `${items.length} message(s) of ${o.scanned} in ${o.rawTopic} re-mapped, ${events} event(s) ${o.dryRun ? 'not published (dry run)' : 'published'}\n`,
  );
}

/** Reads the raw topic, re-maps the selection as the adapter would (same site configuration) and publishes. */
async function runRemap(o: RemapFlags, json: boolean): Promise<void> {
  const sel = remapSelection(o);
  const cfg = loadConfig(
    z.object({
      ...kafkaEnv,
      ...logEnv,
      /** The adapter's site configuration: the same zones and authorities as when it first mapped. */
      HUB_SITE_CONFIG: z.string().optional(),
      /** Deprecated (one release): use the site configuration. */
      HUB_ENTERPRISE_ID_SYSTEMS: z.string().optional(),
      HUB_AUTHORITY_ALIASES: z.string().optional(),
    }),
  );
  // As the adapter: refuses without a time zone rather than re-read local times as UTC.
  const site = siteConfigFromEnv(cfg.HUB_SITE_CONFIG);
  const timeZoneFor = senderTimeZones(site, cfg.HUB_SITE_CONFIG);
  const policy = identityPolicyFromSite(site, cfg);
  const deprecation = identityEnvDeprecation(cfg);
  if (deprecation) process.stderr.write(`warning: ${deprecation}\n`);
  const topic = topicNamer(cfg.HUB_TOPIC_SUFFIX);
  const rawTopic = topic(INGEST_TOPICS.hl7Raw);
  const kafka = cliKafka(cfg, 'hub-cli-hl7');
  const records = await readTopic(kafka, rawTopic).catch((err: unknown) => {
    throw err instanceof HubError
      ? err
      : new HubError('HUB_KAFKA_UNAVAILABLE', `could not read ${rawTopic}`, { cause: err });
  });
  const selected = selectRaw(records, sel);
  const producer = o.dryRun
    ? null
    : createEventProducer({
        kafka,
        codec: createEventCodec(cliRegistry(cfg)),
        retries: 3,
        topicFor: (t) => topic(EVENT_CONTRACTS[t].topic),
      });
  await producer?.connect();
  try {
    const items = await remap(selected, { mapper: mapHl7Message, policy, timeZoneFor, producer, rawTopic });
    printRemap(items, { json, dryRun: Boolean(o.dryRun), scanned: records.length, rawTopic });
  } finally {
    await producer?.disconnect();
  }
}

/** `hub hl7 …`: operations on the HL7 adapter's raw inbound topic. */
export function registerHl7Commands(program: Command): void {
  const hl7 = program.command('hl7').description('HL7 v2 adapter: raw message retention and re-mapping');
  hl7
    .command('remap')
    .description(
      're-read raw HL7 messages (hl7.raw.v1) and re-publish their events through the current mapper; same deterministic event ids',
    )
    .option('--since <iso>', 'received at or after this instant')
    .option('--until <iso>', 'received before this instant')
    .option('--control-ids <ids>', 'comma-separated MSH-10 values')
    .option('--dry-run', 'map and report, publish nothing')
    .action((o: RemapFlags) => runRemap(o, Boolean(program.opts()['json'])));
}
