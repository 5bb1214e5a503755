/**
 * `hub identity …`: the master patient index's data-steward workflow (issue
 * 21) from a terminal: the review worklist, a record's explanation, and the
 * steward's decisions (link, unlink, reject). An edge like main.ts: reads
 * config, opens Postgres (the identity schema, libs/identity/store.ts) and
 * Kafka (the audit topic only), parses options and prints.
 *
 * A decision is a command in the identity schema, as the API's are: the
 * identity-matcher validates it, publishes the event (decidedBy = HUB_OPERATOR
 * or the OS user, with the reason) and marks it done or refused; the command
 * waits for that (`--wait`, 30 s). Every command is an operator action on the
 * audit trail, naming each patient whose record it showed or changed; the
 * worklist and explain print PHI to this terminal, and are audited before
 * they print.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { buildOperatorAuditEvent } from '../libs/audit/event.js';
import { AUDIT_TOPIC, createAuditSink, ensureAuditTopic } from '../libs/audit/topic.js';
import { loadConfig, schemaNameEnv, topicNamer } from '../libs/config/index.js';
import { assertSqlIdentifier, type Knex } from '../libs/db/index.js';
import { HubError } from '../libs/errors/index.js';
import { createEventCodec } from '../libs/events/codec.js';
import type { Identifier } from '../libs/events/index.js';
import {
  IDENTITY_SCHEMA,
  awaitCommand,
  explainPatient,
  listReview,
  migrateIdentity,
  pairKeyOf,
  requestDecision,
  type CommandKind,
  type CommandOutcome,
  type Explanation,
  type RecordDisplay,
  type ReviewItem,
} from '../libs/identity/store.js';
import { createEventProducer } from '../libs/kafka/producer.js';
import { cliDb, cliKafka, cliRegistry, commonEnvSchema, operatorEnv, operatorName } from './env.js';
import { formatTable, isJsonOutput, printAll } from './output.js';

// The operator (HUB_OPERATOR, else the OS user) is the steward: the decisions' decidedBy.
const identityEnv = commonEnvSchema.extend({
  IDENTITY_SCHEMA: schemaNameEnv(IDENTITY_SCHEMA),
  ...operatorEnv,
});

/** One operator action on the audit trail: what, on what, whose records (one AuditEvent each). */
interface Action {
  action: string;
  crud: 'R' | 'U';
  target: string;
  patients: readonly string[];
  reason?: string | null;
  detail?: Record<string, string>;
}

interface Session {
  db: Knex;
  schema: string;
  steward: string;
  /** Written (acks=all) before the command prints or reports success. */
  audit(a: Action): Promise<void>;
}

async function withSession<T>(fn: (s: Session) => Promise<T>): Promise<T> {
  const cfg = loadConfig(identityEnv);
  const db = cliDb(cfg, { min: 0, max: 2 });
  const kafka = cliKafka(cfg, 'hub-cli-identity');
  const producer = createEventProducer({ kafka, codec: createEventCodec(cliRegistry(cfg)), retries: 3 });
  const topic = cfg.AUDIT_TOPIC ?? topicNamer(cfg.HUB_TOPIC_SUFFIX)(AUDIT_TOPIC);
  const steward = operatorName(cfg);
  let connected = false;
  const audit = async (a: Action) => {
    if (!connected) {
      await producer.connect();
      await ensureAuditTopic(kafka, topic);
      connected = true;
    }
    // An action that showed no record (an empty worklist) is still one event, naming no one.
    const named = a.patients.length > 0 ? [...new Set(a.patients)] : [null];
    const events = named.map((patientId) =>
      buildOperatorAuditEvent({
        id: randomUUID(),
        recorded: Date.now(),
        action: `identity.${a.action}`,
        crud: a.crud,
        target: a.target,
        patientId,
        operator: steward,
        host: hostname(),
        reason: a.reason ?? null,
        detail: a.detail ?? {},
        observer: 'hub-cli',
      }),
    );
    await createAuditSink(producer, topic).recordAll(events);
  };
  try {
    const schema = assertSqlIdentifier(cfg.IDENTITY_SCHEMA);
    await migrateIdentity(db, schema);
    return await fn({ db, schema, steward, audit });
  } finally {
    if (connected) await producer.disconnect().catch(() => undefined);
    await db.destroy();
  }
}

