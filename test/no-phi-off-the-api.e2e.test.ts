import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClinicalEvent } from '../libs/events/index.js';
import type { Hl7Adapter } from '../services/adapter-hl7/app.js';
import { eventually } from './support/harness.js';
import { hospitalDay } from './support/hospital-day.js';
import { startPatientDirectory, type RunningDirectory } from './support/patient-directory.js';
import { testHl7Adapter } from './support/private-broker.js';
import { startProjectorRun, type ProjectorRun } from './support/projectors.js';

/** The paths the issue found answering PHI (or deployment details) with no token, and their kin. */
const PROBES = [
  '/patients/P1',
  '/patients/P1/record',
  '/patients/MRN-P1',
  '/accounts/E1',
  '/accounts/E1/charges',
  '/Patient/P1',
  '/Patient/P1/$everything',
  '/fhir/Patient/P1',
  '/version',
  '/views',
];

/** Every identifier and demographic value of the test data: ids, MRNs, names, birth dates. */
function identifiersOf(events: readonly ClinicalEvent[]): string[] {
  const out = new Set<string>();
  const walk = (v: unknown, key: string): void => {
    if (typeof v === 'string') {
      if (/^(patientId|mergedPatientId|encounterId|orderId|resultId|value|family|birthDate)$/.test(key))
        out.add(v);
      if (key === 'given') out.add(v);
      return;
    }
    if (Array.isArray(v)) for (const x of v) walk(x, key);
    else if (typeof v === 'object' && v !== null && key !== 'meta')
      for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  for (const e of events) walk(e.data, 'data');
  // Numbers as text (observation values) are not identifiers.
  return [...out].filter((s) => !/^[\d.]+$/.test(s));
}

const mentions = (text: string, id: string) =>
  new RegExp(`(^|[^A-Za-z0-9_-])${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^A-Za-z0-9_-])`).test(text);

/**
 * Regression for #17 ("PHI with no token and no audit on the services' own
 * ports"): every service app other than the API and the FHIR adapter (which
 * have their own suites), built in-process on a hospital day's data, is
 * probed without a token. Each PHI-ish path answers 401 or 404 with an error
 * code and nothing else; /health, /ready and /metrics name no identifier.
 */
describe('regression: no PHI off the API — service ports answer PHI paths unauthenticated with 401/404 and a code only (#17)', () => {
  let run: ProjectorRun;
  let directory: RunningDirectory;
  let adapter: Hl7Adapter;
  const events = hospitalDay();
  const ids = identifiersOf(events);
  let apps: [string, FastifyInstance][];

  beforeAll(async () => {
    run = await startProjectorRun('nophi');
    const { ctx } = run;
    directory = await startPatientDirectory(ctx);
    adapter = testHl7Adapter(ctx, ctx.producer, { controlIdPrefix: 'NOPHI' });
    await run.publishInOrder(events, 10);
    await run.caughtUp();
    await eventually(
      async () => {
        const rows: { n: string }[] = await ctx.db
          .withSchema(directory.schema)
          .from('patients')
          .count({ n: '*' });
        return Number(rows[0]?.n) >= 4 ? true : undefined;
      },
      { what: 'the directory to hold the day', timeoutMs: 60_000 },
    );
    apps = [
      ['patient-directory', directory.directory.http],
      ['projector-portal', run.services.portal.http],
      ['projector-billing', run.services.billing.http],
      ['projector-analytics', run.services.analytics.http],
      ['adapter-hl7', adapter.http],
    ];
  });
  afterAll(async () => {
    await adapter?.http.close();
    await directory?.stop();
    await run?.cleanup();
  });

  it('has the data to leak: the read models hold the day (names, MRNs, ids)', async () => {
    expect(ids).toEqual(expect.arrayContaining(['P1', 'MRN-P1', 'Alpha', 'E1', 'O1', '1970-05-17']));
    const rows = await run.ctx.db.withSchema(directory.schema).from('patients').where({ patient_id: 'P1' });
    expect(rows).toMatchObject([{ family: 'Alpha' }]);
  });

  it('answers every PHI-ish path with 401 or 404 and a body of only an error code', async () => {
    const tried: string[] = [];
    for (const [name, app] of apps) {
      for (const url of PROBES) {
        const res = await app.inject({ url });
        const what = `${name} GET ${url} → ${res.statusCode} ${res.body}`;
        tried.push(what);
        expect([401, 404], what).toContain(res.statusCode);
        const body = res.json<Record<string, unknown>>();
        expect(Object.keys(body).sort(), what).toEqual(['code', 'message', 'retriable']);
        expect(body['code'], what).toMatch(/^HUB_(UNAUTHENTICATED|NOT_FOUND)$/);
        for (const id of ids) expect(mentions(res.body, id), `${what} names ${id}`).toBe(false);
        if (res.statusCode === 401) expect(res.headers['www-authenticate'], what).toMatch(/^Bearer /);
      }
    }
    expect(tried).toHaveLength(apps.length * PROBES.length);
  });

  it('keeps /health, /ready and /metrics free of identifiers', async () => {
    for (const [name, app] of apps) {
      for (const url of ['/health', '/ready', '/metrics']) {
        const res = await app.inject({ url });
        const what = `${name} GET ${url}`;
        expect([200, 503], what).toContain(res.statusCode);
        for (const id of ids) expect(mentions(res.body, id), `${what} names ${id}`).toBe(false);
      }
    }
    // The projectors' metrics did count the day: the absence of ids is not an empty page.
    const metrics = await run.services.portal.http.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/hub_events_applied_total\{[^}]*\} [1-9]/);
  });
});
