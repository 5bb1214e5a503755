import type { TopicEnvironment } from '../config/index.js';
import { TOPIC_CATALOG, TOPIC_ENVIRONMENT_SETTINGS } from './generated.js';

/**
 * The one place a topic's partitions and replication are decided, for every
 * topic the hub creates: the catalog's event topics and the hub's own (raw
 * HL7, dead letters, audit, benchmarks). Settings come from
 * schemas/catalog.json: the environment's replication (`environments`), the
 * topic's own partition count and its per-environment overrides.
 */

export interface TopicSettings {
  partitions: number;
  replicationFactor: number;
  /** With acks=all, a write is acknowledged only once this many replicas hold it. */
  minInsyncReplicas: number;
  /** false: an out-of-sync replica never becomes leader (it would drop acknowledged events). */
  uncleanLeaderElection: boolean;
}

/** What a caller knows about a topic; explicit settings win over the catalog (tests, drills). */
export interface TopicSettingsRequest {
  /** The catalog name (before any suffix) when the topic is a catalog topic: its own settings apply. */
  catalogName?: string | undefined;
  /** The partition count before the catalog's per-environment override. */
  partitions: number;
  replicationFactor?: number | undefined;
  minInsyncReplicas?: number | undefined;
  uncleanLeaderElection?: boolean | undefined;
}

type Override = Partial<TopicSettings>;

type TopicReplication = Omit<TopicSettings, 'partitions'>;

/** Where settings come from: schemas/catalog.json as generated, or a stand-in in unit tests. */
export interface SettingsSource {
  readonly environments: { readonly [env in TopicEnvironment]: TopicReplication };
  readonly topics: readonly {
    readonly name: string;
    readonly environments: { readonly [env: string]: Override | undefined };
  }[];
}

const CATALOG: SettingsSource = { environments: TOPIC_ENVIRONMENT_SETTINGS, topics: TOPIC_CATALOG };

/** The least replication factor `hub topics create` accepts for production without --force. */
export const PRODUCTION_MIN_REPLICATION = 3;

/**
 * Precedence, lowest first: the environment's replication, the catalog
 * topic's own settings for that environment, the request's explicit ones.
 */
export function topicSettings(
  env: TopicEnvironment,
  req: TopicSettingsRequest,
  source: SettingsSource = CATALOG,
): TopicSettings {
  const base = source.environments[env];
  const own = req.catalogName
    ? source.topics.find((t) => t.name === req.catalogName)?.environments[env]
    : undefined;
  const replicationFactor = req.replicationFactor ?? own?.replicationFactor ?? base.replicationFactor;
  // An explicit factor without an explicit minimum keeps what ensureTopics always did: min(2, RF).
  const minInsync =
    req.minInsyncReplicas ??
    own?.minInsyncReplicas ??
    (req.replicationFactor !== undefined ? 2 : base.minInsyncReplicas);
  return {
    partitions: own?.partitions ?? req.partitions,
    replicationFactor,
    // Above the factor no write could ever be acknowledged.
    minInsyncReplicas: Math.min(minInsync, replicationFactor),
    uncleanLeaderElection:
      req.uncleanLeaderElection ?? own?.uncleanLeaderElection ?? base.uncleanLeaderElection,
  };
}

/**
 * Why these settings are not fit for production (none: they are). A single
 * copy is lost with its disk; the log is the hospital's record of truth.
 */
export function productionProblems(
  env: TopicEnvironment,
  topics: readonly (TopicSettings & { name: string })[],
): string[] {
  if (env !== 'production') return [];
  const out: string[] = [];
  for (const t of topics) {
    if (t.replicationFactor < PRODUCTION_MIN_REPLICATION) {
      out.push(`topic ${t.name}: replication factor ${t.replicationFactor} < ${PRODUCTION_MIN_REPLICATION}`);
    }
    if (t.uncleanLeaderElection) out.push(`topic ${t.name}: unclean leader election enabled`);
  }
  return out;
}
