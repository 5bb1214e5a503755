import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import type { EventCodec } from '../../libs/events/codec.js';
import { createHttpApp, postgresReady } from '../../libs/http/index.js';
import { createIdentityMetrics } from '../../libs/identity/matcher/metrics.js';
import { reviewQueueSize } from '../../libs/identity/matcher/state.js';
import { createIdentityMatcher, type IdentityMatcher } from '../../libs/identity/matcher/worker.js';
import type { MatchWeights } from '../../libs/identity/matching/types.js';
import { migrateIdentity } from '../../libs/identity/store.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';

export interface IdentityMatcherDeps {
  db: Knex;
  kafka: KafkaClient;
  codec: EventCodec;
  producer: EventProducer;
  logger: Logger;
  metrics: HubMetrics;
  now?: () => number;
  onFatal?(code: string): void;
}

export interface IdentityMatcherConfig {
  schema: string;
  weights: MatchWeights;
  groupId: string;
  dlqTopic: string;
  topic(catalogName: string): string;
  commandPollMs: number;
}

export interface IdentityMatcherService {
  http: FastifyInstance;
  matcher: IdentityMatcher;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * identity-matcher: the master patient index. Patient events in, link
 * decisions (clinical.identity.v1) out, the data stewards' commands (from the
 * identity schema) published in the same order. Its port serves /health,
 * /ready and /metrics only: the worklist is the API's and `hub identity`'s.
 */
export function buildIdentityMatcherService(
  deps: IdentityMatcherDeps,
  cfg: IdentityMatcherConfig,
): IdentityMatcherService {
  const matcher = createIdentityMatcher({
    db: deps.db,
    schema: cfg.schema,
    kafka: deps.kafka,
    codec: deps.codec,
    producer: deps.producer,
    logger: deps.logger,
    metrics: createIdentityMetrics(deps.metrics.registry, () => reviewQueueSize(deps.db, cfg.schema)),
    weights: cfg.weights,
    topic: cfg.topic,
    dlqTopic: cfg.dlqTopic,
    groupId: cfg.groupId,
    commandPollMs: cfg.commandPollMs,
    now: deps.now ?? Date.now,
    ...(deps.onFatal ? { onFatal: deps.onFatal } : {}),
  });
  let started = false;
  const http = createHttpApp({
    logger: deps.logger,
    metrics: deps.metrics.registry,
    codeOnlyNotFound: true,
    readiness: {
      postgres: postgresReady(deps.db),
      matcher: () => Promise.resolve(started ? { ok: true } : { ok: false, detail: 'starting' }),
    },
  });
  return {
    http,
    matcher,
    async start() {
      await migrateIdentity(deps.db, cfg.schema);
      // Brokers do not auto-create topics; where the operator made it up front this only describes it.
      await ensureTopics(deps.kafka, [{ name: cfg.dlqTopic, partitions: 1, retentionMs: -1 }]);
      await matcher.start();
      started = true;
      deps.logger.info({ weightsVersion: cfg.weights.version }, 'identity matcher started');
    },
    async stop() {
      started = false;
      await matcher.stop();
    },
  };
}
