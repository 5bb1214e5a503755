import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at, hospitalDay, registered } from './support/hospital-day.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { startPortalAndApi, type PortalApiProcesses } from './support/portal-api.js';
import { runHub } from './support/processes.js';

const CANARY_FAMILY = 'Zzcanarye2efamily';
const CANARY_PID = 'CANARYE2E42';

/**
 * The query API through public interfaces only: `hub publish` writes events,
 * the portal projector and the API run as their own processes (main.ts),
 * `hub auth token` mints the bearer tokens, HTTP reads, `hub audit verify`
 * checks the trail. Both processes log at debug level; no line may carry
 * the canary patient's name.
 */
describe('query API end to end: CLI -> Kafka -> projector -> API -> audit', () => {
  let ctx: TestContext;
  let services: PortalApiProcesses;
  let env: Record<string, string>;
  let port: number;

  beforeAll(async () => {
    ctx = await createTestContext('apie2e');
    services = await startPortalAndApi(ctx, { logLevel: 'debug' });
    env = services.env;
    port = services.port;
  });

  afterAll(async () => {
    await services?.stop();
    await ctx?.cleanup();
  });

  const token = (...args: string[]) => {
    const r = runHub(['auth', 'token', '--ttl', '300', ...args], env);
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.trim();
  };
  const get = async (path: string, tok?: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      headers: tok ? { authorization: `Bearer ${tok}` } : {},
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('serves what was published, to the right people only, and audits it', async () => {
    const events = [
      ...hospitalDay(),
      registered(CANARY_PID, CANARY_FAMILY, 'Zed', 'reg-e2e-canary', at(7, 45)),
    ];
    const pub = runHub(['publish', '-'], env, events.map((e) => JSON.stringify(e)).join('\n'));
    expect(pub.status, pub.stderr).toBe(0);

    const staff = token('--scope', 'user/*.rs', '--sub', 'nurse-e2e');
    const p1 = token('--scope', 'patient/*.rs', '--patient', 'P1', '--sub', 'patient-e2e');
    const canary = token('--scope', 'patient/*.rs', '--patient', CANARY_PID, '--sub', 'canary-e2e');
    await eventually(async () => ((await get('/fhir/Patient/P5', staff)).status === 200 ? true : undefined), {
      what: 'portal projection served by the API',
      timeoutMs: 60_000,
    });

    const own = await get('/fhir/Patient/P1', p1);
    expect(own.status).toBe(200);
    expect(own.body['id']).toBe('P1');
    expect((await get('/fhir/Patient/P2', p1)).status).toBe(403);
    expect((await get('/fhir/Observation?patient=P2', p1)).status).toBe(403);
    expect((await get('/fhir/Patient/P1')).status).toBe(401);
    const everything = await get(`/fhir/Patient/${CANARY_PID}/$everything`, canary);
    expect(everything.status).toBe(200);
    expect(JSON.stringify(everything.body)).toContain(CANARY_FAMILY);
    expect((await get('/fhir/metadata')).body['resourceType']).toBe('CapabilityStatement');
    const ready = await get('/ready');
    expect(ready.status, JSON.stringify(ready.body)).toBe(200);

    // The audit projector (in the API process) fills the chained table.
    await eventually(
      () => {
        const r = runHub(['--json', 'audit', 'list', '--patient', 'P2'], env);
        if (r.status !== 0) return Promise.resolve(undefined);
        const rows = JSON.parse(r.stdout) as { agent: string | null; outcome: string }[];
        const denied = rows.filter((x) => x.agent === 'patient-e2e' && x.outcome === '4').length;
        return Promise.resolve(denied === 2 ? true : undefined);
      },
      { what: 'denials audited', timeoutMs: 30_000 },
    );
    const verify = runHub(['audit', 'verify'], env);
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/audit chain ok: \d+ row/);

    for (const p of services.procs) {
      expect(p.output().length).toBeGreaterThan(0);
      expect(p.output()).not.toContain(CANARY_FAMILY);
    }
  });
});
