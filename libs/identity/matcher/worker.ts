/**
 * The identity-matcher at work: patient events (clinical.patient.v1) in,
 * decisions (clinical.identity.v1) out, and the data stewards' commands
 * turned into events. Each batch, and each round of commands, is one
 * transaction on the identity schema: decided, published (acks=all), and only
 * then committed with the offsets. A crash after the publish re-decides the
 * batch from the same state and republishes the same event ids, which
 * readers de-duplicate.
 */
import type { Knex } from 'knex';
import { toHubError } from '../../errors/index.js';
import type { EventCodec } from '../../events/codec.js';
import {
  type ClinicalEvent,
  type Demographics,
  type EventMeta,
  type PatientsMerged,
} from '../../events/index.js';
import { EMPTY_DEMOGRAPHICS, mergeDemographics } from '../../events/demographics.js';
import type { KafkaClient } from '../../kafka/client.js';
import { createConsumerRunner, type ConsumerRunner, type PartitionBatch } from '../../kafka/consumer.js';
import type { EventProducer } from '../../kafka/producer.js';
import { claimPartition, moveOffset, storedOffsets, type OffsetsTable } from '../../kafka/stored-offsets.js';
import type { Logger } from '../../telemetry/logger.js';
import { blockingKeys } from '../matching/blocking.js';
import { decide } from '../matching/decide.js';
import { matchOne } from '../matching/match.js';
import { toMatchRecord } from '../matching/normalise.js';
import type { MatchDecision, MatchRecord, MatchWeights } from '../matching/types.js';
import { pairKeyOf, type Pair } from '../store.js';
import type { IdentityMetrics } from './metrics.js';
import {
  MATCHER,
  commandEventId,
  decisionEventId,
  decisionMeta,
  evidenceOf,
  planCommand,
  planPair,
  type IdentityEventType,
  type PriorPair,
} from './plan.js';
import {
  applyDecision,
  candidateSource,
  finishCommand,
  loadRecords,
  lockIdentity,
  pairByKey,
  pairsOf,
  pendingCommands,
  retireRecord,
  upsertRecord,
  type AppliedDecision,
  type PendingCommand,
} from './state.js';

export interface MatcherDeps {
  db: Knex;
  schema: string;
  kafka: KafkaClient;
  codec: EventCodec;
  producer: EventProducer;
  logger: Logger;
  metrics: IdentityMetrics;
  weights: MatchWeights;
  /** Catalog topic name → this deployment's topic. */
  topic(catalogName: string): string;
  dlqTopic: string;
  groupId: string;
  /** How often pending steward commands are looked for. */
  commandPollMs: number;
  /** At most this many candidates per record from the blocking index. */
  candidateLimit?: number;
  now(): number;
  onFatal?(code: string): void;
}

export interface IdentityMatcher {
  start(): Promise<void>;
  stop(): Promise<void>;
  lastProgressAt(): number;
  /** One round of pending commands (the poller runs these); answers how many it handled. */
  commandRound(): Promise<number>;
}

export const PATIENT_TOPIC = 'clinical.patient.v1';
const COMMANDS_PER_ROUND = 50;

/** What one transaction publishes: each event with the state change it stands for. */
interface Emitted {
  event: ClinicalEvent;
  decision: AppliedDecision;
}

/** The event of a decision, as its Avro contract has it. */
function identityEvent(meta: EventMeta, d: AppliedDecision): ClinicalEvent {
  const base = {
    meta,
    patientId: d.patientId,
    otherPatientId: d.otherPatientId,
    decidedBy: d.decidedBy,
    reason: d.reason,
  };
  if (d.type === 'PatientsUnlinked') return { type: d.type, data: base };
  const scored = {
    ...base,
    score: d.score,
    weightsVersion: d.weightsVersion,
    evidence: d.evidence,
    rules: d.rules,
  };
  if (d.type === 'PatientsLinked') return { type: d.type, data: scored };
  if (d.type === 'PatientLinkProposed') return { type: d.type, data: scored };
  return { type: d.type, data: scored };
}

interface Cause {
  id: string;
  correlationId: string | null;
  occurredAt: number;
}

/** State, event and history row of one decision, queued for the transaction's publish. */
async function emit(
  trx: Knex.Transaction,
  deps: MatcherDeps,
  out: Emitted[],
  d: Omit<AppliedDecision, 'decidedAt'>,
  cause: Cause,
): Promise<void> {
  const recordedAt = deps.now();
  const applied: AppliedDecision = { ...d, decidedAt: new Date(recordedAt) };
  await applyDecision(trx, deps.schema, applied);
  out.push({
    event: identityEvent(decisionMeta(d.eventId, d.type, cause, recordedAt), applied),
    decision: applied,
  });
}

