import { HubError, isHubError } from '../errors/index.js';
import {
  DEFAULT_COMPATIBILITY,
  EVENT_CONTRACTS,
  EVENT_TYPES,
  TOPIC_CATALOG,
  type EventType,
} from './generated.js';
import { explainIncompatibility, type RegistryClient } from './registry.js';
import type { ComposedEvent } from './schema-source.js';
import type { TopicDefinition } from '../kafka/admin.js';

export interface RegistrationResult {
  type: string;
  subject: string;
  id: number;
}

/**
 * Registers every event schema under its TopicRecordNameStrategy subject with
 * the catalog's compatibility (FULL_TRANSITIVE). Idempotent: the same
 * schema gets the same id. `topicSuffix` lets tests register under their own
 * topics without touching the shared ones.
 */
export async function registerAllSchemas(
  registry: RegistryClient,
  opts: { topicFor?: (type: EventType) => string } = {},
): Promise<RegistrationResult[]> {
  const out: RegistrationResult[] = [];
  for (const type of EVENT_TYPES) {
    const c = EVENT_CONTRACTS[type];
    const topic = opts.topicFor ? opts.topicFor(type) : c.topic;
    const subject = `${topic}-${c.fullName}`;
    const id = await registry.register(subject, c.schema, DEFAULT_COMPATIBILITY);
    out.push({ type, subject, id });
  }
  return out;
}

/**
 * Topics that carry no Avro events, created next to the catalog's: the HL7
 * adapter's raw inbound messages (kept as received, for re-mapping) and its
 * dead letters. Not in catalog.json, which lists event contracts only.
 */
export const INGEST_TOPICS = {
  hl7Raw: 'hl7.raw.v1',
  hl7Dlq: 'hl7.dlq.v1',
} as const;

/**
 * max.message.bytes of the topics that hold whole messages as received (raw,
 * dead letters) and of the attachment topic: the default MLLP frame limit
 * (16 MiB) plus room for record headers and batch overhead. Kafka's default
 * (1 MiB) would refuse every large report that MLLP accepted.
 */
export const LARGE_RECORD_TOPIC_BYTES = 20 * 1024 * 1024;

/**
 * The topic limit needed for frames up to `maxFrameBytes`: never below
 * LARGE_RECORD_TOPIC_BYTES, and 4 MiB above the frame for headers and batch
 * overhead when an operator raises MLLP_MAX_MESSAGE_BYTES past 16 MiB.
 */
export function largeRecordTopicBytes(maxFrameBytes: number): number {
  return Math.max(LARGE_RECORD_TOPIC_BYTES, maxFrameBytes + 4 * 1024 * 1024);
}

/**
 * The catalog's topics and the ingest topics, without replication: that is
 * the environment's (KAFKA_TOPIC_ENV), applied by ensureTopics /
 * reconcileTopics through libs/events/topic-settings.ts.
 */
export function catalogTopicDefinitions(nameFor?: (name: string) => string): TopicDefinition[] {
  const events = TOPIC_CATALOG.map((t) => ({
    name: nameFor ? nameFor(t.name) : t.name,
    catalogName: t.name,
    partitions: t.partitions,
    retentionMs: t.retentionMs,
    ...(t.maxMessageBytes === null ? {} : { maxMessageBytes: t.maxMessageBytes }),
  }));
  const first = TOPIC_CATALOG[0];
  const ingest = Object.values(INGEST_TOPICS).map((name) => ({
    name: nameFor ? nameFor(name) : name,
    partitions: first.partitions,
    retentionMs: -1,
    maxMessageBytes: LARGE_RECORD_TOPIC_BYTES,
  }));
  return [...events, ...ingest];
}

export interface CompatibilityFinding {
  type: string;
  subject: string;
  compatible: boolean;
  /** Which registered versions the candidate cannot read, and why (Avro resolution error). */
  problems: string[];
  newSubject: boolean;
}

/**
 * Checks candidate schemas (e.g. the working tree's) against every version
 * the registry holds for their subjects, before anything is registered: the
 * registry's own verdict decides, the local Avro resolution explains.
 */
export async function checkCompatibility(
  registry: RegistryClient,
  candidates: readonly ComposedEvent[],
): Promise<CompatibilityFinding[]> {
  const findings: CompatibilityFinding[] = [];
  for (const c of candidates) {
    const versions = await registry.versions(c.subject);
    if (versions.length === 0) {
      findings.push({ type: c.type, subject: c.subject, compatible: true, problems: [], newSubject: true });
      continue;
    }
    let verdict: boolean;
    try {
      verdict = await registry.isCompatible(c.subject, c.schema);
    } catch (err) {
      if (isHubError(err) && !err.retriable) verdict = false;
      else throw err;
    }
    const problems: string[] = [];
    for (const v of versions) {
      const old = await registry.schemaAt(c.subject, v);
      const why = explainIncompatibility(c.schema, old);
      if (why) problems.push(`cannot read version ${v}: ${why}`);
    }
    const compatible = verdict && problems.length === 0;
    if (!compatible && problems.length === 0)
      problems.push('the registry reports the change as incompatible');
    findings.push({ type: c.type, subject: c.subject, compatible, problems, newSubject: false });
  }
  return findings;
}

export function assertAllCompatible(findings: readonly CompatibilityFinding[]): void {
  const bad = findings.filter((f) => !f.compatible);
  if (bad.length > 0) {
    throw new HubError(
      'HUB_SCHEMA_INCOMPATIBLE',
      bad.map((f) => `${f.subject}: ${f.problems.join('; ')}`).join('\n'),
      { details: { subjects: bad.map((f) => f.subject) } },
    );
  }
}

/**
 * Local FULL check of candidate schemas against an earlier set (e.g. the
 * schemas/ folder at an earlier commit). Run against every commit that
 * touched schemas/, this is FULL_TRANSITIVE without a registry.
 */
export function checkAgainstEarlier(
  candidates: readonly ComposedEvent[],
  earlier: readonly ComposedEvent[],
  label: string,
): CompatibilityFinding[] {
  const old = new Map(earlier.map((e) => [e.subject, e]));
  return candidates.map((c) => {
    const prev = old.get(c.subject);
    if (!prev) return { type: c.type, subject: c.subject, compatible: true, problems: [], newSubject: true };
    const why = explainIncompatibility(c.schema, prev.schema);
    return {
      type: c.type,
      subject: c.subject,
      compatible: !why,
      problems: why ? [`cannot read ${label}: ${why}`] : [],
      newSubject: false,
    };
  });
}
