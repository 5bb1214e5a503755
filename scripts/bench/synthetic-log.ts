// A private log for a benchmark: the catalog's topics under a suffix (plus
// the extra topics it needs), the schemas registered for them, synthetic
// events published in chunks; and its removal afterwards. Shared by the
// replay benchmarks and the API benchmark.
import { catalogTopicDefinitions, registerAllSchemas } from '../../libs/events/contracts.js';
import { EVENT_CONTRACTS, type ClinicalEvent, type EventType } from '../../libs/events/index.js';
import type { RegistryClient } from '../../libs/events/registry.js';
import { deleteTopics, ensureTopics } from '../../libs/kafka/admin.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import type { EventProducer } from '../../libs/kafka/producer.js';

export interface SyntheticLog {
  kafka: KafkaClient;
  registry: RegistryClient;
  /** Catalog name → this log's topic. */
  topic(catalogName: string): string;
  /** Single-partition topics besides the catalog's (dead letters, audit). */
  extraTopics?: readonly string[];
}

const topicForOf = (log: SyntheticLog) => (t: EventType) => log.topic(EVENT_CONTRACTS[t].topic);

/** Creates the topics (waiting until every partition answers) and registers the schemas under them. */
export async function prepareSyntheticLog(log: SyntheticLog): Promise<void> {
  // ensureTopics waits until every partition answers: on a broker that has
  // just started, a new topic's metadata lags ("does not host this topic-partition").
  await ensureTopics(log.kafka, [
    ...catalogTopicDefinitions(log.topic),
    ...(log.extraTopics ?? []).map((name) => ({ name, partitions: 1, retentionMs: -1 })),
  ]);
  await registerAllSchemas(log.registry, { topicFor: topicForOf(log) });
}

/** Publishes `events` in chunks of `chunk`, telling `progress` after each. */
export async function publishInChunks(
  producer: EventProducer,
  events: readonly ClinicalEvent[],
  chunk: number,
  progress?: (done: number, total: number) => void,
): Promise<void> {
  for (let i = 0; i < events.length; i += chunk) {
    await producer.publish(events.slice(i, i + chunk));
    progress?.(Math.min(events.length, i + chunk), events.length);
  }
}

/** Deletes the log's topics and schema subjects; failures are ignored (a half-made log is removed as far as it goes). */
export async function deleteSyntheticLog(log: SyntheticLog): Promise<void> {
  const topicFor = topicForOf(log);
  await deleteTopics(log.kafka, [
    ...catalogTopicDefinitions(log.topic).map((t) => t.name),
    ...(log.extraTopics ?? []),
  ]).catch(() => undefined);
  for (const t of Object.keys(EVENT_CONTRACTS) as EventType[]) {
    await log.registry.deleteSubject(`${topicFor(t)}-${EVENT_CONTRACTS[t].fullName}`).catch(() => undefined);
  }
}
