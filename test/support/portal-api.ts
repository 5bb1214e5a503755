import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropSchema } from '../../libs/db/index.js';
import { dropReadModel } from '../../libs/projections/versions.js';
import type { TestContext } from './harness.js';
import { freePort, startProcess, type RunningProcess } from './processes.js';

/** The portal projector and the query API as their own processes (their main.ts), on a test's topics and schemas. */
export interface PortalApiProcesses {
  /** The environment both run with; `hub auth token` with it mints tokens the API accepts. */
  env: Record<string, string>;
  /** The API's HTTP port. */
  port: number;
  /** Projector, then API: their output is there to check (e.g. for PHI). */
  procs: RunningProcess[];
  stop(): Promise<void>;
}

export async function startPortalAndApi(
  ctx: TestContext,
  /** billing: the billing projector too, its schema served by the API's /billing routes. */
  opts: { logLevel?: string; billing?: boolean } = {},
): Promise<PortalApiProcesses> {
  const keysDir = mkdtempSync(join(tmpdir(), `hub-keys-${ctx.id}-`));
  const portal = `${ctx.schema}_portal`;
  const audit = `${ctx.schema}_audit`;
  const billing = `${ctx.schema}_billing`;
  // The API migrates the master patient index's schema: the test's own, never the default one.
  const identity = `${ctx.schema}_identity`;
  const port = await freePort();
  const procs: RunningProcess[] = [];
  const env: Record<string, string> = {
    KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
    DATABASE_URL: ctx.ep.databaseUrl,
    HUB_TOPIC_SUFFIX: ctx.id,
    AUTH_DEV_KEYS_DIR: keysDir,
    AUDIT_SCHEMA: audit,
    IDENTITY_SCHEMA: identity,
    LOG_LEVEL: opts.logLevel ?? 'info',
    ...(opts.billing ? { BILLING_SCHEMA: billing } : {}),
  };
  const stop = async (): Promise<void> => {
    for (const p of procs) await p.stop();
    await dropReadModel(ctx.db, portal).catch(() => undefined);
    if (opts.billing) await dropReadModel(ctx.db, billing).catch(() => undefined);
    await dropSchema(ctx.db, audit).catch(() => undefined);
    await dropSchema(ctx.db, identity).catch(() => undefined);
    rmSync(keysDir, { recursive: true, force: true });
  };
  try {
    ctx.extraTopics.push(`hub.dlq.projector-portal.${ctx.id}`, `hub.audit.v1.${ctx.id}`);
    const projector = startProcess([join('services', 'projector-portal', 'main.ts')], {
      ...env,
      PROJECTION_SCHEMA: portal,
      HTTP_PORT: String(await freePort()),
    });
    procs.push(projector);
    await projector.waitFor(/projector-portal ready/);
    if (opts.billing) {
      ctx.extraTopics.push(`hub.dlq.projector-billing.${ctx.id}`);
      const b = startProcess([join('services', 'projector-billing', 'main.ts')], {
        ...env,
        PROJECTION_SCHEMA: billing,
        HTTP_PORT: String(await freePort()),
      });
      procs.push(b);
      await b.waitFor(/projector-billing ready/);
    }
    const api = startProcess([join('services', 'api', 'main.ts')], {
      ...env,
      PORTAL_SCHEMA: portal,
      HTTP_PORT: String(port),
    });
    procs.push(api);
    await api.waitFor(/api ready/);
  } catch (err) {
    await stop();
    throw err;
  }
  return { env, port, procs, stop };
}