const nameOf = (d: RecordDisplay): string => {
  const n = d.names[0];
  return n ? [n.family ?? '', n.given.join(' ')].filter(Boolean).join(', ') : '';
};
const idsOf = (ids: readonly Identifier[]): string =>
  ids.map((i) => `${i.value}@${i.system}${i.type ? ` (${i.type})` : ''}`).join('; ');
const both = (a: string | null, b: string | null) => `${a ?? '-'} | ${b ?? '-'}`;

/** One worklist row: the pair, then each field as `record | other record`. Pure. */
export function reviewRow(i: ReviewItem): Record<string, unknown> {
  return {
    score: i.pair.score === null ? '' : i.pair.score.toFixed(2),
    patient: i.pair.patientId,
    other: i.pair.otherPatientId,
    name: both(nameOf(i.record), nameOf(i.otherRecord)),
    birthDate: both(i.record.birthDate, i.otherRecord.birthDate),
    sex: both(i.record.sex, i.otherRecord.sex),
    identifiers: both(idsOf(i.record.identifiers), idsOf(i.otherRecord.identifiers)),
    rules: i.pair.rules.join(','),
  };
}

/** The explanation as text: the record, its person, its pairs and every decision, oldest first. Pure. */
export function explainText(e: Explanation): string {
  const other = (p: { patientId: string; otherPatientId: string }) =>
    p.patientId === e.patientId ? p.otherPatientId : p.patientId;
  const d = e.display;
  return [
    `record       ${e.patientId}${e.active ? '' : ` (retired: merged into ${e.mergedInto ?? '?'})`}`,
    `name         ${nameOf(d)}`,
    `birth / sex  ${d.birthDate ?? '-'} / ${d.sex ?? '-'}`,
    `identifiers  ${idsOf(d.identifiers)}`,
    `source       ${e.source ? `${e.source.system}${e.source.facility ? `/${e.source.facility}` : ''}` : '-'}`,
    `person       ${e.person.join(', ')}`,
    '',
    'pairs:',
    formatTable(
      e.pairs.map((p) => ({
        other: other(p),
        state: p.state,
        basis: p.basis,
        score: p.score?.toFixed(2) ?? '',
        decidedBy: p.decidedBy,
        reason: p.reason ?? '',
      })),
    ),
    '',
    'history:',
    formatTable(
      e.history.map((h) => ({
        decidedAt: h.decidedAt,
        type: h.type,
        other: other(h),
        score: h.score?.toFixed(2) ?? '',
        weights: h.weightsVersion ?? '',
        decidedBy: h.decidedBy,
        reason: h.reason ?? '',
        rules: h.rules.join(','),
        evidence: h.evidence.map((x) => `${x.field}:${x.level}(${x.weight.toFixed(1)})`).join(' '),
      })),
    ),
  ].join('\n');
}

function registerReads(identity: Command, json: () => boolean): void {
  identity
    .command('review')
    .description('the review worklist: proposed pairs, both records side by side, highest score first (PHI)')
    .option('--limit <n>', 'at most this many pairs', '50')
    .action(async (o: { limit: string }) => {
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
        throw new HubError('HUB_INPUT_INVALID', '--limit: a whole number from 1 to 1000');
      const items = await withSession(async (s) => {
        const found = await listReview(s.db, s.schema, { limit });
        const patients = found.flatMap((i) => [i.pair.patientId, i.pair.otherPatientId]);
        await s.audit({ action: 'review', crud: 'R', target: 'identity/review', patients });
        return found;
      });
      await printAll(json(), items, () => formatTable(items.map(reviewRow)));
    });
  identity
    .command('explain <patientId>')
    .description(
      "a record: its demographics, the person it belongs to, its pairs and every decision's evidence (PHI)",
    )
    .action(async (patientId: string) => {
      const e = await withSession(async (s) => {
        const found = await explainPatient(s.db, s.schema, patientId);
        if (!found)
          throw new HubError(
            'HUB_NOT_FOUND',
            `the master patient index has no record ${patientId}; the matcher adds one per registered patient`,
          );
        await s.audit({
          action: 'explain',
          crud: 'R',
          target: `identity/patient/${patientId}`,
          patients: [patientId],
        });
        return found;
      });
      await printAll(json(), e, () => explainText(e));
    });
}

