import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditDlqTopic } from '../../libs/audit/topic.js';
import { dropSchema } from '../../libs/db/index.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import { dropReadModel } from '../../libs/projections/versions.js';
import type { TestContext } from './harness.js';
import { admitted, discharged, obs, ordered, resulted, rng } from './hospital-day.js';
import { IDENTITY_TEST_WEIGHTS } from './identity.js';
import { freePort, startProcess, type RunningProcess } from './processes.js';

/**
 * The console with the fewest services its pages need, each its own process
 * (main.ts) on the test's topics and schemas: the HL7 adapter (MLLP in, dead
 * letters), the analytics projector (the outcomes views, the flow page's
 * projection lag), the identity-matcher (the steward's worklist) and the
 * console itself with the development sign-in.
 */
export interface ConsoleStack {
  /** The console's base URL. */
  url: string;
  mllpPort: number;
  env: Record<string, string>;
  schemas: { analytics: string; identity: string; ops: string; audit: string };
  /** Every process, console last: their output is there to check (e.g. for PHI). */
  procs: Record<'adapter' | 'analytics' | 'matcher' | 'console', RunningProcess>;
  stop(): Promise<void>;
}

interface Spec {
  name: 'adapter' | 'analytics' | 'matcher' | 'console';
  main: string;
  ready: RegExp;
  env: Record<string, string>;
}

async function specs(ctx: TestContext, s: ConsoleStack['schemas'], weightsFile: string) {
  const mllpPort = await freePort();
  const consolePort = await freePort();
  const ports = { adapter: await freePort(), analytics: await freePort(), matcher: await freePort() };
  const list: Spec[] = [
    {
      name: 'adapter',
      main: 'adapter-hl7',
      ready: /adapter-hl7 ready/,
      env: {
        MLLP_HOST: '127.0.0.1',
        MLLP_PORT: String(mllpPort),
        HUB_SITE_CONFIG: join('test', 'fixtures', 'site', 'utc.yaml'),
        HTTP_PORT: String(ports.adapter),
      },
    },
    {
      name: 'analytics',
      main: 'projector-analytics',
      ready: /projector-analytics ready/,
      env: { PROJECTION_SCHEMA: s.analytics, HTTP_PORT: String(ports.analytics) },
    },
    {
      name: 'matcher',
      main: 'identity-matcher',
      ready: /identity-matcher ready/,
      env: {
        IDENTITY_WEIGHTS_FILE: weightsFile,
        IDENTITY_GROUP_ID: `hub.identity-matcher.${ctx.id}`,
        IDENTITY_COMMAND_POLL_MS: '100',
        HTTP_PORT: String(ports.matcher),
      },
    },
    {
      name: 'console',
      main: 'console',
      ready: /console ready/,
      env: {
        HTTP_PORT: String(consolePort),
        CONSOLE_DEV_LOGIN: 'true',
        CONSOLE_SECURE_COOKIES: 'false',
        CONSOLE_REFRESH_MS: '1000',
        ANALYTICS_SCHEMA: s.analytics,
        HUB_OPS_SCHEMA: s.ops,
        HUB_SERVICE_URLS: Object.entries({
          'adapter-hl7': ports.adapter,
          'projector-analytics': ports.analytics,
          'identity-matcher': ports.matcher,
        })
          .map(([n, p]) => `${n}=http://127.0.0.1:${p}`)
          .join(','),
      },
    },
  ];
  return { list, mllpPort, url: `http://127.0.0.1:${consolePort}` };
}

