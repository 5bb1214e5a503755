import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inputProbes, unauthProbes } from '../support/security-doors.js';
import { startLocalHub, type LocalHub } from '../support/security-local.js';
import { runMllpProbes } from '../support/security-mllp.js';
import { bolaProbes, scopeProbes } from '../support/security-probes.js';
import { fetchRoutes, type ApiRoute } from '../support/security-routes.js';
import { AREAS, SecurityReport, closeAgents, runHttpProbes, type Area } from '../support/security-runner.js';
import { loadTarget, type SecurityTarget } from '../support/security-target.js';
import { tokenProbes } from '../support/security-tokens.js';

/**
 * The hub's doors, tried as a hospital security team would: BOLA over every
 * API route and search parameter, the scope matrix, token attacks,
 * unauthenticated probes of every service port, hostile input, MLLP abuse.
 * Prints tried / refused / allowed / leaked per area (stderr, and
 * .hub/security-report.json); zero leaked is the pass.
 *
 * Default: starts the hub itself (every service from its main.ts) on the
 * shared test stack. HUB_SECURITY_TARGET=<file.json>: probes that deployment
 * instead (docs/security-suite.md).
 */
const REPORT_PATH = process.env['HUB_SECURITY_REPORT'] ?? '.hub/security-report.json';

describe('security suite: every door', { timeout: 240_000 }, () => {
  const report = new SecurityReport();
  let local: LocalHub | null = null;
  let target: SecurityTarget;
  let routes: ApiRoute[];
  let maxIngestBytes = 24 * 1024 * 1024;

  beforeAll(async () => {
    const file = process.env['HUB_SECURITY_TARGET'];
    if (file) {
      target = loadTarget(file);
      maxIngestBytes = Number(process.env['HUB_SECURITY_MAX_INGEST_BYTES'] ?? maxIngestBytes);
    } else {
      local = await startLocalHub();
      target = local.target;
      maxIngestBytes = local.maxIngestBytes;
    }
    routes = await fetchRoutes(target.api);
  }, 420_000);

  afterAll(async () => {
    const leaks = report.leaks.map((l) => `  [${l.area}] ${l.probe} -> ${l.status}: ${l.why}`).join('\n');
    const notes = [...report.notes].map(([n, c]) => `  ${n}: ${c}`).join('\n');
    process.stderr.write(
      `\nsecurity suite against ${target?.name ?? '?'} (${routes?.length ?? 0} API routes)\n${report.table()}\n` +
        (leaks ? `leaks:\n${leaks}\n` : '') +
        (notes ? `notes:\n${notes}\n` : ''),
    );
    report.write(REPORT_PATH, target?.name ?? '?');
    closeAgents();
    await local?.stop();
  }, 120_000);

  const expectNoLeaks = (area: Area) => {
    const t = report.tally.get(area);
    expect(t?.tried ?? 0, `${area}: nothing was tried`).toBeGreaterThan(0);
    expect(report.leaksOf(area).map((l) => `${l.probe} -> ${l.status}: ${l.why}`)).toEqual([]);
  };

  it('local mode: every service of the hub started (a service left out is not probed)', (ctx) => {
    if (!local) ctx.skip();
    else expect(local.notReady).toEqual([]);
  });

  it('BOLA: patient A reads nothing of patient B, through any route or search parameter', async () => {
    await runHttpProbes(report, await bolaProbes(target, routes));
    expectNoLeaks('bola');
  });

  it('scope matrix: nothing is answered outside a token scopes', async () => {
    await runHttpProbes(report, await scopeProbes(target, routes));
    expectNoLeaks('scopes');
  });

  it('token attacks: forged, expired, misaddressed and unknown-patient tokens get nothing', async () => {
    await runHttpProbes(report, await tokenProbes(target, routes));
    expectNoLeaks('tokens');
  });

  it('unauthenticated: no service port serves PHI or takes a write without a token', async () => {
    await runHttpProbes(report, await unauthProbes(target, routes, (n) => report.note(n)));
    expectNoLeaks('unauthenticated');
  });

  it('input hardening: hostile input gets a 4xx, never a 5xx, driver text or another patient', async () => {
    await runHttpProbes(report, await inputProbes(target, routes, { maxIngestBytes }), 4);
    expectNoLeaks('input');
  });

  it('MLLP abuse: idle, trickling and non-MLLP connections are closed, none is acknowledged AA', async (ctx) => {
    if (!target.mllp) ctx.skip();
    else await runMllpProbes(report, target.mllp);
    expectNoLeaks('mllp');
  });

  it('covers every area', () => {
    expect(AREAS.every((a) => (report.tally.get(a)?.tried ?? 0) > 0 || (a === 'mllp' && !target.mllp))).toBe(
      true,
    );
  });
});
