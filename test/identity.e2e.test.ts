import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_TOPIC } from '../libs/audit/topic.js';
import {
  DEFAULT_IDENTITY_POLICY,
  enterprisePatientId,
  systemForHl7Authority,
} from '../libs/identity/index.js';
import { scanTopic } from '../libs/kafka/scan.js';
import { IDENTITY_TEST_WEIGHTS } from './support/identity.js';
import { createTestContext, eventually, uniqueId, type TestContext } from './support/harness.js';
import { startPortalAndApi, type PortalApiProcesses } from './support/portal-api.js';
import { freePort, runHub, startProcess, type RunningProcess } from './support/processes.js';
import { RawMllpClient, ackField } from './support/raw-mllp-client.js';

// Made-up person; the two spellings of her family name are canaries for the services' logs.
const FAMILY = 'Kowalski';
const TYPO = 'Kowalsky';
const MERCY_MRN = 'MRN-ID-E2E-1';
const STJUDE_MRN = 'SJ-ID-E2E-77';

function idOf(facility: string, mrn: string): string {
  const system = systemForHl7Authority({ namespaceId: facility }, DEFAULT_IDENTITY_POLICY);
  const id = enterprisePatientId([{ system, value: mrn, type: 'MR' }], DEFAULT_IDENTITY_POLICY);
  if (!id) throw new Error(`no enterprise id for ${facility}`);
  return id;
}
const MERCY_ID = idOf('MERCY', MERCY_MRN);
const STJUDE_ID = idOf('STJUDE', STJUDE_MRN);

/**
 * A registration (A04) from one facility: its own MRN and assigning authority. St Jude's
 * clerk typed the family name wrong, has her new address and no phone: close enough to
 * propose, not enough to link without a person (score 19 under the test weights: review 12-25).
 */
function registration(facility: 'MERCY' | 'STJUDE', controlId: string): string {
  const mercy = facility === 'MERCY';
  const pid = mercy
    ? `PID|1||${MERCY_MRN}^^^MERCY^MR||${FAMILY}^Marta||19840312|F|||12 Elm St^^Springfield^^01101||555-0100`
    : `PID|1||${STJUDE_MRN}^^^STJUDE^MR||${TYPO}^Marta||19840312|F|||48 Oak Ave^^Springfield^^01105`;
  return [
    `MSH|^~\\&|EHR|${facility}|HUB|HUB|20260115081500||ADT^A04^ADT_A01|${controlId}|P|2.5.1`,
    'EVN|A04|20260115081500',
    pid,
    `PV1|1|O|CLINIC^^^${facility}${'|'.repeat(16)}V-${controlId}^^^${facility}^VN`,
  ].join('\r');
}

interface FhirPatient {
  id: string;
  identifier?: { system?: string; value?: string }[];
  link?: { other: { reference: string }; type: string }[];
}

interface ExplainJson {
  person: string[];
  history: { type: string; decidedBy: string; reason: string | null }[];
}

/**
 * The "shows it works": one person registered by two facilities (a
 * typo, another MRN system) over MLLP through the real HL7 adapter; the
 * identity-matcher, the portal projector and the API as their own processes
 * (main.ts), real Kafka, registry and Postgres. The matcher proposes the
 * pair, the steward sees it on the worklist (`hub identity review` and GET
 * /identity/review), links it through the API, the portal's Patient shows
 * both MRNs, `hub identity unlink` splits it again, and `hub identity
 * explain` shows both decisions with who and why. Every step is audited; no
 * service logs her name.
 */
