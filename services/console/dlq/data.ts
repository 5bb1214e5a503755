import type { FastifyRequest } from 'fastify';
import { HubError, isHubError } from '../../../libs/errors/index.js';
import { listTopics } from '../../../libs/kafka/admin.js';
import { dlqTopicsOf, matches, type DlqFilter } from '../../../libs/kafka/dlq.js';
import {
  auditEntryFor,
  collectDeadLetters,
  createDlqAuditTrail,
  decodeDeadLetterValue,
  discardDeadLetters,
  findDeadLetter,
  redriveDeadLetters,
  type DiscardOutcome,
  type DlqActionDeps,
  type DlqStore,
  type FoundDeadLetter,
  type RedriveOutcome,
} from '../../../libs/kafka/dlq-ops.js';
import { sessionOf, type ConsoleContext } from '../context.js';
import { checkReason, type RecordAddress } from './form.js';

/**
 * The dead-letters page's reads and actions: the same state table, claim
 * protocol and audit trail as `hub dlq` (libs/kafka/dlq-ops.ts), so the
 * console and the CLI see and record the same things. Only the operator
 * differs: the signed-in subject, from the browser's address.
 */

/** What the list is narrowed to: a DLQ topic and a reason code (neither is PHI). */
export interface DeadLetterQuery {
  topic: string | null;
  reasonCode: string | null;
  /** Include redriven and discarded ones in the list (the count is of open ones whatever this says). */
  handled: boolean;
}

/** The address of one dead letter, as the forms post it. */
export type DeadLetterAddress = RecordAddress;

export function storeOf(ctx: ConsoleContext): DlqStore {
  return { kafka: ctx.kafka, db: ctx.db, schema: ctx.settings.opsSchema };
}

/** The deployment's topic suffix, from its namer (`x` → `x.<suffix>`), as `hub dlq` takes it from HUB_TOPIC_SUFFIX. */
export function topicSuffix(ctx: ConsoleContext): string | undefined {
  const named = ctx.settings.topic('x');
  return named.length > 2 ? named.slice(2) : undefined;
}

function kafkaUnavailable(what: string) {
  return (err: unknown): never => {
    throw isHubError(err) ? err : new HubError('HUB_KAFKA_UNAVAILABLE', `could not ${what}`, { cause: err });
  };
}

/** Every DLQ topic of this deployment, sorted. */
export async function deadLetterTopics(ctx: ConsoleContext): Promise<string[]> {
  const all = await listTopics(ctx.kafka).catch(kafkaUnavailable('list topics'));
  return dlqTopicsOf(all, topicSuffix(ctx)).sort();
}

/** A topic the form posted, checked against the deployment's DLQ topics (no other topic is read or written). */
export async function checkedTopic(ctx: ConsoleContext, topic: string): Promise<string> {
  const topics = await deadLetterTopics(ctx);
  if (!topics.includes(topic)) throw new HubError('HUB_NOT_FOUND', 'no such dead-letter topic');
  return topic;
}

export interface Listing {
  topics: string[];
  /** Reason codes seen on the scanned topics, for the filter's choices. */
  reasonCodes: string[];
  /** Every dead letter matching topic and reason, whatever its state. */
  matching: FoundDeadLetter[];
  open: number;
}

export async function listDeadLetters(ctx: ConsoleContext, q: DeadLetterQuery): Promise<Listing> {
  const topics = await deadLetterTopics(ctx);
  if (q.topic !== null && !topics.includes(q.topic)) {
    throw new HubError('HUB_NOT_FOUND', 'no such dead-letter topic');
  }
  const scanned = await collectDeadLetters(storeOf(ctx), q.topic === null ? topics : [q.topic]);
  const f: DlqFilter = q.reasonCode === null ? {} : { reasonCode: q.reasonCode };
  const matching = scanned.filter((d) => matches(d.info, f));
  return {
    topics,
    reasonCodes: [...new Set(scanned.map((d) => d.info.reasonCode))].sort(),
    matching,
    open: matching.filter((d) => d.info.state === 'open').length,
  };
}

