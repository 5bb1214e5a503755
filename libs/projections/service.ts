import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import { createProjectionRunner, projectionGroupId, type Projection } from './runner.js';
import { toHubError, type HubError } from '../errors/index.js';
import type { EventCodec } from '../events/codec.js';
import { createHttpApp, postgresReady } from '../http/index.js';
import { operatorRoutes } from '../http/operator.js';
import type { TokenVerifier } from '../auth/jwt.js';
import { ensureTopics } from '../kafka/admin.js';
import type { KafkaClient } from '../kafka/client.js';
import type { ConsumerRunner } from '../kafka/consumer.js';
import { deleteGroupIfUnused } from '../kafka/groups.js';
import type { EventProducer } from '../kafka/producer.js';
import type { Logger } from '../telemetry/logger.js';
import { consumerMetricsHook, type HubMetrics } from '../telemetry/metrics.js';
import { markServing, readRegistry, resolveActiveVersion, type VersionHooks } from './versions.js';

export interface ProjectorDeps {
  db: Knex;
  kafka: KafkaClient;
  codec: EventCodec;
  producer: EventProducer;
  logger: Logger;
  metrics: HubMetrics;
  clock?: () => number;
  /** The consumer gave up after its bounded retries (already not-ready): main.ts should exit non-zero. */
  onFatal?(err: HubError): void;
  /**
   * Verifies operator tokens for the operator routes (/version, /views).
   * Without it those routes answer 401 to everyone: closed, never open.
   */
  operatorVerifier?: TokenVerifier;
}

export interface ProjectorConfig {
  /** Stable schema readers use; versions live in `<stable>_vN`. */
  stableSchema: string;
  dlqTopic: string;
  /** Consumer group prefix; the version schema is appended so that each version has its own group. */
  groupPrefix?: string;
  stallAfterMs?: number;
  /** How often to check whether a rebuild switched the active version. */
  followEveryMs?: number;
  /** Events a transaction needs to go by binary COPY (runner.ts BULK_MIN_EVENTS). */
  bulkMinEvents?: number;
}

export interface ProjectorService {
  http: FastifyInstance;
  /** The version schema currently being written (null before start). */
  activeSchema(): string | null;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A projection runner wired to the hub's metrics (dead letters, events
 * applied, batch lag and duration): the consumer loop of every projector and
 * of patient-directory.
 */
export function meteredProjectionRunner(
  deps: ProjectorDeps,
  o: {
    projection: Projection;
    schema: string;
    groupId?: string;
    dlqTopic: string;
    logger: Logger;
    onFatal(err: HubError): void;
    bulkMinEvents?: number;
  },
): ConsumerRunner {
  const groupId = o.groupId ?? projectionGroupId(o.projection.name, o.schema);
  return createProjectionRunner({
    projection: o.projection,
    schema: o.schema,
    ...(o.groupId ? { groupId: o.groupId } : {}),
    db: deps.db,
    kafka: deps.kafka,
    codec: deps.codec,
    producer: deps.producer,
    dlqTopic: o.dlqTopic,
    logger: o.logger,
    onDeadLetter: (dl) => deps.metrics.deadLetters.inc({ consumer: dl.consumer, reason: dl.reasonCode }),
    onApplied: (topic, n) => deps.metrics.eventsApplied.inc({ consumer: o.projection.name, topic }, n),
    onTransaction: (path) => deps.metrics.projectionTransactions.inc({ consumer: o.projection.name, path }),
    onBatch: consumerMetricsHook(deps.metrics),
    onFenced: () => deps.metrics.consumerFencedBatches.inc({ consumer: groupId }),
    onAssigned: () => deps.metrics.consumerAssignments.inc({ consumer: groupId }),
    onPause: (p) => {
      deps.metrics.consumerPaused.set({ consumer: p.consumer }, p.paused ? 1 : 0);
      if (!p.paused)
        deps.metrics.consumerPausedSeconds.inc({ consumer: p.consumer, reason: p.reasonCode }, p.seconds);
    },
    onFatal: o.onFatal,
    // A service's group lives as long as the service: tools show its lag.
    commitGroupOffsets: true,
    ...(o.bulkMinEvents === undefined ? {} : { bulkMinEvents: o.bulkMinEvents }),
  });
}

/** A metered runner, started; a half-started one is let go, so that start() can be tried again. */
async function startedRunner(
  deps: ProjectorDeps,
  o: Parameters<typeof meteredProjectionRunner>[1],
): Promise<ConsumerRunner> {
  const r = meteredProjectionRunner(deps, o);
  try {
    await r.start();
  } catch (err) {
    await r.stop().catch(() => undefined);
    throw err;
  }
  return r;
}

/**
 * /health, /ready (Postgres answers; the consumer started, has not given up
 * and made progress within `stallAfterMs`), /metrics, and /version for
 * operators only. The port serves no read model: PHI is read through the
 * query API, scoped and audited.
 */