describe('master patient index end to end: MLLP -> matcher -> worklist -> link -> portal -> unlink', () => {
  let ctx: TestContext;
  let services: PortalApiProcesses;
  let adapter: RunningProcess;
  let matcher: RunningProcess;
  let mllpPort: number;
  let env: Record<string, string>;
  let weightsDir: string;
  const groupId = uniqueId('hub.identity-matcher.e2e');

  beforeAll(async () => {
    ctx = await createTestContext('identity_e2e');
    services = await startPortalAndApi(ctx);
    env = { ...services.env, HUB_OPERATOR: 'steward-ops' };
    weightsDir = mkdtempSync(join(tmpdir(), 'hub-weights-'));
    const weightsFile = join(weightsDir, 'weights.json');
    // Hand-set weights whose scores the scenario can reason about (the committed ones are the bench's).
    writeFileSync(weightsFile, JSON.stringify(IDENTITY_TEST_WEIGHTS));
    ctx.extraTopics.push(`hub.dlq.identity-matcher.${ctx.id}`, `hub.dlq.adapter-hl7.${ctx.id}`);
    matcher = startProcess([join('services', 'identity-matcher', 'main.ts')], {
      ...env,
      HTTP_PORT: String(await freePort()),
      IDENTITY_WEIGHTS_FILE: weightsFile,
      IDENTITY_GROUP_ID: groupId,
      IDENTITY_COMMAND_POLL_MS: '100',
    });
    await matcher.waitFor(/identity-matcher ready/, 120_000);
    mllpPort = await freePort();
    adapter = startProcess([join('services', 'adapter-hl7', 'main.ts')], {
      ...env,
      MLLP_PORT: String(mllpPort),
      HUB_SITE_CONFIG: join('test', 'fixtures', 'site', 'utc.yaml'),
      HTTP_PORT: String(await freePort()),
    });
    await adapter.waitFor(/adapter-hl7 ready/, 120_000);
  }, 300_000);

  afterAll(async () => {
    await adapter?.stop();
    await matcher?.stop();
    await services?.stop();
    if (ctx) {
      const admin = ctx.kafka.admin();
      await admin.connect();
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect();
    }
    if (weightsDir) rmSync(weightsDir, { recursive: true, force: true });
    await ctx?.cleanup();
  }, 120_000);

  const send = async (message: string) => {
    const client = await RawMllpClient.connect(mllpPort);
    await client.send(message);
    const ack = await client.nextAck(60_000);
    client.close();
    return ackField(ack, 'MSA', 1);
  };
  const hub = (...args: string[]) => runHub(['--json', 'identity', ...args], env);
  const token = (scope: string, sub: string) => {
    const r = runHub(['auth', 'token', '--ttl', '600', '--scope', scope, '--sub', sub], env);
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.trim();
  };
  const api = async (path: string, tok: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${services.port}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        authorization: `Bearer ${tok}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() };
  };
  const mrns = (p: FhirPatient) => (p.identifier ?? []).map((i) => i.value).sort();

  it('a typo from a second facility is proposed, linked by a steward into one patient with both MRNs, unlinked, and explained', async () => {
    // Given one person registered by two facilities, each with its own MRN, one with a typo
    expect(await send(registration('MERCY', 'IDE2E-1'))).toBe('AA');
    expect(await send(registration('STJUDE', 'IDE2E-2'))).toBe('AA');

    // When the matcher has scored them, then the pair is on the steward's worklist
    const items = await eventually(
      () => {
        const r = hub('review');
        if (r.status !== 0) throw new Error(r.stderr);
        const list = JSON.parse(r.stdout) as {
          pair: { patientId: string; otherPatientId: string; score: number };
        }[];
        return Promise.resolve(list.length > 0 ? list : undefined);
      },
      { what: 'the proposal on the worklist', timeoutMs: 90_000, intervalMs: 500 },
    );
    const [lo, hi] = [MERCY_ID, STJUDE_ID].sort();
    expect(items).toHaveLength(1);
    expect(items[0]?.pair).toMatchObject({ patientId: lo, otherPatientId: hi, score: 19 });
    const reader = token('user/Identity.read', 'steward-e2e');
    const viaApi = await api('/identity/review', reader);
    expect(viaApi.status).toBe(200);
    expect(JSON.stringify(viaApi.body)).toContain(STJUDE_MRN);

    // When a steward links them through the API
    const writer = token('user/Identity.write', 'steward-e2e');
    const linked = await api('/identity/links', writer, {
      patientId: MERCY_ID,
      otherPatientId: STJUDE_ID,
      reason: 'same person: family name typed wrong at St Jude',
    });
    expect(linked.status, JSON.stringify(linked.body)).toBe(201);
    expect(linked.body).toMatchObject({
      status: 'done',
      kind: 'link',
      eventId: expect.any(String) as string,
    });

    // Then the portal API's Patient, read by either id, is one person with both MRNs
    const staff = token('user/*.rs', 'nurse-e2e');
    const patient = (id: string) =>
      api(`/fhir/Patient/${id}`, staff).then((r) => (r.status === 200 ? (r.body as FhirPatient) : undefined));
    const one = await eventually(
      async () => {
        const p = await patient(MERCY_ID);
        return p && mrns(p).length === 2 ? p : undefined;
      },
      { what: 'the portal to follow the link', timeoutMs: 60_000 },
    );
    expect(mrns(one)).toEqual([MERCY_MRN, STJUDE_MRN].sort());
    expect(one.link).toEqual([{ other: { reference: `Patient/${STJUDE_ID}` }, type: 'seealso' }]);
    expect(mrns((await patient(STJUDE_ID))!)).toEqual([MERCY_MRN, STJUDE_MRN].sort());
    expect(hub('review').stdout.trim()).toBe('[]');

    // When an operator unlinks them from the CLI
    const unlinked = hub(
      'unlink',
      STJUDE_ID,
      MERCY_ID,
      '--reason',
      'two people after all: checked ID at St Jude',
    );
    expect(unlinked.status, unlinked.stderr).toBe(0);
    expect(JSON.parse(unlinked.stdout)).toMatchObject({
      status: 'done',
      kind: 'unlink',
      decidedBy: 'steward-ops',
    });

    // Then the portal splits them back, each with its own MRN only
    const split = await eventually(
      async () => {
        const p = await patient(MERCY_ID);
        return p && mrns(p).length === 1 ? p : undefined;
      },
      { what: 'the portal to follow the unlink', timeoutMs: 60_000 },
    );
    expect(mrns(split)).toEqual([MERCY_MRN]);
    expect(split.link ?? []).toEqual([]);
    expect(mrns((await patient(STJUDE_ID))!)).toEqual([STJUDE_MRN]);

    // And explain shows the proposal and both decisions, with who and why
    const explained = hub('explain', MERCY_ID);
    expect(explained.status, explained.stderr).toBe(0);
    const e = JSON.parse(explained.stdout) as ExplainJson;
    expect(e.person).toEqual([MERCY_ID]);
    expect(e.history.map((h) => h.type)).toEqual([
      'PatientLinkProposed',
      'PatientsLinked',
      'PatientsUnlinked',
    ]);
    expect(e.history[1]).toMatchObject({
      decidedBy: expect.stringContaining('steward-e2e') as string,
      reason: 'same person: family name typed wrong at St Jude',
    });
    expect(e.history[2]).toMatchObject({
      decidedBy: 'steward-ops',
      reason: 'two people after all: checked ID at St Jude',
    });
    const text = runHub(['identity', 'explain', MERCY_ID], env);
    expect(text.stdout).toContain('PatientsLinked');
    expect(text.stdout).toContain('PatientsUnlinked');
  }, 300_000);

  it('refuses what does not hold with a specific error and exit code, and audits every steward action', async () => {
    // Unlinking records that are not linked (any more) is refused by the matcher: HUB_CONFLICT, exit 1.
    const again = hub('unlink', MERCY_ID, STJUDE_ID, '--reason', 'again');
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('HUB_CONFLICT');
    // Bad input names the field: exit 2.
    const same = hub('link', MERCY_ID, MERCY_ID, '--reason', 'x');
    expect(same.status).toBe(2);
    expect(same.stderr).toContain('HUB_INPUT_INVALID');
    expect(hub('link', MERCY_ID, STJUDE_ID, '--reason', ' ').stderr).toContain('--reason');
    const unknown = hub('explain', 'no-such-record');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('HUB_NOT_FOUND');

    const audit = await eventually(
      async () => {
        const events = (await scanTopic(ctx.kafka, ctx.topic(AUDIT_TOPIC))).map(
          (r) =>
            JSON.parse(r.value?.toString('utf8') ?? '{}') as {
              subtype?: { code: string }[];
              entity?: {
                what?: { reference?: string; display?: string };
                detail?: { type: string; valueString?: string }[];
              }[];
              agent?: { who?: { identifier?: { value?: string } } }[];
            },
        );
        return events.some((e) => e.subtype?.[0]?.code === 'identity.explain') ? events : undefined;
      },
      { what: 'the audit records' },
    );
    const patientsOf = (pred: (e: (typeof audit)[number]) => boolean) =>
      audit
        .filter(pred)
        .map((e) => e.entity?.find((x) => x.what?.reference)?.what?.reference)
        .filter((r): r is string => r !== undefined)
        .sort();
    const both = [`Patient/${MERCY_ID}`, `Patient/${STJUDE_ID}`].sort();
    // The operator's review, unlink and explain, as steward-ops, naming each patient.
    const operator = (code: string) => (e: (typeof audit)[number]) =>
      e.subtype?.[0]?.code === code && e.agent?.[0]?.who?.identifier?.value === 'steward-ops';
    expect(new Set(patientsOf(operator('identity.review')))).toEqual(new Set(both));
    // The unlink done and the one refused: each attempt audited, with its outcome.
    expect(patientsOf(operator('identity.unlink'))).toEqual([...both, ...both].sort());
    const statuses = audit
      .filter(operator('identity.unlink'))
      .flatMap((e) => e.entity?.flatMap((x) => x.detail ?? []) ?? [])
      .filter((d) => d.type === 'status')
      .map((d) => d.valueString);
    expect(new Set(statuses)).toEqual(new Set(['done', 'refused']));
    // Explained twice (JSON and text), audited each time.
    expect(patientsOf(operator('identity.explain'))).toEqual([`Patient/${MERCY_ID}`, `Patient/${MERCY_ID}`]);
    // The API's link, one AuditEvent per patient it changed.
    const route = (r: string) => (e: (typeof audit)[number]) =>
      e.entity?.some((x) => x.what?.display === r) ?? false;
    expect(patientsOf(route('POST /identity/links'))).toEqual(both);

    // No service wrote her name to its log.
    for (const p of [adapter, matcher, ...services.procs]) {
      expect(p.output()).not.toContain(FAMILY);
      expect(p.output()).not.toContain(TYPO);
    }
  }, 120_000);
});