/** The action dependencies of one request: the console's producer, the dlq audit trail, the session's subject. */
export function actionDeps(ctx: ConsoleContext, req: FastifyRequest): DlqActionDeps {
  const operator = { name: sessionOf(req).principal.subject, host: req.ip };
  return {
    ...storeOf(ctx),
    producer: ctx.producer,
    operator,
    audit: createDlqAuditTrail({
      kafka: ctx.kafka,
      producer: ctx.producer,
      topic: ctx.settings.auditTopic,
      operator,
      observer: 'console',
    }),
  };
}

type Found = FoundDeadLetter & { stateBy: string | null };

async function one(ctx: ConsoleContext, a: DeadLetterAddress): Promise<Found> {
  await checkedTopic(ctx, a.topic);
  const found = await findDeadLetter(storeOf(ctx), a.topic, a.partition, a.offset);
  if (!found) throw new HubError('HUB_NOT_FOUND', 'no dead letter at that address');
  return found;
}

export interface Opened {
  found: Found;
  payload: unknown;
}

/**
 * One dead letter with its content. As `hub dlq show --include-phi`: the
 * `dlq.show.include-phi` action is on the audit topic (acknowledged) before
 * the value is even decoded; if that write fails, nothing is shown.
 */
export async function openDeadLetter(
  ctx: ConsoleContext,
  req: FastifyRequest,
  a: DeadLetterAddress,
  reason: string,
): Promise<Opened> {
  const why = checkReason(reason);
  const found = await one(ctx, a);
  await actionDeps(ctx, req).audit.record([auditEntryFor(found, 'dlq.show.include-phi', why)]);
  return { found, payload: await decodeDeadLetterValue(ctx.codec, found.rec) };
}

export interface ActionSummary {
  done: number;
  skipped: number;
}

function summary(total: number, done: number): ActionSummary {
  return { done, skipped: total - done };
}

export type DlqAction = 'redrive' | 'discard';

/** Why one dead letter cannot take the action, or null when it can. */
function refusalOf(d: FoundDeadLetter, action: DlqAction): HubError | null {
  if (d.info.state !== 'open') return new HubError('HUB_CONFLICT', `already ${d.info.state}`);
  if (action === 'discard' || d.info.redrivable) return null;
  return new HubError(
    'HUB_INPUT_INVALID',
    d.info.kind === 'hl7-adapter'
      ? 'an HL7 refusal has no event to redrive: fix the mapping and use `hub hl7 remap`'
      : 'only dead letters a consumer parked can be redriven',
  );
}

/** Redrives or discards these (claimed, audited as `hub dlq` does); answers how many this call took. */
async function act(
  ctx: ConsoleContext,
  req: FastifyRequest,
  action: DlqAction,
  todo: readonly FoundDeadLetter[],
  why: string,
): Promise<number> {
  if (todo.length === 0) return 0;
  const deps = actionDeps(ctx, req);
  const out: readonly (RedriveOutcome | DiscardOutcome)[] =
    action === 'redrive'
      ? await redriveDeadLetters(deps, todo, { reason: why })
      : await discardDeadLetters(deps, todo, why);
  return out.filter((x) => x.result === (action === 'redrive' ? 'redriven' : 'discarded')).length;
}

/** Redrive or discard one dead letter, with a reason. */
export async function actOnOne(
  ctx: ConsoleContext,
  req: FastifyRequest,
  action: DlqAction,
  a: DeadLetterAddress,
  reason: string,
): Promise<ActionSummary> {
  const why = checkReason(reason);
  const d = await one(ctx, a);
  const refused = refusalOf(d, action);
  if (refused) throw refused;
  return summary(1, await act(ctx, req, action, [d], why));
}

/**
 * "Redrive all shown" / "Discard all shown": every open dead letter matching
 * the filter; those that cannot be redriven (or were handled meanwhile) are
 * counted as skipped.
 */
export async function actOnMatching(
  ctx: ConsoleContext,
  req: FastifyRequest,
  action: DlqAction,
  q: DeadLetterQuery,
  reason: string,
): Promise<ActionSummary> {
  const why = checkReason(reason);
  const open = (await listDeadLetters(ctx, q)).matching.filter((d) => d.info.state === 'open');
  const todo = open.filter((d) => refusalOf(d, action) === null);
  return summary(open.length, await act(ctx, req, action, todo, why));
}
