import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_AUDIENCE, DEV_ISSUER, ensureDevKeys } from '../../libs/auth/jwt.js';
import { dropSchema } from '../../libs/db/index.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import { mllpFrame } from '../../libs/hl7/mllp.js';
import { dropReadModel } from '../../libs/projections/versions.js';
import { localSiteConfigText } from '../../libs/site-config/index.js';
import { createTestContext, eventually, type TestContext } from './harness.js';
import { adtA01 } from './hl7-fixtures.js';
import { admitted, at, attachment, obs, ordered, registered, resulted } from './hospital-day.js';
import { freePort, repoDir, startProcess, type RunningProcess } from './processes.js';
import { RawMllpClient, ackField } from './raw-mllp-client.js';
import { send } from './security-runner.js';
import { keyTokenSource, type SecurityTarget, type TestPatient } from './security-target.js';
import { attackPatient } from './security-tokens.js';

/**
 * The hub as a deployment, for the security suite's default mode: every
 * service from its own main.ts as its own process (so what is probed is
 * the real wiring of each service: its env, its auth, its routes), on a
 * test's topics and schemas of the shared test stack, with two patients
 * (A and B) published with encounters, orders, released results and a PDF
 * attachment, one patient sent over MLLP and one written to the FHIR adapter.
 */
export interface LocalHub {
  target: SecurityTarget;
  /** Bytes above which the FHIR adapter must refuse a body. */
  maxIngestBytes: number;
  procs: Record<string, RunningProcess>;
  /** Services that did not start ("name: /ready body"): left out of the target, and a failure of the suite. */
  notReady: string[];
  stop(): Promise<void>;
}

const MLLP = {
  idleTimeoutMs: 2000,
  frameTimeoutMs: 2000,
  maxMessageBytes: 64 * 1024,
  maxConnectionsPerPeer: 12,
};
const MAX_INGEST_BYTES = 256 * 1024;
/** Nine processes starting at once on a small shared host (2 cores) can take minutes. */
const START_TIMEOUT_MS = 240_000;

/** A patient's events: registration, an inpatient stay, an order, a released CBC with a PDF. */
function patientEvents(
  p: { id: string; family: string; enc: string; order: string; result: string },
  pdf: Buffer,
): ClinicalEvent[] {
  const att = attachment(p.id, `${p.result}-pdf`, at(9), pdf);
  return [
    registered(p.id, p.family, 'Testina', `${p.id}-reg`, at(8)),
    admitted(p.id, p.enc, 'inpatient', 'MED', `${p.id}-adm`, at(8, 10), 'ACME-HEALTH'),
    ordered(p.id, p.order, p.enc, 'cbc', 'routine', `${p.id}-orm`, at(8, 20)),
    att.stored,
    resulted(p.id, p.result, p.order, p.enc, 'cbc', 'final', `${p.id}-oru`, at(9), [
      obs('718-7', 'Hemoglobin', 11.2, 'g/dL', 'L', 'final'),
      { ...att.observation, sequence: 2 },
    ]),
  ];
}

function fixture(ctx: TestContext, tag: 'A' | 'B') {
  const id = `SEC${tag}-${ctx.id.slice(-8)}`;
  const p = {
    id,
    family: `Zzsec${tag}family${ctx.id.slice(-8)}`,
    enc: `${id}-E1`,
    order: `${id}-O1`,
    result: `${id}-R1`,
  };
  const pdf = Buffer.from(`%PDF-1.4 security suite report of ${p.family}\n%%EOF`);
  const events = patientEvents(p, pdf);
  const stored = events.find((e) => e.type === 'AttachmentStored');
  const sha = stored?.type === 'AttachmentStored' ? stored.data.sha256 : undefined;
  const patient: TestPatient = {
    id,
    encounterId: p.enc,
    binaryId: sha,
    markers: [id, p.family, `MRN-${id}`, p.enc, p.order, p.result, ...(sha ? [sha] : [])],
  };
  return { patient, events };
}

interface Spec {
  name: string;
  env: Record<string, string>;
}

