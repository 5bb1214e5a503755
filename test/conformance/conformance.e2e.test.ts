import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOPICS } from '../../libs/events/contracts.js';
import { identityPolicyFromSite, isRegisteredSystem, patientKeyFor } from '../../libs/identity/index.js';
import { loadSiteConfig } from '../../libs/site-config/index.js';
import { RawMllpClient } from '../support/raw-mllp-client.js';
import { mllpFrame } from '../../libs/hl7/mllp.js';
import { startTestApi, type TestApi } from '../support/api.js';
import { freePort, repoDir, startProcess, type RunningProcess } from '../support/processes.js';
import { startProjectorRun, type ProjectorRun } from '../support/projectors.js';
import { CASES, PATIENTS } from './cases.js';
import { PAYLOADS } from './payloads.js';
import {
  Aliases,
  TopicLog,
  assertAck,
  assertEvent,
  parseAck,
  runProbe,
  sleep,
  until,
  type ProbeEnv,
} from './runner.js';
import { RULES, type Case, type Rule } from './spec.js';

const HERE = join(repoDir, 'test', 'conformance');

/**
 * The conformance corpus (cases.ts) against the real hub: the HL7 adapter as
 * its own process (services/adapter-hl7/main.ts, configured only by
 * HUB_SITE_CONFIG=test/conformance/site.yaml and its defaults, e.g. the MLLP
 * frame limit), the portal, billing and analytics projectors and the query
 * API in-process, all on this run's own topics, consumer groups and Postgres
 * schemas on the shared Kafka/registry/Postgres. Each case is sent over a
 * fresh MLLP socket in corpus order; its ACK, the records it left on the
 * topics and the read models are checked. One `it` per case, named
 * "<rule> <id>: <what>", so the output reads as a result by rule.
 */