function projectorHttp(
  deps: ProjectorDeps,
  log: Logger,
  o: {
    stallAfterMs: number;
    state(): { fatal: HubError | null; runner: ConsumerRunner | null };
    version(): { stable: string; schema: string | null };
  },
): FastifyInstance {
  const clock = deps.clock ?? Date.now;
  const http = createHttpApp({
    logger: log,
    metrics: deps.metrics.registry,
    codeOnlyNotFound: true,
    readiness: {
      postgres: postgresReady(deps.db),
      consumer: () => {
        const { fatal, runner } = o.state();
        if (fatal) return Promise.resolve({ ok: false, detail: fatal.code });
        if (!runner) return Promise.resolve({ ok: false, detail: 'starting' });
        const idle = clock() - runner.lastProgressAt();
        return Promise.resolve(
          idle < o.stallAfterMs ? { ok: true } : { ok: false, detail: `no progress for ${idle} ms` },
        );
      },
    },
  });
  void http.register(operatorRoutes, {
    verifier: deps.operatorVerifier ?? null,
    routes: (scope) => scope.get('/version', () => o.version()),
  });
  return http;
}

/**
 * The shared body of the projector services (portal, billing, analytics,
 * patient-directory): a projection runner on the active version of a read
 * model, following the registry across rebuilds, with /health, /ready and
 * /metrics. Built from injected clients; config, connections and signals are
 * the service kit's (libs/service), through each main.ts.
 */
export function buildProjectorService(
  deps: ProjectorDeps,
  cfg: ProjectorConfig,
  projection: Projection,
  hooks: VersionHooks = {},
): ProjectorService {
  const log = deps.logger.child({ svc: `projector-${projection.name}` });
  let runner: ConsumerRunner | null = null;
  let schema: string | null = null;
  let fatal: HubError | null = null;
  let follow: NodeJS.Timeout | null = null;
  let switching: Promise<void> | null = null;
  let stopped = false;

  const groupOf = (s: string) => `${cfg.groupPrefix ?? 'hub.projection'}.${projection.name}.${s}`;

  async function attach(s: string): Promise<void> {
    runner = await startedRunner(deps, {
      projection,
      schema: s,
      groupId: groupOf(s),
      dlqTopic: cfg.dlqTopic,
      logger: log,
      ...(cfg.bulkMinEvents === undefined ? {} : { bulkMinEvents: cfg.bulkMinEvents }),
      onFatal: (err) => {
        fatal = err;
        deps.onFatal?.(err);
      },
    });
    schema = s;
    await markServing(deps.db, cfg.stableSchema, s);
    log.info({ schema: s }, 'serving version');
  }

  async function checkSwitch(): Promise<void> {
    const row = await readRegistry(deps.db, cfg.stableSchema);
    if (stopped || !row || row.active_schema === schema) {
      if (row && schema) await markServing(deps.db, cfg.stableSchema, schema);
      return;
    }
    log.info({ from: schema, to: row.active_schema }, 'active version switched, moving over');
    const old = runner;
    const oldSchema = schema;
    runner = null;
    if (old) await old.stop();
    // The new version already holds its own checkpoints: resuming there neither skips nor repeats.
    await resolveActiveVersion(deps.db, cfg.stableSchema, projection, hooks);
    await attach(row.active_schema);
    // The old version's group (with its committed offsets) would otherwise stay
    // listed by `hub status` and lag exporters, its lag growing, for days.
    if (oldSchema && oldSchema !== schema) {
      await deleteGroupIfUnused(deps.kafka, groupOf(oldSchema)).catch((err: unknown) =>
        log.warn({ code: toHubError(err).code }, 'could not delete the consumer group of the old version'),
      );
    }
  }

  const http = projectorHttp(deps, log, {
    stallAfterMs: cfg.stallAfterMs ?? 60_000,
    state: () => ({ fatal, runner }),
    version: () => ({ stable: cfg.stableSchema, schema }),
  });

  return {
    http,
    activeSchema: () => schema,
    async start() {
      await ensureTopics(deps.kafka, [{ name: cfg.dlqTopic, partitions: 1, retentionMs: -1 }]);
      const s = await resolveActiveVersion(deps.db, cfg.stableSchema, projection, hooks);
      await attach(s);
      follow = setInterval(() => {
        if (switching) return;
        switching = checkSwitch()
          .catch((err: unknown) => {
            log.error({ code: toHubError(err).code }, 'could not follow the active version');
          })
          .finally(() => {
            switching = null;
          });
      }, cfg.followEveryMs ?? 2000);
      follow.unref();
    },
    async stop() {
      stopped = true;
      if (follow) clearInterval(follow);
      if (switching) await switching;
      const r = runner;
      runner = null;
      if (r) await r.stop();
      await http.close();
    },
  };
}