const DONE: Record<CommandKind, string> = { link: 'linked', unlink: 'unlinked', reject: 'rejected' };

/** What a decision command prints and returns, once the matcher answered (or did not in time). */
interface DecisionResult extends CommandOutcome {
  kind: CommandKind;
  commandId: string;
  patientId: string;
  otherPatientId: string;
  decidedBy: string;
}

async function decide(
  kind: CommandKind,
  ids: { patientId: string; otherPatientId: string },
  o: { reason: string; wait: string },
): Promise<DecisionResult> {
  const reason = o.reason.trim();
  if (reason === '') throw new HubError('HUB_INPUT_INVALID', "--reason: required, the steward's why");
  const waitS = Number(o.wait);
  if (!Number.isFinite(waitS) || waitS < 0 || waitS > 600)
    throw new HubError('HUB_INPUT_INVALID', '--wait: seconds, from 0 to 600');
  return withSession(async (s) => {
    const { commandId } = await requestDecision(s.db, s.schema, {
      kind,
      ...ids,
      decidedBy: s.steward,
      reason,
    });
    const outcome = await awaitCommand(s.db, s.schema, commandId, { timeoutMs: waitS * 1000 });
    await s.audit({
      action: kind,
      crud: 'U',
      target: `identity/pair/${pairKeyOf(ids.patientId, ids.otherPatientId).pairKey}`,
      patients: [ids.patientId, ids.otherPatientId],
      reason,
      detail: {
        command: commandId,
        status: outcome.status,
        ...(outcome.eventId ? { event: outcome.eventId } : {}),
      },
    });
    if (outcome.status === 'refused')
      throw new HubError(
        'HUB_CONFLICT',
        `the identity matcher refused: ${outcome.error ?? 'no reason given'}`,
      );
    return { kind, commandId, ...ids, decidedBy: s.steward, ...outcome };
  });
}

/** A decision's line: done with its event, or still queued (the matcher applies it when it runs). */
export function decisionText(r: DecisionResult): string {
  const pair = `${r.patientId} ${r.otherPatientId}`;
  if (r.status === 'done') return `${DONE[r.kind]}: ${pair} (event ${r.eventId ?? '?'}, by ${r.decidedBy})`;
  return [
    `queued: ${r.kind} ${pair} (command ${r.commandId}) is pending: the identity matcher has not applied it yet.`,
    `  It stays queued and is applied when the matcher runs; check with \`hub identity explain ${r.patientId}\`.`,
  ].join('\n');
}

function registerDecisions(identity: Command, json: () => boolean): void {
  const about: Record<CommandKind, string> = {
    link: 'link two records as one person (every read model shows them together)',
    unlink: 'unlink two linked records (every read model splits them again)',
    reject: 'reject a proposed pair (the matcher never proposes or links it again)',
  };
  for (const kind of ['link', 'unlink', 'reject'] as const) {
    identity
      .command(`${kind} <patientId> <otherPatientId>`)
      .description(about[kind])
      .requiredOption('--reason <text>', 'why (recorded on the decision event and the audit trail)')
      .option('--wait <seconds>', 'how long to wait for the identity matcher to publish it', '30')
      .action(async (patientId: string, otherPatientId: string, o: { reason: string; wait: string }) => {
        const r = await decide(kind, { patientId, otherPatientId }, o);
        await printAll(json(), r, () => decisionText(r));
      });
  }
}

export function registerIdentityCommands(program: Command): void {
  const json = () => isJsonOutput(program);
  const identity = program
    .command('identity')
    .description(
      'master patient index: review the worklist, link, unlink, reject, explain (docs/identity.md)',
    );
  registerReads(identity, json);
  registerDecisions(identity, json);
}
