import cliProgress from 'cli-progress';
import { formatTable } from './output.js';
import type { Command } from 'commander';
import { databaseEnv, kafkaEnv, loadConfig, logEnv, topicNamer, z } from '../libs/config/index.js';
import { assertSqlIdentifier } from '../libs/db/index.js';
import { HubError, toHubError } from '../libs/errors/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import { identityPolicyFromSite, isRegisteredSystem } from '../libs/identity/index.js';
import { dlqTopicFor } from '../libs/kafka/dlq.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { lagOf, tableHashes } from '../libs/projections/inspect.js';
import { rebuildReadModel, type RebuildProgress } from '../libs/projections/rebuild.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { listRegistry, readRegistry } from '../libs/projections/versions.js';
import { READ_MODEL_NAMES, readModelNamed, type ReadModelDefinition } from '../libs/read-models/index.js';
import { siteConfigFromEnv } from '../libs/site-config/index.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { cliDb, cliKafka, cliRegistry } from './env.js';

/** libs/identity isRegisteredSystem under HUB_SITE_CONFIG (and the deprecated identity variables). */
function registeredSystemsFromEnv(): (system: string) => boolean {
  const cfg = loadConfig(
    z.object({
      HUB_SITE_CONFIG: z.string().optional(),
      HUB_ENTERPRISE_ID_SYSTEMS: z.string().optional(),
      HUB_AUTHORITY_ALIASES: z.string().optional(),
    }),
  );
  const policy = identityPolicyFromSite(siteConfigFromEnv(cfg.HUB_SITE_CONFIG), cfg);
  return (system) => isRegisteredSystem(system, policy);
}

function entryOf(name: string): ReadModelDefinition {
  const e = readModelNamed(name);
  if (!e) {
    throw new HubError(
      'HUB_INPUT_INVALID',
      `unknown projection ${JSON.stringify(name)}; one of: ${READ_MODEL_NAMES.join(', ')}`,
    );
  }
  return e;
}

function env() {
  return loadConfig(z.object({ ...kafkaEnv, ...databaseEnv, ...logEnv }));
}

function connect() {
  const cfg = env();
  const logger = createLogger({ name: 'hub-projections', level: 'error' });
  const kafka = cliKafka(cfg, 'hub-projections');
  const db = cliDb(cfg);
  const topic = topicNamer(cfg.HUB_TOPIC_SUFFIX);
  return { cfg, logger, kafka, db, topic, topics: clinicalTopics(topic) };
}

const fmtRate = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));

/** A progress display: a live bar on a terminal, a line every few seconds otherwise (CI logs). */
function progressReporter(json: boolean): { update(p: RebuildProgress): void; stop(): void } {
  if (json) return { update: () => undefined, stop: () => undefined };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format:
          '{phase} [{bar}] {percentage}% | {value}/{total} events | {rate} ev/s | lag {lag} | ETA {etaText}',
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(p) {
        const payload = {
          phase: p.phase.padEnd(9),
          rate: fmtRate(p.rate),
          lag: p.lag,
          etaText: p.etaSeconds === null ? '?' : `${Math.ceil(p.etaSeconds)}s`,
        };
        if (!started) {
          bar.start(Math.max(p.total, 1), p.done, payload);
          started = true;
        }
        bar.setTotal(Math.max(p.total, 1));
        bar.update(p.done, payload);
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update(p) {
      const now = Date.now();
      if (p.phase === 'replaying' && now - last < 2000) return;
      last = now;
      process.stderr.write(
        `${p.phase}: ${p.done}/${p.total} events, ${fmtRate(p.rate)} ev/s, lag ${p.lag}, ETA ${
          p.etaSeconds === null ? '?' : `${Math.ceil(p.etaSeconds)}s`
        }\n`,
      );
    },
    stop: () => undefined,
  };
}

/** One row per read model (all, or those named): versions, the serving projector, lag, applied events. */
async function statusRows(c: ReturnType<typeof connect>, only: readonly string[]) {
  const rows = (await listRegistry(c.db)).filter((r) => only.length === 0 || only.includes(r.stable));
  const out: Record<string, unknown>[] = [];
  for (const r of rows) {
    const l = await lagOf(c.db, c.kafka, r.active_schema, c.topics).catch(() => null);
    const applied = (await c.db
      .withSchema(r.active_schema)
      .from('applied_events')
      .count<{ n: string }[]>({ n: '*' })
      .catch(() => [{ n: '?' }])) as { n: string }[];
    out.push({
      readModel: r.stable,
      projection: r.projection,
      active: r.active_schema,
      serving: r.serving_schema,
      servingSeenSecondsAgo: r.serving_at
        ? Math.round((Date.now() - new Date(r.serving_at).getTime()) / 1000)
        : null,
      lag: l ? Number(l.lag) : null,
      applied: Number(applied[0]?.n ?? 0),
    });
  }
  return out;
}