/** The matcher's events for one pair, given the core's decision now. */
async function decidePair(
  trx: Knex.Transaction,
  deps: MatcherDeps,
  out: Emitted[],
  a: string,
  b: string,
  decision: MatchDecision,
  prior: PriorPair | null,
  cause: Cause,
): Promise<void> {
  const { pairKey, lo, hi } = pairKeyOf(a, b);
  for (const p of planPair(prior, decision)) {
    await emit(
      trx,
      deps,
      out,
      {
        eventId: decisionEventId(cause.id, pairKey, deps.weights.version, p.type),
        type: p.type,
        pairKey,
        patientId: lo,
        otherPatientId: hi,
        score: decision.score,
        weightsVersion: deps.weights.version,
        evidence: evidenceOf(decision),
        rules: [...decision.rules],
        decidedBy: MATCHER,
        reason: p.reason,
        basis: 'auto',
      },
      cause,
    );
  }
}

/**
 * A registration or update: the record's merged demographics are stored,
 * then matched (unless an EHR merge retired it). Pairs found by blocking are
 * decided; pairs the matcher linked or proposed earlier that blocking no
 * longer finds are rescored, so that a link can be withdrawn.
 */
async function onDemographics(
  trx: Knex.Transaction,
  deps: MatcherDeps,
  out: Emitted[],
  e: { meta: EventMeta; patientId: string; demographics: Demographics },
): Promise<void> {
  const stored = (await loadRecords(trx, deps.schema, [e.patientId])).get(e.patientId);
  const demographics = mergeDemographics(stored?.demographics ?? null, e.demographics);
  const record = toMatchRecord(e.patientId, demographics);
  const source = { system: e.meta.source.system, facility: e.meta.source.facility };
  await upsertRecord(trx, deps.schema, {
    record,
    demographics,
    keys: blockingKeys(record),
    source,
    now: new Date(deps.now()),
  });
  if (stored && !stored.active) return;
  const started = performance.now();
  const cause = { id: e.meta.eventId, correlationId: e.meta.correlationId, occurredAt: e.meta.occurredAt };
  const found = await matchOne(
    record,
    candidateSource(trx, deps.schema, deps.candidateLimit ?? 500),
    deps.weights,
  );
  const pairs = await pairsOf(trx, deps.schema, e.patientId);
  const decided = new Map<string, MatchDecision>();
  for (const f of found) decided.set(f.candidate.patientId, f.decision);
  await rescoreOwn(trx, deps, record, pairs, decided);
  deps.metrics.matchSeconds.observe((performance.now() - started) / 1000);
  for (const [other, decision] of [...decided].sort(([x], [y]) => (x < y ? -1 : 1))) {
    const prior = pairs.get(pairKeyOf(e.patientId, other).pairKey) ?? null;
    await decidePair(trx, deps, out, e.patientId, other, decision, prior, cause);
  }
}

/** Adds to `decided` the matcher's own live pairs (linked or proposed) of the record that blocking did not find. */
async function rescoreOwn(
  trx: Knex.Transaction,
  deps: MatcherDeps,
  record: MatchRecord,
  pairs: Map<string, Pair>,
  decided: Map<string, MatchDecision>,
): Promise<void> {
  const others = [...pairs.values()]
    .filter((p) => p.basis === 'auto' && (p.state === 'linked' || p.state === 'proposed'))
    .map((p) => (p.patientId === record.patientId ? p.otherPatientId : p.patientId))
    .filter((id) => !decided.has(id));
  const stored = await loadRecords(trx, deps.schema, others);
  for (const id of others) {
    const o = stored.get(id);
    // A record an EHR merge retired stays as the merge left it: never unlinked by the matcher.
    if (o?.active) decided.set(id, decide(record, o.record, deps.weights));
  }
}

/** An EHR merge (A40): the retired record leaves matching for good; its links are not touched (read models follow the merge). */
async function onMerge(trx: Knex.Transaction, deps: MatcherDeps, e: PatientsMerged): Promise<void> {
  const demographics = e.mergedDemographics
    ? mergeDemographics(null, e.mergedDemographics)
    : { ...EMPTY_DEMOGRAPHICS, identifiers: e.mergedIdentifiers, names: e.mergedNames };
  await retireRecord(trx, deps.schema, {
    mergedId: e.mergedPatientId,
    survivorId: e.patientId,
    stub: { record: toMatchRecord(e.mergedPatientId, demographics), demographics },
    now: new Date(deps.now()),
  });
}

/** Publishes what the transaction decided, before it commits (acks=all), and counts it. */
async function publish(deps: MatcherDeps, out: readonly Emitted[]): Promise<void> {
  if (out.length === 0) return;
  await deps.producer.publish(out.map((o) => o.event));
  for (const o of out)
    deps.metrics.decisions.inc({
      type: o.event.type,
      by: o.decision.basis === 'auto' ? 'matcher' : 'steward',
    });
}