function serviceSpecs(ctx: TestContext, mllpPort: number): Spec[] {
  const s = ctx.schema;
  return [
    { name: 'projector-portal', env: { PROJECTION_SCHEMA: `${s}_portal` } },
    { name: 'projector-billing', env: { PROJECTION_SCHEMA: `${s}_billing` } },
    { name: 'projector-analytics', env: { PROJECTION_SCHEMA: `${s}_analytics` } },
    { name: 'patient-directory', env: { PROJECTION_SCHEMA: `${s}_directory` } },
    {
      name: 'api',
      env: {
        PORTAL_SCHEMA: `${s}_portal`,
        BILLING_SCHEMA: `${s}_billing`,
        ANALYTICS_SCHEMA: `${s}_analytics`,
        AUDIT_SCHEMA: `${s}_audit`,
        DELIVERY_SCHEMA: `${s}_delivery`,
        RATE_LIMIT_MAX: '1000000',
      },
    },
    {
      name: 'adapter-fhir',
      env: {
        FHIR_STORE_SCHEMA: `${s}_fhir`,
        FHIR_MAX_BODY_BYTES: String(MAX_INGEST_BYTES),
        FHIR_TRANSACTIONAL_ID: `tx-${ctx.id}`,
      },
    },
    // The operations console as production runs it: no development sign-in, no identity
    // provider (so no way in): its pages and POSTs are probed as doors that must refuse.
    {
      name: 'console',
      env: {
        ANALYTICS_SCHEMA: `${s}_analytics`,
        AUDIT_SCHEMA: `${s}_audit`,
        DELIVERY_SCHEMA: `${s}_delivery`,
        HUB_OPS_SCHEMA: `${s}_ops`,
        IDENTITY_SCHEMA: `${s}_identity`,
      },
    },
    // Outbound delivery: its port (health, ready, metrics) is probed like every other.
    { name: 'delivery', env: { DELIVERY_SCHEMA: `${s}_delivery`, PORTAL_SCHEMA: `${s}_portal` } },
    {
      name: 'adapter-hl7',
      env: {
        MLLP_HOST: '127.0.0.1',
        MLLP_PORT: String(mllpPort),
        MLLP_IDLE_TIMEOUT_MS: String(MLLP.idleTimeoutMs),
        MLLP_FRAME_TIMEOUT_MS: String(MLLP.frameTimeoutMs),
        MLLP_MAX_MESSAGE_BYTES: String(MLLP.maxMessageBytes),
        MLLP_MAX_CONNECTIONS_PER_PEER: String(MLLP.maxConnectionsPerPeer),
      },
    },
  ];
}

/** Starts every service (in parallel), each on its own free port. */
async function startServices(ctx: TestContext, common: Record<string, string>, mllpPort: number) {
  const procs: Record<string, RunningProcess> = {};
  const urls: Record<string, string> = {};
  const specs = serviceSpecs(ctx, mllpPort);
  for (const s of specs) {
    const port = await freePort();
    urls[s.name] = `http://127.0.0.1:${port}`;
    procs[s.name] = startProcess([join('services', s.name, 'main.ts')], {
      ...common,
      ...s.env,
      HTTP_PORT: String(port),
    });
    ctx.extraTopics.push(`hub.dlq.${s.name}.${ctx.id}`);
  }
  ctx.extraTopics.push(`hub.audit.v1.${ctx.id}`);
  /** Waits for every "<name> ready"; resolves with those that did not get there (and why, from /ready). */
  const ready = async (): Promise<string[]> => {
    const settled = await Promise.allSettled(
      specs.map((s) => {
        const p = procs[s.name];
        return p
          ? p.waitFor(new RegExp(`${s.name} ready`), START_TIMEOUT_MS)
          : Promise.reject(new Error('not started'));
      }),
    );
    const failed = specs.filter((_, i) => settled[i]?.status === 'rejected').map((s) => s.name);
    return Promise.all(
      failed.map(async (n) => {
        const r = await send(urls[n] ?? '', 'GET', '/ready', {}, undefined, 3000);
        const tail = (procs[n]?.output() ?? '').slice(-600);
        return `${n}: /ready ${r.error ?? r.body.slice(0, 300)}; output: ${tail}`;
      }),
    );
  };
  return { procs, urls, ready };
}

async function dropAll(ctx: TestContext): Promise<void> {
  for (const rm of ['portal', 'billing', 'analytics', 'directory'])
    await dropReadModel(ctx.db, `${ctx.schema}_${rm}`).catch(() => undefined);
  for (const s of ['audit', 'fhir', 'delivery', 'ops', 'identity'])
    await dropSchema(ctx.db, `${ctx.schema}_${s}`).catch(() => undefined);
}

/** Waits until the API serves both patients' released reports and the billing account of B. */
async function awaitProjections(t: SecurityTarget): Promise<void> {
  const staff = (await t.tokens.role('staff')) ?? '';
  const billing = (await t.tokens.role('billing')) ?? '';
  for (const p of [t.patients.a, t.patients.b]) {
    await eventually(
      async () => {
        const r = await send(t.api, 'GET', `/fhir/DiagnosticReport?patient=${p.id}`, {
          authorization: `Bearer ${staff}`,
        });
        return r.status === 200 && p.binaryId && r.body.includes(p.binaryId) ? true : undefined;
      },
      { what: `released report of ${p.id} served by the API`, timeoutMs: 90_000, intervalMs: 250 },
    );
    await eventually(
      async () => {
        const r = await send(t.api, 'GET', `/billing/accounts/${p.encounterId ?? ''}/charges`, {
          authorization: `Bearer ${billing}`,
        });
        return r.status === 200 ? true : undefined;
      },
      { what: `billing account of ${p.id}`, timeoutMs: 60_000, intervalMs: 250 },
    );
  }
}