/** `hub projections status|rebuild|hash`: versions of the read models, and rebuilding one without downtime. */
export function registerProjectionsCommands(program: Command): void {
  const cmd = program
    .command('projections')
    .description('read models (billing, analytics, portal): status, rebuild without downtime, content hash');
  const json = () => Boolean(program.opts()['json']);

  cmd
    .command('status')
    .description('each read model: active version, the version its projector serves, lag, applied events')
    .argument('[stable...]', 'only these read models (stable schema names)')
    .action(async (only: string[]) => {
      const c = connect();
      try {
        const out = await statusRows(c, only);
        process.stdout.write(json() ? `${JSON.stringify(out, null, 2)}\n` : `${formatTable(out)}\n`);
      } catch (err) {
        throw toHubError(err, 'HUB_DB_UNAVAILABLE');
      } finally {
        await c.db.destroy();
      }
    });

  cmd
    .command('rebuild')
    .description(
      'build the next version from offset 0 while the current one serves; switch atomically when caught up; drop the old one',
    )
    .argument('<name>', `one of ${READ_MODEL_NAMES.join(', ')}`)
    .option('--schema <stable>', 'stable schema of the read model (default: the name)')
    .option('--keep-old', 'keep the previous version schema after the switch')
    .option('--handover-timeout <seconds>', 'wait this long for a running projector to move over', '60')
    .action(async (name: string, o: { schema?: string; keepOld?: boolean; handoverTimeout: string }) => {
      const entry = entryOf(name);
      const stable = assertSqlIdentifier(o.schema ?? name);
      const c = connect();
      const codec = createEventCodec(cliRegistry(c.cfg));
      const producer = createEventProducer({ kafka: c.kafka, codec });
      const progress = progressReporter(json());
      try {
        await producer.connect();
        const result = await rebuildReadModel({
          db: c.db,
          kafka: c.kafka,
          codec,
          producer,
          logger: c.logger,
          // As projector-analytics: the site configuration says which authorities are registered.
          projection: entry.projection(c.topics, { registeredSystems: registeredSystemsFromEnv }),
          stable,
          dlqTopic: dlqTopicFor(`projector-${name}`, c.topic),
          hooks: entry.hooks,
          keepOld: Boolean(o.keepOld),
          handoverTimeoutMs: Number(o.handoverTimeout) * 1000,
          onProgress: (p) => progress.update(p),
        });
        progress.stop();
        process.stdout.write(
          json()
            ? `${JSON.stringify(result, null, 2)}\n`
            : `rebuilt ${result.stable}: ${result.from ?? '(none)'} -> ${result.to}, ${result.events} events in ${result.seconds.toFixed(1)}s (${fmtRate(result.eventsPerSecond)} ev/s)${result.droppedOld ? `, dropped ${result.from}` : result.from ? `, kept ${result.from}` : ''}\n`,
        );
      } finally {
        progress.stop();
        await producer.disconnect().catch(() => undefined);
        await c.db.destroy();
      }
    });

  cmd
    .command('hash')
    .description('digest of every content table of the active version (equal digests = equal read models)')
    .argument('<name>', `one of ${READ_MODEL_NAMES.join(', ')}`)
    .option('--schema <stable>', 'stable schema of the read model (default: the name)')
    .action(async (name: string, o: { schema?: string }) => {
      entryOf(name);
      const stable = assertSqlIdentifier(o.schema ?? name);
      const c = connect();
      try {
        const row = await readRegistry(c.db, stable);
        if (!row) throw new HubError('HUB_NOT_FOUND', `no read model ${stable}; start its projector first`);
        const hashes = await tableHashes(c.db, row.active_schema);
        process.stdout.write(
          json()
            ? `${JSON.stringify({ schema: row.active_schema, tables: hashes }, null, 2)}\n`
            : `${formatTable(Object.entries(hashes).map(([table, h]) => ({ table, rowsAndMd5: h })))}\n`,
        );
      } finally {
        await c.db.destroy();
      }
    });
}
