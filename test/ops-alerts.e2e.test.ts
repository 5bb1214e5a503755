import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAuditMetrics } from '../libs/audit/metrics.js';
import { createDeliveryMetrics } from '../libs/delivery/metrics.js';
import { createHttpApp } from '../libs/http/index.js';
import { createLogger } from '../libs/telemetry/logger.js';
import { createMetrics } from '../libs/telemetry/metrics.js';
import { repoDir } from './support/processes.js';

const alertsFile = join(repoDir, 'deploy', 'prometheus', 'alerts.yml');
const alertsTestFile = join(repoDir, 'deploy', 'prometheus', 'alerts.test.yml');
const alerts = readFileSync(alertsFile, 'utf8');
const runbook = readFileSync(join(repoDir, 'docs', 'runbook.md'), 'utf8');
const dashboard = JSON.parse(readFileSync(join(repoDir, 'deploy', 'grafana', 'hub.json'), 'utf8')) as {
  uid: string;
  panels: { type: string; title: string; targets?: { expr: string }[] }[];
};

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
if (!hasPromtool) {
  process.stderr.write(
    '\n[ops-alerts] promtool not found: SKIPPING the Prometheus rule tests (apt-get install prometheus)\n\n',
  );
}

/** Metric names a service actually exposes: from the hub registry plus readiness. */
async function exposedMetricNames(): Promise<Set<string>> {
  const m = createMetrics({ defaultMetrics: false });
  createHttpApp({
    logger: createLogger({ name: 'alerts-test', level: 'silent' }),
    metrics: m.registry,
    readiness: { postgres: () => Promise.resolve({ ok: true }) },
  });
  // The API's own: the audit trail's dead letters and lag.
  createAuditMetrics(m.registry);
  // The delivery service's own: per subscription.
  createDeliveryMetrics(m.registry);
  const names = new Set((await m.registry.getMetricsAsJSON()).map((x) => x.name));
  return names;
}

function referencedHubMetrics(text: string): Set<string> {
  return new Set(
    [...text.matchAll(/\bhub_[a-z0-9_]+/g)].map((x) => x[0].replace(/_(bucket|count|sum)$/, '')),
  );
}

describe('ops: alert rules, runbook and dashboard', () => {
  it.skipIf(!hasPromtool)('alert rules are valid and their promtool unit tests pass', () => {
    const check = spawnSync('promtool', ['check', 'rules', alertsFile], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const test = spawnSync('promtool', ['test', 'rules', alertsTestFile], { encoding: 'utf8' });
    expect(test.status, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toContain('SUCCESS');
  });

  it('every alert links to a runbook section that exists', () => {
    const names = [...alerts.matchAll(/- alert: (\w+)/g)].map((x) => x[1]!);
    expect(names.length).toBeGreaterThanOrEqual(8);
    const anchors = new Set(
      [...runbook.matchAll(/^#{2,3} (.+)$/gm)].map((x) =>
        x[1]!
          .trim()
          .toLowerCase()
          .replace(/[^a-z0-9]+/g, ''),
      ),
    );
    for (const url of alerts.matchAll(/runbook_url: docs\/runbook\.md#(\w+)/g)) {
      expect(anchors, `runbook section for #${url[1]}`).toContain(url[1]);
    }
    for (const n of names) expect(runbook, `runbook mentions ${n}`).toContain(n);
  });

  it('alerts and dashboard only use metrics the services expose', async () => {
    const exposed = await exposedMetricNames();
    const panelExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
    for (const name of [...referencedHubMetrics(alerts), ...referencedHubMetrics(panelExprs)]) {
      expect(exposed, `metric ${name}`).toContain(name);
    }
  });

  it('the dashboard is Grafana JSON with queries on every panel', () => {
    expect(dashboard.uid).toBe('clinical-hub');
    const graphs = dashboard.panels.filter((p) => p.type !== 'row');
    expect(graphs.length).toBeGreaterThan(10);
    for (const p of graphs) expect(p.targets?.length, p.title).toBeGreaterThan(0);
  });
});
