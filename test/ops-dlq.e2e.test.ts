import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '@medplum/fhirtypes';
import { completeEvent } from '../cli/publish.js';
import { isAuditEvent, summarize } from '../libs/audit/event.js';
import { createProjectionRunner, migrateProjection, type Projection } from '../libs/projections/runner.js';
import { HubError } from '../libs/errors/index.js';
import type { ClinicalEvent } from '../libs/events/index.js';
import { ensureTopics } from '../libs/kafka/admin.js';
import type { ConsumerRunner } from '../libs/kafka/consumer.js';
import { createHttpApp } from '../libs/http/index.js';
import { scanTopic } from '../libs/kafka/scan.js';
import { consumerMetricsHook, createMetrics } from '../libs/telemetry/metrics.js';
import {
  findPatient,
  patientDirectoryProjection,
  PATIENT_TOPIC,
} from '../services/patient-directory/projection.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { repoDir, runHub } from './support/processes.js';

const CANARY = 'Zzdlqcanary';
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

/**
 * The dead-letter counter as this process exposes it, fed to the real alert
 * rule in promtool: the labels the code writes are the ones the rule and its
 * annotations use.
 */
async function expectDeadLetterAlertFor(metrics: ReturnType<typeof createMetrics>): Promise<void> {
  const series = (await metrics.deadLetters.get()).values;
  expect(series).toHaveLength(1);
  const labels = series[0]!.labels as Record<string, string>;
  if (!hasPromtool) {
    process.stderr.write('[ops-dlq] promtool not found: SKIPPING the alert check on the real metric\n');
    return;
  }
  const sel = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  const dir = mkdtempSync(join(tmpdir(), 'hub-alert-'));
  try {
    const file = join(dir, 'dlq.test.yml');
    writeFileSync(
      file,
      [
        'rule_files:',
        `  - ${join(repoDir, 'deploy', 'prometheus', 'alerts.yml')}`,
        'evaluation_interval: 1m',
        'tests:',
        '  - interval: 1m',
        '    input_series:',
        `      - series: 'hub_dead_letters_total{${sel}}'`,
        `        values: '_x5 ${series[0]!.value}x20'`,
        '    alert_rule_test:',
        '      - eval_time: 10m',
        '        alertname: HubDeadLettersGrowing',
        '        exp_alerts:',
        '          - exp_labels:',
        '              severity: warning',
        `              consumer: '${labels['consumer']}'`,
        `              reason: '${labels['reason']}'`,
        '            exp_annotations:',
        `              summary: 'Dead letters from ${labels['consumer']} (${labels['reason']})'`,
        "              description: 'Records were parked on a dead-letter topic in the last 15 minutes: they are not in the read models.'",
        '              runbook_url: docs/runbook.md#hubdeadlettersgrowing',
        '',
      ].join('\n'),
    );
    const r = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const poisoned = new Set<string>();

function registered(patientId: string, messageId: string): ClinicalEvent {
  return completeEvent(
    {
      type: 'PatientRegistered',
      data: {
        meta: { occurredAt: Date.UTC(2026, 1, 1), source: { system: 'OPS-EHR', facility: 'E2E', messageId } },
        patientId,
        demographics: {
          identifiers: [{ system: 'urn:oid:1.2.3', value: `MRN-${patientId}`, type: 'MR' }],
          names: [{ family: CANARY, given: ['Dead'], use: 'official' }],
          birthDate: '1970-01-01',
        },
      },
    },
    1,
    Date.now(),
  );
}

/**
 * Poison event → dead letter with its reason → metric → `hub dlq list/show`
 * (no PHI unless asked, audited) → fix → `hub dlq redrive` → applied once;
 * `hub dlq discard` hides one; `hub status` sees it all. The CLI runs as its
 * own process, as an operator would run it.
 */
describe('ops: dead letters end to end', () => {
  let ctx: TestContext;
  let dlq: string;
  let runner: ConsumerRunner;
  let env: Record<string, string>;
  const metrics = createMetrics({ defaultMetrics: false });
  let projection: Projection;

  beforeAll(async () => {
    ctx = await createTestContext('opsdlq');
    dlq = `hub.dlq.${ctx.id}`;
    ctx.extraTopics.push(dlq, `hub.audit.v1.${ctx.id}`);
    await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
    const base = patientDirectoryProjection(ctx.topic(PATIENT_TOPIC));
    projection = {
      ...base,
      async apply(trx, schema, records) {
        if (records.some((r) => poisoned.has(r.event.data.patientId))) {
          // What a projection bug looks like to the runner: a non-retriable failure.
          throw new HubError('HUB_PROJECTION_FAILED', 'patient-directory rejected the event');
        }
        await base.apply(trx, schema, records);
      },
    };
    await migrateProjection(ctx.db, ctx.schema, projection);
    runner = createProjectionRunner({
      projection,
      schema: ctx.schema,
      db: ctx.db,
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      dlqTopic: dlq,
      logger: ctx.logger,
      onDeadLetter: (dl) => metrics.deadLetters.inc({ consumer: dl.consumer, reason: dl.reasonCode }),
      onBatch: consumerMetricsHook(metrics),
    });
    await runner.start();
    env = {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      DATABASE_URL: ctx.ep.databaseUrl,
      HUB_TOPIC_SUFFIX: ctx.id,
      HUB_OPS_SCHEMA: ctx.schema,
      HUB_OPERATOR: 'e2e-operator',
    };
  });
  afterAll(async () => {
    await runner?.stop();
    await ctx?.cleanup();
  });

  const hubJson = <T>(args: string[]): T => {
    const r = runHub(['--json', ...args], env);
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as T;
  };
  const patient = (id: string) => findPatient(ctx.db, ctx.schema, id);

  it('parks a poison event with its reason, counts it, and lists it without PHI', async () => {
    poisoned.add('OPS-POISON');
    await ctx.producer.publish([
      registered('OPS-1', 'm1'),
      registered('OPS-POISON', 'm2'),
      registered('OPS-2', 'm3'),
    ]);
    await eventually(async () => ((await patient('OPS-1')) && (await patient('OPS-2')) ? true : undefined), {
      what: 'good events applied',
    });
    const parked = await eventually(async () => {
      const r = await scanTopic(ctx.kafka, dlq);
      return r.length === 1 ? r : undefined;
    });
    expect(parked[0]!.headers['hub-dlq-reason-code']).toBe('HUB_PROJECTION_FAILED');
    expect(await patient('OPS-POISON')).toBeUndefined();
    expect(await metrics.registry.metrics()).toMatch(
      /hub_dead_letters_total\{consumer="[^"]+",reason="HUB_PROJECTION_FAILED"\} 1/,
    );

    await expectDeadLetterAlertFor(metrics);

    const listed = hubJson<
      { reasonCode: string; source: { topic: string }; state: string; eventType: string }[]
    >(['dlq', 'list']);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      reasonCode: 'HUB_PROJECTION_FAILED',
      source: { topic: ctx.topic(PATIENT_TOPIC) },
      state: 'open',
      eventType: 'PatientRegistered',
    });
    const table = runHub(['dlq', 'list'], env);
    expect(table.status).toBe(0);
    expect(table.stdout).toContain('HUB_PROJECTION_FAILED');
    expect(table.stdout + table.stderr).not.toContain(CANARY);
  });

  it('shows metadata only, and the payload only with an audited reason', async () => {
    const plain = runHub(['dlq', 'show', dlq, '0', '0'], env);
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('HUB_PROJECTION_FAILED');
    expect(plain.stdout).not.toContain(CANARY);

    const noReason = runHub(['dlq', 'show', dlq, '0', '0', '--include-phi'], env);
    expect(noReason.status).toBe(2);
    expect(noReason.stderr).toMatch(/--reason/);
    expect(noReason.stdout).not.toContain(CANARY);

    const missing = runHub(['dlq', 'show', dlq, '0', '99'], env);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/hub dlq list/);

    const withPhi = runHub(
      ['dlq', 'show', dlq, '0', '0', '--include-phi', '--reason', 'INC-42 mapping bug'],
      env,
    );
    expect(withPhi.status, withPhi.stderr).toBe(0);
    expect(withPhi.stdout).toContain(CANARY);
    const audit = await scanTopic(ctx.kafka, `hub.audit.v1.${ctx.id}`);
    expect(audit).toHaveLength(1);
    // A FHIR AuditEvent, as the API writes, so that the audit projector chains it into the table.
    const event: unknown = JSON.parse(audit[0]!.value!.toString());
    expect(isAuditEvent(event)).toBe(true);
    expect(event).toMatchObject({ purposeOfEvent: [{ text: 'INC-42 mapping bug' }] });
    expect(summarize(event as AuditEvent)).toMatchObject({
      action: 'dlq.show.include-phi',
      agent: 'e2e-operator',
      route: `${dlq}/0/0`,
      patientId: 'OPS-POISON',
    });
  });

  it('after a fix, redrive applies the event exactly once and hides it from the list', async () => {
    poisoned.delete('OPS-POISON');
    const refused = runHub(['dlq', 'redrive', '--topic', dlq], env);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/--all/);

    const report = hubJson<{ result: string }[]>(['dlq', 'redrive', '--topic', dlq, '--all']);
    expect(report).toEqual([expect.objectContaining({ result: `redriven to ${ctx.topic(PATIENT_TOPIC)}` })]);
    const row = await eventually(() => patient('OPS-POISON'), { what: 'redriven event applied' });
    expect(row.version).toBe(1);

    // Again: nothing goes out a second time.
    const again = hubJson<{ result: string }[]>(['dlq', 'redrive', '--topic', dlq, '--all']);
    expect(again).toEqual([expect.objectContaining({ result: 'skipped: already redriven' })]);
    expect(hubJson<unknown[]>(['dlq', 'list'])).toEqual([]);
    expect(hubJson<{ state: string }[]>(['dlq', 'list', '--all'])).toEqual([
      expect.objectContaining({ state: 'redriven' }),
    ]);

    // Applied once: one applied_events row for the patient's event, no new dead letter.
    await eventually(() => {
      const s = hubJson<{ projections: { schema: string; lag: string }[] }>([
        'status',
        '--schemas',
        ctx.schema,
      ]);
      return Promise.resolve(
        s.projections.find((p) => p.schema === ctx.schema && p.lag === '0') ? true : undefined,
      );
    });
    const countQuery = ctx.db.withSchema(ctx.schema).from('applied_events').count({ n: '*' });
    const applied = (await countQuery) as { n: string }[];
    expect(Number(applied[0]!.n)).toBe(3);
    expect(await scanTopic(ctx.kafka, dlq)).toHaveLength(1);
  });

  it('discards with a reason, and status reports dead letters and the source', async () => {
    poisoned.add('OPS-POISON-2');
    await ctx.producer.publish([registered('OPS-POISON-2', 'm4')]);
    await eventually(async () => ((await scanTopic(ctx.kafka, dlq)).length === 2 ? true : undefined));

    const noReason = runHub(['dlq', 'discard', '--topic', dlq, '--at', '0:1'], env);
    expect(noReason.status).toBe(2);
    const badAt = runHub(
      ['dlq', 'discard', '--topic', dlq, '--at', '0:9', '--reason', 'test data only'],
      env,
    );
    expect(badAt.status).toBe(1);
    expect(badAt.stderr).toMatch(/hub dlq list --all/);

    const d = hubJson<{ result: string }[]>([
      'dlq',
      'discard',
      '--topic',
      dlq,
      '--at',
      '0:1',
      '--reason',
      'test data only',
    ]);
    expect(d).toEqual([expect.objectContaining({ result: 'discarded' })]);
    expect(hubJson<unknown[]>(['dlq', 'list'])).toEqual([]);

    // A service that is alive but not ready, as `hub status` should report it.
    const svc = createHttpApp({
      logger: ctx.logger,
      readiness: {
        postgres: () => Promise.resolve({ ok: true }),
        consumer: () => Promise.resolve({ ok: false, detail: 'no progress for 61000 ms' }),
      },
    });
    const url = await svc.listen({ host: '127.0.0.1', port: 0 });
    // Asynchronously: the service above answers from this process's event loop.
    const statusOut = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [join(repoDir, 'bin', 'hub.js'), '--json', 'status', '--schemas', ctx.schema],
        { env: { ...process.env, ...env, HUB_SERVICE_URLS: `stuck-projector=${url}` }, timeout: 60_000 },
        (err, stdout) => (err ? reject(new Error(err.message)) : resolve(stdout)),
      ),
    );
    const s = JSON.parse(statusOut) as {
      services: { service: string; alive: boolean; ready: boolean; failing: string }[];
      dependencies: { name: string; up: boolean }[];
      deadLetters: { topic: string; total: string; handled: number; open: string }[];
      sources: { source: string }[];
      projections: { schema: string; state: string }[];
    };
    expect(s.dependencies.every((x) => x.up)).toBe(true);
    expect(s.services).toEqual([
      expect.objectContaining({
        service: 'stuck-projector',
        alive: true,
        ready: false,
        failing: 'consumer: no progress for 61000 ms',
      }),
    ]);
    await svc.close();
    expect(s.deadLetters).toContainEqual({ topic: dlq, total: '2', handled: 2, open: '0' });
    expect(s.sources.map((x) => x.source)).toContain('OPS-EHR');
    expect(s.projections).toEqual([expect.objectContaining({ schema: ctx.schema, state: 'caught-up' })]);

    const text = runHub(['status', '--schemas', ctx.schema], env);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain('== dead letters');
    expect(text.stdout).not.toContain(CANARY);
  });
});