export async function startConsoleStack(ctx: TestContext): Promise<ConsoleStack> {
  const dir = mkdtempSync(join(tmpdir(), `hub-console-${ctx.id}-`));
  const weightsFile = join(dir, 'weights.json');
  // Hand-set weights whose scores put a one-typo pair on the worklist (the committed ones are the bench's).
  writeFileSync(weightsFile, JSON.stringify(IDENTITY_TEST_WEIGHTS));
  const schemas = {
    analytics: `${ctx.schema}_analytics`,
    identity: `${ctx.schema}_identity`,
    ops: `${ctx.schema}_ops`,
    audit: `${ctx.schema}_audit`,
  };
  const env: Record<string, string> = {
    KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
    DATABASE_URL: ctx.ep.databaseUrl,
    HUB_TOPIC_SUFFIX: ctx.id,
    AUTH_DEV_KEYS_DIR: join(dir, 'keys'),
    IDENTITY_SCHEMA: schemas.identity,
    AUDIT_SCHEMA: schemas.audit,
    LOG_LEVEL: 'info',
  };
  ctx.extraTopics.push(
    `hub.audit.v1.${ctx.id}`,
    `hub.dlq.identity-matcher.${ctx.id}`,
    `hub.dlq.projector-analytics.${ctx.id}`,
    auditDlqTopic(ctx.topic),
  );
  const { list, mllpPort, url } = await specs(ctx, schemas, weightsFile);
  const procs: Partial<ConsoleStack['procs']> = {};
  const stop = async (): Promise<void> => {
    for (const p of Object.values(procs).reverse()) await p.stop();
    await dropReadModel(ctx.db, schemas.analytics).catch(() => undefined);
    for (const s of [schemas.identity, schemas.ops, schemas.audit])
      await dropSchema(ctx.db, s).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // In parallel: start-up is mostly waiting for Kafka and Postgres, and CI time counts.
    const started = list.map((s) => {
      const p = startProcess([join('services', s.main, 'main.ts')], { ...env, ...s.env });
      procs[s.name] = p;
      return p.waitFor(s.ready, 180_000);
    });
    await Promise.all(started);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, mllpPort, env, schemas, procs: procs as ConsoleStack['procs'], stop };
}

/**
 * A made-up week of a small hospital as events, ending at `now`: each day
 * emergency visits (arrival to departure 1-5 h), admissions discharged 1-3
 * days later, and lab orders resulted within 3 h, a few sent twice (the
 * duplicates the data-quality chart counts), in the order they happened.
 * No registrations: the identity-matcher would fill the steward's worklist
 * with look-alikes. Published on the test's topics, the analytics projector
 * makes the outcomes charts' days of it.
 */
export function lastWeek(now: number, seed = 7): ClinicalEvent[] {
  const r = rng(seed);
  const between = (lo: number, hi: number) => Math.round(lo + r() * (hi - lo));
  const today = now - (now % 86_400_000);
  const events: ClinicalEvent[] = [];
  let n = 0;
  const patient = () => `P-WK-${++n}`;
  for (let d = 6; d >= 0; d--) {
    const day = today - d * 86_400_000;
    const past = (t: number) => t < now - 60_000;
    for (let i = 0; i < between(3, 6); i++) {
      const t = day + between(1, 20) * 3600_000;
      if (!past(t)) continue;
      const pid = patient();
      events.push(admitted(pid, `E-ED-${n}`, 'emergency', 'ED', `wk-ed-${n}`, t));
      const out = t + between(60, 330) * 60_000;
      if (past(out)) events.push(discharged(pid, `E-ED-${n}`, `wk-ed-out-${n}`, out));
    }
    for (let i = 0; i < between(1, 3); i++) {
      const t = day + between(6, 18) * 3600_000;
      if (!past(t)) continue;
      const pid = patient();
      events.push(admitted(pid, `E-IP-${n}`, 'inpatient', 'MED', `wk-ip-${n}`, t));
      const out = t + between(20, 75) * 3600_000;
      if (past(out)) events.push(discharged(pid, `E-IP-${n}`, `wk-ip-out-${n}`, out));
    }
    for (let i = 0; i < between(3, 6); i++) {
      const t = day + between(0, 22) * 3600_000;
      const done = t + between(25, 170) * 60_000;
      if (!past(done)) continue;
      const pid = patient();
      const result = obs('718-7', 'Hemoglobin', between(95, 160) / 10, 'g/dL', null, 'final');
      events.push(ordered(pid, `O-${n}`, null, 'cbc', 'routine', `wk-ord-${n}`, t));
      events.push(resulted(pid, `R-${n}`, `O-${n}`, null, 'cbc', 'final', `wk-res-${n}`, done, [result]));
      if (i === 0) events.push(events[events.length - 1] as ClinicalEvent);
    }
  }
  return events.sort((a, b) => a.data.meta.occurredAt - b.data.meta.occurredAt);
}
