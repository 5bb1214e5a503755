import type { Command } from 'commander';
import { databaseEnv, kafkaEnv, loadConfig, topicNamer, z, schemaNameEnv } from '../libs/config/index.js';
import { existsSync } from 'node:fs';
import type { ChainVerdict } from '../libs/audit/chain.js';
import { DEV_CHAIN_KEY_FILE, auditTrailEnv, readChainKey } from '../libs/audit/key.js';
import { reconcileAudit, type AuditReconciliation } from '../libs/audit/reconcile.js';
import { listAudit, verifyAuditChain } from '../libs/audit/store.js';
import { AUDIT_TOPIC, auditDlqTopic, auditProjectorGroup } from '../libs/audit/topic.js';
import { HubError } from '../libs/errors/index.js';
import { consumerGroupsOf } from '../libs/kafka/groups.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { cliDb, cliKafka } from './env.js';

function auditEnv() {
  return loadConfig(
    z.object({
      ...kafkaEnv,
      ...databaseEnv,
      AUDIT_SCHEMA: schemaNameEnv('audit'),
      AUDIT_TOPIC: z.string().min(1).optional(),
      ...auditTrailEnv,
    }),
  );
}

/**
 * --key-file, else AUDIT_CHAIN_KEY_FILE, else the local development key when
 * one exists (never created here); with the file it came from, which the
 * verdict names (a path, never the key) so that a wrong key is not taken for an edit.
 */
function chainKeyOf(file: string | undefined): { key: Buffer | null; file: string | null } {
  if (file) return { key: readChainKey(file), file };
  return existsSync(DEV_CHAIN_KEY_FILE)
    ? { key: readChainKey(DEV_CHAIN_KEY_FILE), file: DEV_CHAIN_KEY_FILE }
    : { key: null, file: null };
}

/**
 * Where the chain breaks and why, in seqs and reason codes (never row
 * content: rows name patients), with what the reason leaves open. Pure.
 */
export function chainBreakText(chain: Extract<ChainVerdict, { ok: false }>, keyFile: string | null): string {
  const where = `audit chain BROKEN at seq ${chain.brokenAt} (${chain.reason}); ${chain.rows - 1} row(s) before it verify`;
  if (chain.reason === 'key-required')
    return `${where}: the rows from there on are keyed; pass --key-file or set AUDIT_CHAIN_KEY_FILE`;
  if (chain.firstKeyed)
    return `${where}: it is the first keyed row, where a wrong chain key breaks too (key used: ${keyFile ?? 'none'}); with the writer's key, the row was changed`;
  return where;
}

interface VerifyOptions {
  schema?: string;
  keyFile?: string;
  topic?: string;
  dlqTopic?: string;
  group?: string;
  chainOnly?: boolean;
}

/** The chain verdict and the table-vs-topic check, for a person; `keyFile`: where the chain key came from. Pure. */
export function verifyText(
  chain: ChainVerdict,
  topic: AuditReconciliation | null,
  keyFile: string | null = null,
): string {
  const lines: string[] = [];
  if (chain.ok) {
    const keyed =
      chain.keyedFrom === null || chain.keyedFrom === undefined
        ? 'unkeyed (chain version 1)'
        : `keyed from seq ${chain.keyedFrom}; ${chain.unkeyedRows ?? 0} unkeyed row(s) before it`;
    lines.push(`audit chain ok: ${chain.rows} row(s), head ${chain.lastHash}, ${keyed}`);
  } else {
    lines.push(chainBreakText(chain, keyFile));
  }
  if (topic) {
    const d = topic.deadLettered;
    const reasons = Object.entries(d.byReason)
      .map(([r, n]) => `${r}: ${n}`)
      .join(', ');
    lines.push(
      `audit table vs topic ${topic.topic.name}: ${topic.topic.records} record(s) on the topic, ${topic.table.rows} row(s) in the table (${topic.table.matched} matched)`,
      `  known gaps (dead-lettered): ${d.count}${d.count > 0 ? ` [${reasons}] first: ${d.first.join(', ')}` : ''}`,
      `  not yet appended (projector lag): ${topic.pending}`,
      `  repeated ids on the topic (appended once): ${topic.duplicates}`,
      `  UNEXPLAINED missing from the table: ${topic.missing.count}${topic.missing.count > 0 ? ` first: ${topic.missing.first.join(', ')}` : ''}`,
      `  rows whose content differs from the topic: ${topic.altered.count}${topic.altered.count > 0 ? ` first: ${topic.altered.first.join(', ')}` : ''}`,
      `  table rows no topic record accounts for: ${topic.notOnTopic ?? 'unknown (the topic no longer starts at offset 0)'}`,
    );
  }
  lines.push(`audit verify: ${chain.ok && (topic?.ok ?? true) ? 'ok' : 'FAILED'}`);
  return lines.join('\n');
}

