import type { Command } from 'commander';
import { databaseEnv, kafkaEnv, loadConfig, topicNamer, z, schemaNameEnv } from '../libs/config/index.js';
import { listAudit, verifyAuditChain } from '../libs/audit/store.js';
import { createDb } from '../libs/db/index.js';
import { HubError } from '../libs/errors/index.js';
import { consumerGroupsOf } from '../libs/kafka/groups.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { cliKafka } from './env.js';

function auditEnv() {
  return loadConfig(
    z.object({
      ...databaseEnv,
      AUDIT_SCHEMA: schemaNameEnv('audit'),
    }),
  );
}

/** `hub audit …`: the API's tamper-evident audit log. */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('audit log of PHI access (hash-chained, append-only)');
  audit
    .command('verify')
    .description('walk the hash chain; exits 1 naming the first row that does not verify')
    .option('--schema <name>', 'audit schema (default AUDIT_SCHEMA or "audit")')
    .action(async (o: { schema?: string }) => {
      const cfg = auditEnv();
      const db = createDb(cfg.DATABASE_URL, { pool: { min: 0, max: 1 } });
      try {
        const v = await verifyAuditChain(db, o.schema ?? cfg.AUDIT_SCHEMA);
        const json = Boolean(program.opts()['json']);
        if (!v.ok) {
          if (json) process.stdout.write(`${JSON.stringify(v)}\n`);
          throw new HubError(
            'HUB_AUDIT_CHAIN_BROKEN',
            `audit chain broken at seq ${v.brokenAt} (${v.reason}); ${v.rows - 1} row(s) before it verify`,
            { details: { ...v } },
          );
        }
        process.stdout.write(
          json ? `${JSON.stringify(v)}\n` : `audit chain ok: ${v.rows} row(s), head ${v.lastHash}\n`,
        );
      } finally {
        await db.destroy();
      }
    });
  audit
    .command('list')
    .description('latest audit rows (who, which patient, what, outcome, when, from where)')
    .option('--patient <id>', 'only this patient')
    .option('--limit <n>', 'rows', '20')
    .option('--schema <name>', 'audit schema')
    .action(async (o: { patient?: string; limit: string; schema?: string }) => {
      const cfg = auditEnv();
      const db = createDb(cfg.DATABASE_URL, { pool: { min: 0, max: 1 } });
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
      const kafka = cliKafka(cfg.KAFKA_BROKERS);
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
