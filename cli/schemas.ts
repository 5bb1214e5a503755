/** `hub schemas …`: the Avro contracts in schemas/, checked against the registry or git history. */
import type { Command } from 'commander';
import { join } from 'node:path';
import { topicNamer } from '../libs/config/index.js';
import {
  assertAllCompatible,
  checkAgainstEarlier,
  checkCompatibility,
  registerAllSchemas,
  type CompatibilityFinding,
} from '../libs/events/contracts.js';
import { EVENT_CONTRACTS } from '../libs/events/index.js';
import {
  composeAtRevision,
  composeEvents,
  readSchemaDir,
  schemaRevisions,
  type ComposedEvent,
} from '../libs/events/schema-source.js';
import { cliRegistry, commonEnv, repoDir } from './env.js';
import { formatTable, isJsonOutput, print } from './output.js';

function findingsTable(findings: CompatibilityFinding[]): string {
  return formatTable(
    findings.map((f) => ({
      subject: f.subject,
      result: f.newSubject ? 'new' : f.compatible ? 'compatible' : 'INCOMPATIBLE',
      problems: f.problems.join('; '),
    })),
  );
}

/**
 * The working tree against schemas/ at every earlier commit that changed it:
 * the incompatible findings, then one compatible finding per other subject.
 */
function checkGitHistory(json: boolean, candidates: readonly ComposedEvent[]): CompatibilityFinding[] {
  const revs = schemaRevisions(repoDir);
  const findings: CompatibilityFinding[] = [];
  for (const rev of revs) {
    for (const f of checkAgainstEarlier(
      candidates,
      composeAtRevision(repoDir, rev),
      `schemas/ at ${rev.slice(0, 10)}`,
    )) {
      if (!f.compatible) findings.push(f);
    }
  }
  const bad = new Set(findings.map((f) => f.subject));
  if (!json) process.stderr.write(`checked against ${revs.length} earlier revision(s)\n`);
  return [
    ...findings,
    ...candidates
      .filter((c) => !bad.has(c.subject))
      .map((c) => ({ type: c.type, subject: c.subject, compatible: true, problems: [], newSubject: false })),
  ];
}

async function runCheck(json: boolean, o: { gitHistory?: boolean }): Promise<void> {
  const { files, catalog } = readSchemaDir(join(repoDir, 'schemas'));
  const candidates = composeEvents(files, catalog);
  const findings = o.gitHistory
    ? checkGitHistory(json, candidates)
    : await checkCompatibility(cliRegistry(commonEnv()), candidates);
  print(json, findings, () => findingsTable(findings));
  assertAllCompatible(findings);
}

async function runRegister(json: boolean): Promise<void> {
  const cfg = commonEnv();
  const topic = topicNamer(cfg.HUB_TOPIC_SUFFIX);
  const results = await registerAllSchemas(cliRegistry(cfg), {
    topicFor: (t) => topic(EVENT_CONTRACTS[t].topic),
  });
  print(json, results, () => formatTable(results.map((r) => ({ ...r }))));
}

function runList(json: boolean): void {
  const rows = Object.values(EVENT_CONTRACTS).map((c) => ({
    type: c.type,
    topic: c.topic,
    subject: c.subject,
  }));
  print(json, rows, () => formatTable(rows));
}

export function registerSchemasCommands(program: Command): void {
  const json = () => isJsonOutput(program);
  const schemas = program.command('schemas').description('Avro contracts in schemas/ and the registry');
  schemas
    .command('register')
    .description('register every event schema (TopicRecordNameStrategy, FULL_TRANSITIVE); idempotent')
    .action(() => runRegister(json()));
  schemas
    .command('list')
    .description('event types with their topic and subject')
    .action(() => runList(json()));
  schemas
    .command('check')
    .description('check schemas/ (working tree) for compatibility before it lands')
    .option('--git-history', 'against schemas/ at every earlier commit that changed it (no registry needed)')
    .option('--registry', 'against every version registered in the registry (the default)')
    .action((o: { gitHistory?: boolean }) => runCheck(json(), o));
}