async function verifyAction(program: Command, o: VerifyOptions): Promise<void> {
  const cfg = auditEnv();
  const schema = o.schema ?? cfg.AUDIT_SCHEMA;
  const { key, file: keyFile } = chainKeyOf(o.keyFile ?? cfg.AUDIT_CHAIN_KEY_FILE);
  const db = cliDb(cfg, { min: 0, max: 2 });
  try {
    const chain = await verifyAuditChain(db, schema, { key });
    let topic: AuditReconciliation | null = null;
    if (!o.chainOnly) {
      const names = topicNamer(cfg.HUB_TOPIC_SUFFIX);
      topic = await reconcileAudit({
        kafka: cliKafka(cfg),
        db,
        schema,
        topic: o.topic ?? cfg.AUDIT_TOPIC ?? names(AUDIT_TOPIC),
        dlqTopic: o.dlqTopic ?? cfg.AUDIT_DLQ_TOPIC ?? auditDlqTopic(names),
        groupId: o.group ?? auditProjectorGroup(schema),
      });
    }
    const json = Boolean(program.opts()['json']);
    process.stdout.write(
      json
        ? // The chain verdict's fields stay at the top (as before the topic check); `ok` covers both.
          `${JSON.stringify({ ...chain, ok: chain.ok && (topic?.ok ?? true), chain, topic })}\n`
        : `${verifyText(chain, topic, keyFile)}\n`,
    );
    if (!chain.ok) {
      throw new HubError('HUB_AUDIT_CHAIN_BROKEN', chainBreakText(chain, keyFile), {
        details: { ...chain },
      });
    }
    if (topic && !topic.ok) {
      throw new HubError(
        'HUB_AUDIT_CHAIN_BROKEN',
        `audit table does not match the topic: ${topic.missing.count} record(s) missing, ${topic.altered.count} altered, ${topic.notOnTopic ?? 0} row(s) not on the topic`,
      );
    }
  } finally {
    await db.destroy();
  }
}

/** `hub audit …`: the API's tamper-evident audit log. */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('audit log of PHI access (hash-chained, append-only)');
  audit
    .command('verify')
    .description(
      'walk the (keyed) hash chain and check the table against the audit topic and its dead letters; exits 1 on a broken chain or an unexplained gap',
    )
    .option('--schema <name>', 'audit schema (default AUDIT_SCHEMA or "audit")')
    .option(
      '--key-file <file>',
      'chain key (default AUDIT_CHAIN_KEY_FILE, else .hub/audit-chain.key when present)',
    )
    .option('--topic <name>', 'audit topic (default AUDIT_TOPIC or hub.audit.v1 + HUB_TOPIC_SUFFIX)')
    .option(
      '--dlq-topic <name>',
      'audit dead-letter topic (default AUDIT_DLQ_TOPIC or hub.dlq.audit + HUB_TOPIC_SUFFIX)',
    )
    .option('--group <id>', 'the audit projector consumer group (default hub.audit.projector.<schema>)')
    .option('--chain-only', 'only walk the chain; do not read Kafka')
    .action((o: VerifyOptions) => verifyAction(program, o));
  audit
    .command('list')
    .description('latest audit rows (who, which patient, what, outcome, when, from where)')
    .option('--patient <id>', 'only this patient')
    .option('--limit <n>', 'rows', '20')
    .option('--schema <name>', 'audit schema')
    .action(async (o: { patient?: string; limit: string; schema?: string }) => {
      const cfg = auditEnv();
      const db = cliDb(cfg, { min: 0, max: 1 });
      try {
        const rows = await listAudit(db, o.schema ?? cfg.AUDIT_SCHEMA, {
          limit: Math.min(1000, Math.max(1, Number(o.limit) || 20)),
          ...(o.patient ? { patientId: o.patient } : {}),
        });
        process.stdout.write(`${JSON.stringify(rows, null, program.opts()['json'] ? 2 : 0)}\n`);
      } finally {
        await db.destroy();
      }
    });
  audit
    .command('readers')
    .description('who reads the clinical topics directly: Kafka consumer groups with their topics')
    .action(async () => {
      const cfg = loadConfig(z.object({ ...kafkaEnv }));
      const kafka = cliKafka(cfg);
      const readers = await consumerGroupsOf(kafka, clinicalTopics(topicNamer(cfg.HUB_TOPIC_SUFFIX))).catch(
        (cause: unknown) => {
          throw new HubError('HUB_KAFKA_UNAVAILABLE', 'could not reach Kafka', { cause });
        },
      );
      const json = Boolean(program.opts()['json']);
      process.stdout.write(
        json
          ? `${JSON.stringify(readers, null, 2)}\n`
          : `${readers.map((r) => `${r.groupId}  ${r.state}  members=${r.members}  ${r.topics.join(',')}`).join('\n') || '(none)'}\n`,
      );
    });
}