describe('HL7 v2 conformance corpus', () => {
  let run: ProjectorRun;
  let adapter: RunningProcess;
  let api: TestApi;
  let mllpPort: number;
  let log: TopicLog;
  const aliases = new Aliases();
  let env: ProbeEnv;
  let dlqTopic: string;
  let rawTopic: string;

  beforeAll(async () => {
    // The analytics projector learns from the same site file which authorities are registered.
    const policy = identityPolicyFromSite(loadSiteConfig(join(HERE, 'site.yaml')), {});
    run = await startProjectorRun('conformance', undefined, {
      analytics: { isRegistered: (system) => isRegisteredSystem(system, policy) },
    });
    const ctx = run.ctx;
    dlqTopic = ctx.topic(INGEST_TOPICS.hl7Dlq);
    rawTopic = ctx.topic(INGEST_TOPICS.hl7Raw);
    log = new TopicLog(ctx.kafka, ctx.codec, run.topics, [rawTopic, dlqTopic]);
    await log.start();

    mllpPort = await freePort();
    ctx.extraTopics.push(`hub.dlq.adapter-hl7.${ctx.id}`);
    adapter = startProcess([join('services', 'adapter-hl7', 'main.ts')], {
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
      SCHEMA_REGISTRY_URL: ctx.ep.registryUrl,
      DATABASE_URL: ctx.ep.databaseUrl,
      HUB_TOPIC_SUFFIX: ctx.id,
      HUB_SITE_CONFIG: join(HERE, 'site.yaml'),
      MLLP_PORT: String(mllpPort),
      HTTP_PORT: String(await freePort()),
      LOG_LEVEL: process.env['TEST_LOG_LEVEL'] ?? 'info',
    });
    await adapter.waitFor(/adapter-hl7 ready/, 90_000);

    api = await startTestApi(ctx, {
      portalSchema: run.stable.portal,
      billingSchema: run.stable.billing,
      analyticsSchema: run.stable.analytics,
      clinicalTopics: run.topics,
      auditProjector: true,
      subject: 'conformance-staff',
    });

    for (const [alias, id] of Object.entries(PATIENTS)) {
      aliases.preset('patient', alias, patientKeyFor({ system: id.system, value: id.value, type: 'MR' }));
    }
    env = {
      aliases,
      schemas: run.stable,
      async fhirGet(path, accept) {
        const res = await api.get(path, accept);
        return {
          status: res.statusCode,
          type: String(res.headers['content-type'] ?? ''),
          body: res.rawPayload,
        };
      },
      async sql(text) {
        return (await ctx.db.raw<{ rows: Record<string, unknown>[] }>(text)).rows;
      },
    };
  }, 240_000);

  afterAll(async () => {
    await api?.stop();
    await adapter?.stop();
    await log?.stop();
    await run?.cleanup();
  }, 120_000);

  function messageBytes(c: Case): Buffer {
    let bytes = readFileSync(join(HERE, 'messages', c.file));
    for (const [marker, payload] of Object.entries(c.fill ?? {})) {
      const text = bytes.toString('latin1');
      const at = text.indexOf(`@@${marker}@@`);
      expect(at, `${c.file} has @@${marker}@@`).toBeGreaterThan(0);
      bytes = Buffer.concat([
        bytes.subarray(0, at),
        Buffer.from(PAYLOADS[payload]().toString('base64'), 'latin1'),
        bytes.subarray(at + marker.length + 4),
      ]);
    }
    return bytes;
  }

  async function send(bytes: Buffer): Promise<string> {
    const client = await RawMllpClient.connect(mllpPort);
    try {
      // A peer may stop reading an oversized frame and answer early: the ACK is what counts.
      await client.write(mllpFrame(bytes)).catch(() => undefined);
      return await client.nextAck(60_000);
    } finally {
      client.close();
    }
  }

  async function check(c: Case): Promise<void> {
    const ack = parseAck(await send(messageBytes(c)));
    assertAck(ack, c.ack, c.controlId);

    if (c.events.length > 0) {
      await until(() => {
        expect(log.eventsOf(c.controlId).length, 'events on the topics').toBeGreaterThanOrEqual(
          c.events.length,
        );
      }, 20_000);
      await sleep(300); // anything extra (a duplicate) would have arrived with them
      const got = log.eventsOf(c.controlId);
      expect(got.map((e) => e.event.type).sort(), 'event types').toEqual(c.events.map((e) => e.type).sort());
      for (const want of c.events) {
        const e = got.find((g) => g.event.type === want.type)!;
        assertEvent(e, want, aliases, `${c.id} ${want.type}`);
      }
    } else {
      if (c.deadLettered) {
        await until(() => {
          expect(log.recordsOf(c.controlId, dlqTopic), 'dead letter').not.toHaveLength(0);
        }, 20_000);
        const dl = log.recordsOf(c.controlId, dlqTopic)[0]!;
        expect(dl.headers['hl7-ack-code'], 'dead letter hl7-ack-code').toBe(ack.msa1);
        expect(dl.headers['hub-reason-code'] ?? '', 'dead letter reason').not.toBe('');
        const code = c.ack.err?.code;
        if (typeof code === 'string')
          expect(dl.headers['hl7-error-code'], 'dead letter hl7-error-code').toBe(code);
      }
      await sleep(500);
      expect(
        log.eventsOf(c.controlId).map((e) => `${e.topic}: ${e.event.type}`),
        'nothing published',
      ).toEqual([]);
      // Refused input is kept only as a dead letter, not as an accepted raw message.
      expect(log.recordsOf(c.controlId, rawTopic), 'not on the raw (accepted) topic').toEqual([]);
    }

    if (c.readModel?.length) {
      await run.caughtUp();
      for (const p of c.readModel) await until(() => runProbe(env, p), 10_000);
    }
  }

  const rules = [...new Set(CASES.map((c) => c.rule))] as Rule[];
  for (const rule of rules) {
    describe(`${rule} ${RULES[rule]}`, () => {
      for (const c of CASES.filter((x) => x.rule === rule)) {
        it(`${c.rule} ${c.id}: ${c.what}`, () => check(c), c.fill ? 180_000 : 90_000);
      }
    });
  }

  it('the corpus: every file is a case, 45+ messages, 4+ senders, versions 2.3 to 2.7, every rule 4+ cases', () => {
    const files = readdirSync(join(HERE, 'messages')).filter((f) => f.endsWith('.hl7'));
    expect(new Set(CASES.map((c) => c.file))).toEqual(new Set(files));
    expect(files.length).toBeGreaterThanOrEqual(45);
    const msh = files.map((f) =>
      readFileSync(join(HERE, 'messages', f), 'latin1')
        .split('\r')[0]!
        .split('|'),
    );
    expect(new Set(msh.map((m) => `${m[2]}^${m[3]}`)).size).toBeGreaterThanOrEqual(4);
    for (const v of ['2.3', '2.4', '2.5.1', '2.6', '2.7']) expect(msh.map((m) => m[11])).toContain(v);
    for (const r of Object.keys(RULES))
      expect(CASES.filter((c) => c.rule === r).length, r).toBeGreaterThanOrEqual(4);
  });

  it('every refused message left nothing on the clinical topics, after the whole corpus', async () => {
    await sleep(1000);
    const refused = CASES.filter((c) => c.events.length === 0).map((c) => c.controlId);
    const leaked = refused.flatMap((id) => log.eventsOf(id).map((e) => `${id}: ${e.event.type}`));
    expect(leaked).toEqual([]);
    expect(log.undecodable).toEqual([]);
  });
});