/** The schema's offsets table is the matcher's alone (one consumer group). */
const ownOffsets = (schema: string): OffsetsTable => ({ schema, owner: {} });

async function handleBatch(deps: MatcherDeps, batch: PartitionBatch): Promise<void> {
  await deps.db.transaction(async (trx) => {
    await lockIdentity(trx, deps.schema);
    const out: Emitted[] = [];
    for (const { event } of batch.records) {
      if (event.type === 'PatientRegistered' || event.type === 'PatientUpdated')
        await onDemographics(trx, deps, out, event.data);
      else if (event.type === 'PatientsMerged') await onMerge(trx, deps, event.data);
    }
    await publish(deps, out);
    await moveOffset(trx, ownOffsets(deps.schema), batch);
  });
}

/** One steward command: refused when it no longer holds, else its event with the current score as context. */
async function onCommand(
  trx: Knex.Transaction,
  deps: MatcherDeps,
  out: Emitted[],
  c: PendingCommand,
): Promise<void> {
  const { pairKey, lo, hi } = pairKeyOf(c.patientId, c.otherPatientId);
  const records = await loadRecords(trx, deps.schema, [lo, hi]);
  const a = records.get(lo) ?? null;
  const b = records.get(hi) ?? null;
  const pair = await pairByKey(trx, deps.schema, pairKey);
  const plan = planCommand(c.kind, pair?.state ?? null, a, b);
  if (!plan.ok || !a || !b) {
    await finishCommand(trx, deps.schema, c.id, {
      status: 'refused',
      error: plan.ok ? 'unknown record' : plan.error,
    });
    deps.metrics.commands.inc({ outcome: 'refused' });
    return;
  }
  const d = decide(a.record, b.record, deps.weights);
  const eventId = commandEventId(c.id);
  const type: IdentityEventType = plan.type;
  const cause = { id: c.id, correlationId: c.id, occurredAt: c.requestedAt.getTime() };
  await emit(
    trx,
    deps,
    out,
    {
      eventId,
      type,
      pairKey,
      patientId: lo,
      otherPatientId: hi,
      score: d.score,
      weightsVersion: deps.weights.version,
      evidence: evidenceOf(d),
      rules: [...d.rules],
      decidedBy: c.decidedBy,
      reason: c.reason,
      basis: 'steward',
    },
    cause,
  );
  await finishCommand(trx, deps.schema, c.id, { status: 'done', eventId });
  deps.metrics.commands.inc({ outcome: 'done' });
}

async function commandRound(deps: MatcherDeps): Promise<number> {
  return deps.db.transaction(async (trx) => {
    await lockIdentity(trx, deps.schema);
    const commands = await pendingCommands(trx, deps.schema, COMMANDS_PER_ROUND);
    const out: Emitted[] = [];
    for (const c of commands) await onCommand(trx, deps, out, c);
    await publish(deps, out);
    return commands.length;
  });
}

/** Runs command rounds until stopped: back to back while there are commands, else every pollMs. */
function createCommandPoller(deps: MatcherDeps): { start(): void; stop(): Promise<void> } {
  let running = false;
  let loop: Promise<void> | null = null;
  let wake: (() => void) | null = null;
  const idle = () =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, deps.commandPollMs);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  const run = async () => {
    while (running) {
      let handled = 0;
      try {
        handled = await commandRound(deps);
      } catch (err) {
        deps.logger.warn({ code: toHubError(err).code }, 'identity command round failed; will retry');
      }
      if (handled === 0 && running) await idle();
    }
  };
  return {
    start() {
      running = true;
      loop = run();
    },
    async stop() {
      running = false;
      wake?.();
      await loop;
    },
  };
}

export function createIdentityMatcher(deps: MatcherDeps): IdentityMatcher {
  const topic = deps.topic(PATIENT_TOPIC);
  const runner: ConsumerRunner = createConsumerRunner({
    kafka: deps.kafka,
    codec: deps.codec,
    producer: deps.producer,
    groupId: deps.groupId,
    topics: [topic],
    dlqTopic: deps.dlqTopic,
    logger: deps.logger,
    handle: (b) => handleBatch(deps, b),
    storedOffsets: (t, ps) => storedOffsets(deps.db, ownOffsets(deps.schema), t, ps),
    claim: (t, p) => claimPartition(deps.db, ownOffsets(deps.schema), t, p),
    onFatal: (err) => deps.onFatal?.(err.code),
  });
  const poller = createCommandPoller(deps);
  return {
    async start() {
      await runner.start();
      poller.start();
    },
    async stop() {
      await poller.stop();
      await runner.stop();
    },
    lastProgressAt: () => runner.lastProgressAt(),
    commandRound: () => commandRound(deps),
  };
}