/** One patient over MLLP and one written to the FHIR adapter: PHI that must not leak from their ports. */
async function seedIngest(t: SecurityTarget, ctx: TestContext): Promise<string[]> {
  const markers: string[] = [];
  if (t.mllp) {
    const mrn = `SECH-${ctx.id.slice(-8)}`;
    const c = await RawMllpClient.connect(t.mllp.port, t.mllp.host);
    await c.write(mllpFrame(adtA01(`SECSEED${ctx.id.slice(-6)}`, mrn)));
    const ack = await c.nextAck(30_000);
    c.close();
    if (ackField(ack, 'MSA', 1) !== 'AA')
      throw new Error(`seed message over MLLP not accepted: ${ackField(ack, 'MSA', 1)}`);
    markers.push(mrn);
  }
  const fhir = t.services['adapter-fhir'];
  if (fhir) {
    const id = `secf-${ctx.id.slice(-8)}`;
    const body = attackPatient(id) as { name: { family: string }[] };
    body.name = [{ family: `Zzsecfhir${ctx.id.slice(-8)}` }];
    const token = (await t.tokens.role('ingest')) ?? '';
    const r = await send(
      fhir,
      'PUT',
      `/Patient/${id}`,
      { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      JSON.stringify(body),
    );
    if (r.status >= 300)
      throw new Error(
        `seed PUT /Patient/${id} on the FHIR adapter answered ${r.status}: ${r.body.slice(0, 300)}`,
      );
    t.ingestResources.push(`Patient/${id}`);
    markers.push(`Zzsecfhir${ctx.id.slice(-8)}`, `SECPROBE-${id}`);
  }
  return markers;
}

export async function startLocalHub(): Promise<LocalHub> {
  const ctx = await createTestContext('sec');
  const dir = mkdtempSync(join(tmpdir(), `hub-sec-${ctx.id}-`));
  const keys = await ensureDevKeys(join(dir, 'keys'));
  const site = join(dir, 'site.yaml');
  writeFileSync(
    site,
    localSiteConfigText(readFileSync(join(repoDir, 'deploy', 'local', 'site.sample.yaml'), 'utf8'), 'UTC'),
  );
  const mllpPort = await freePort();
  // The suite's ingest clients, and 'attacker' (the client_id of every forged token): a forgery
  // must be refused by the token check itself, not only because its client is not listed.
  const clients = join(dir, 'fhir-clients.json');
  const ids = ['security-suite-ingest', 'security-suite-ingestRead', 'attacker'];
  writeFileSync(
    clients,
    JSON.stringify({ clients: ids.map((clientId) => ({ clientId, sourceSystems: ['security-suite'] })) }),
  );
  const common = {
    KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
    DATABASE_URL: ctx.ep.databaseUrl,
    HUB_TOPIC_SUFFIX: ctx.id,
    AUTH_DEV_KEYS_DIR: join(dir, 'keys'),
    HUB_SITE_CONFIG: site,
    HTTP_HOST: '127.0.0.1',
    // Nine services start at once on a small shared host: give each's own start-up (Kafka,
    // registry, Postgres) as long as the suite waits, not the 60 s a deployment gets.
    HUB_START_BUDGET_MS: String(START_TIMEOUT_MS - 30_000),
    // info: "<service> ready" is the signal start-up waits for.
    LOG_LEVEL: 'info',
    FHIR_CLIENTS_FILE: clients,
  };
  const a = fixture(ctx, 'A');
  const b = fixture(ctx, 'B');
  const { procs, urls, ready } = await startServices(ctx, common, mllpPort);
  const stop = async () => {
    await Promise.all(Object.values(procs).map((p) => p.stop()));
    await dropAll(ctx);
    await ctx.cleanup();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await ctx.producer.publish([...a.events, ...b.events]);
    const notReady = await ready();
    const down = (n: string) => notReady.some((x) => x.startsWith(`${n}:`));
    const { api, ...all } = urls;
    if (down('api')) throw new Error('the API did not start');
    const services = Object.fromEntries(Object.entries(all).filter(([n]) => !down(n)));
    const target: SecurityTarget = {
      name: `local (${ctx.id})`,
      api: api ?? '',
      services,
      mllp: down('adapter-hl7') ? undefined : { host: '127.0.0.1', port: mllpPort, ...MLLP, slackMs: 5000 },
      patients: { a: a.patient, b: b.patient },
      ingestResources: [],
      phiMarkers: [...a.patient.markers, ...b.patient.markers],
      tokens: keyTokenSource(keys, {
        issuer: DEV_ISSUER,
        apiAudience: DEV_AUDIENCE,
        ingestAudience: 'hub-ingest',
        patientA: a.patient.id,
      }),
    };
    target.phiMarkers.push(...(await seedIngest(target, ctx)));
    await awaitProjections(target);
    return { target, maxIngestBytes: MAX_INGEST_BYTES, procs, notReady, stop };
  } catch (err) {
    const out = Object.entries(procs)
      .map(([n, p]) => `--- ${n}\n${p.output().slice(-2000)}`)
      .join('\n');
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${out}`);
  }
}
