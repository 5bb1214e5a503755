import { validateResource } from '@medplum/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent, Bundle, OperationOutcome, Patient, Resource } from '@medplum/fhirtypes';
import { AUDIT_TABLE, appendAudit, verifyAuditChain } from '../../libs/audit/store.js';
import { createTokenVerifier, generateDevKeys, mintToken, type DevKeys } from '../../libs/auth/jwt.js';
import { FHIR_TYPES, HUB_SCOPES } from '../../libs/auth/scopes.js';
import { dropSchema } from '../../libs/db/index.js';
import { lagOf } from '../../libs/projections/inspect.js';
import type { ProjectorService } from '../../libs/projections/service.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { dropReadModel } from '../../libs/projections/versions.js';
import { loadFhirDefinitions } from '../../libs/fhir/validate.js';
import { createEventProducer } from '../../libs/kafka/producer.js';
import { createLogger } from '../../libs/telemetry/logger.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import { buildAnalyticsProjector } from '../projector-analytics/app.js';
import { buildBillingProjector } from '../projector-billing/app.js';
import { buildPortalProjector } from '../projector-portal/app.js';
import { createHash } from 'node:crypto';
import { at, attachment, hospitalDay, obs, registered, resulted } from '../../test/support/hospital-day.js';
import { allergy, coverage, diagnosis } from '../../test/support/clinical-facts.js';
import { codeOf } from '../../libs/events/values.js';
import { createTestContext, eventually, type TestContext } from '../../test/support/harness.js';
import { runHub } from '../../test/support/processes.js';
import { buildApi, type Api, type ApiConfig } from './app.js';

/**
 * The query API end to end: events published to real Kafka, projected into
 * real Postgres by the real projector apps (in-process), served by the API
 * app (fastify inject), every request audited through the real audit topic
 * into the chained table.
 */
const CANARY_FAMILY = 'Zzcanaryfamily';
const CANARY_GIVEN = 'Zzcanarygiven';
const CANARY_PID = 'CANARY7731';
const CANARY_MRN = `MRN-${CANARY_PID}`;
const CANARIES = [CANARY_FAMILY, CANARY_GIVEN, CANARY_MRN];

const hgb = (v: number) => obs('718-7', 'Hemoglobin', v, 'g/dL', 'N', 'final');

/** A PDF report of patient P9 (its own patient, so P1/P2 counts stay as they were). */
const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(3000, 7)]);
const PDF_ATT = attachment('P9', 'oru-pdf', at(16, 0), PDF);
const PDF_SHA = createHash('sha256').update(PDF).digest('hex');

function events(): ClinicalEvent[] {
  return [
    ...hospitalDay(),
    registered(CANARY_PID, CANARY_FAMILY, CANARY_GIVEN, 'reg-canary', at(7, 30)),
    // More released results for P1, so that its Observation search pages.
    ...[1, 2, 3].map((i) =>
      resulted('P1', `RX${i}`, 'O1', 'E1', 'cbc', 'final', `oru-x${i}`, at(15, i), [hgb(10 + i / 10)]),
    ),
    registered('P9', 'Pdf', 'Patty', 'reg-p9', at(7, 40)),
    PDF_ATT.stored,
    resulted('P9', 'RPDF', null, null, 'cbc', 'final', 'oru-pdf', at(16, 0), [PDF_ATT.observation]),
    // Allergies, diagnoses and insurance (AL1, DG1, IN1) of P1 and P2; one of P1's withdrawn.
    allergy(),
    diagnosis(),
    diagnosis({
      diagnosisId: 'D1B',
      rank: 2,
      code: codeOf('http://hl7.org/fhir/sid/icd-10-cm', 'E11.9', 'Type 2 diabetes'),
    }),
    coverage(),
    allergy({ allergyId: 'AL1X', verificationStatus: 'entered-in-error' }),
    allergy({ patientId: 'P2', allergyId: 'AL2', encounterId: 'E2' }),
    diagnosis({ patientId: 'P2', diagnosisId: 'D2', encounterId: 'E2' }),
    coverage({ patientId: 'P2', coverageId: 'C2', encounterId: 'E2' }),
  ];
}

/** Every type the portal serves but Patient: searched and read by id. */
const TYPES = FHIR_TYPES.filter((t) => t !== 'Patient');

describe('query API: auth, scopes, audit, FHIR, billing, analytics', () => {
  let ctx: TestContext;
  let keys: DevKeys;
  let api: Api;
  const projectors: ProjectorService[] = [];
  const logLines: string[] = [];
  let stable: { portal: string; billing: string; analytics: string; audit: string };
  let auditTopic: string;
  let cfg: ApiConfig;
  const tokens: Record<string, string> = {};
  /** Requests made to protected routes (each must leave one audit row). */
  let audited = 0;

  beforeAll(async () => {
    ctx = await createTestContext('api');
    const logger = createLogger({
      name: 'api-int',
      level: 'trace',
      destination: {
        write: (s: string) => {
          logLines.push(s);
        },
      },
    });
    stable = {
      portal: `${ctx.schema}_portal`,
      billing: `${ctx.schema}_billing`,
      analytics: `${ctx.schema}_analytics`,
      audit: `${ctx.schema}_audit`,
    };
    auditTopic = `hub.audit.v1.${ctx.id}`;
    ctx.extraTopics.push(auditTopic);
    const deps = {
      db: ctx.db,
      kafka: ctx.kafka,
      codec: ctx.codec,
      producer: ctx.producer,
      logger,
      metrics: createMetrics({ defaultMetrics: false }),
    };
    for (const [name, build] of [
      ['portal', buildPortalProjector],
      ['billing', buildBillingProjector],
      ['analytics', buildAnalyticsProjector],
    ] as const) {
      const dlq = `hub.dlq.projector-${name}.${ctx.id}`;
      ctx.extraTopics.push(dlq);
      const svc = build(
        { ...deps, metrics: createMetrics({ defaultMetrics: false }) },
        { stableSchema: stable[name], dlqTopic: dlq, topicFor: ctx.topic, followEveryMs: 60_000 },
      );
      await svc.start();
      projectors.push(svc);
    }
    await ctx.producer.publish(events());
    const topics = clinicalTopics(ctx.topic);
    for (const p of projectors) {
      await eventually(
        async () => {
          const lag = await lagOf(ctx.db, ctx.kafka, p.activeSchema()!, topics);
          return lag.lag === 0n && lag.total > 0n ? true : undefined;
        },
        { what: `projection ${p.activeSchema()} caught up`, timeoutMs: 60_000 },
      );
    }

    keys = await generateDevKeys('test-key');
    const verifier = createTokenVerifier({
      issuer: 'https://hub.local/dev-issuer',
      audience: 'hub-api',
      jwks: keys.jwks,
    });
    cfg = {
      portalSchema: stable.portal,
      billingSchema: stable.billing,
      analyticsSchema: stable.analytics,
      auditSchema: stable.audit,
      deliverySchema: `${ctx.schema}_delivery`,
      auditTopic,
      auditProjector: true,
      auditGroupId: `hub.audit.projector.${ctx.id}`,
      clinicalTopics: topics,
      publicBaseUrl: 'https://api.test',
      rateLimit: { max: 10_000, windowMs: 60_000 },
      queryTimeoutMs: 5000,
      bodyLimit: 16 * 1024,
    };
    api = await buildApi(
      {
        db: ctx.db,
        kafka: ctx.kafka,
        producer: ctx.producer,
        logger,
        metrics: createMetrics({ defaultMetrics: false }),
        verifier,
      },
      cfg,
    );
    await api.start();
    const mint = async (subject: string, scope: string[], patient?: string) => {
      const t = await mintToken({ keys, subject, scope, ttlSec: 600, ...(patient ? { patient } : {}) });
      subjectOfToken.set(t, subject);
      return t;
    };
    tokens['A'] = await mint('patient-p1', ['patient/*.rs'], 'P1');
    tokens['canary'] = await mint('patient-canary', ['patient/*.rs'], CANARY_PID);
    tokens['staff'] = await mint('nurse-1', ['user/*.rs']);
    tokens['billing'] = await mint('billing-svc', [HUB_SCOPES.billing]);
    tokens['analytics'] = await mint('bi-tool', [HUB_SCOPES.analytics]);
    tokens['admin'] = await mint('ops-admin', [HUB_SCOPES.admin]);
  });

  afterAll(async () => {
    await api?.stop();
    const admin = ctx.kafka.admin();
    await admin.connect();
    await admin.deleteGroups([cfg.auditGroupId!]).catch(() => undefined);
    await admin.disconnect();
    for (const p of projectors) await p.stop();
    for (const s of [stable.portal, stable.billing, stable.analytics]) await dropReadModel(ctx.db, s);
    await dropSchema(ctx.db, stable.audit);
    await dropSchema(ctx.db, `${ctx.schema}_delivery`);
    await ctx.cleanup();
  });

  /** Denials the API answered, by token subject ('' = no valid token): each must be in the audit log. */
  const denials = new Map<string, number>();
  const subjectOfToken = new Map<string, string>();

  async function call(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    token?: string,
    form?: string,
    json?: unknown,
  ) {
    const path = url.startsWith('https://api.test') ? url.slice('https://api.test'.length) : url;
    const res = await api.http.inject({
      method,
      url: path,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(form !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(form !== undefined ? { payload: form } : {}),
      ...(json !== undefined ? { payload: JSON.stringify(json) } : {}),
    });
    const protectedRoute = !/^\/(fhir\/metadata|docs|health|ready|metrics)/.test(path);
    if (protectedRoute) audited++;
    if (protectedRoute && (res.statusCode === 401 || res.statusCode === 403)) {
      const who = res.statusCode === 401 ? '' : (subjectOfToken.get(token ?? '') ?? '?');
      denials.set(who, (denials.get(who) ?? 0) + 1);
    }
    const ct = String(res.headers['content-type'] ?? '');
    return {
      status: res.statusCode,
      headers: res.headers,
      type: ct,
      text: res.body,
      json: <T>() => JSON.parse(res.body) as T,
    };
  }
  const get = (url: string, token?: string) => call('GET', url, token);

  /** Every route the OpenAPI document lists, as `METHOD /template`. */
  const documentedRoutes = async () => {
    const doc = (await get('/docs/json')).json<{ paths: Record<string, Record<string, unknown>> }>();
    return Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
  };
  const SUBSCRIPTION_ROUTE = / \/(fhir\/)?[Ss]ubscription/;

  /** The patient a resource is about (subject; AllergyIntolerance.patient; Coverage.beneficiary). */
  const subjectOf = (r: Resource): string | undefined => {
    if (r.resourceType === 'Patient') return `Patient/${r.id}`;
    const x = r as {
      subject?: { reference?: string };
      patient?: { reference?: string };
      beneficiary?: { reference?: string };
    };
    return (x.subject ?? x.patient ?? x.beneficiary)?.reference;
  };

  it('serves a patient their own record as FHIR and nothing of anyone else', async () => {
    const own = await get('/fhir/Patient/P1', tokens['A']);
    expect(own.status).toBe(200);
    expect(own.type).toContain('application/fhir+json');
    expect(own.headers['cache-control']).toBe('no-store');
    expect(own.json<Patient>()).toMatchObject({
      resourceType: 'Patient',
      id: 'P1',
      name: [{ family: 'Alpha' }],
    });

    const other = await get('/fhir/Patient/P2', tokens['A']);
    expect(other.status).toBe(403);
    expect(other.json<OperationOutcome>()).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ code: 'forbidden' }],
    });
    expect(other.text).not.toContain('Bravo');

    const all = await get('/fhir/Patient/P1/$everything', tokens['A']);
    expect(all.status).toBe(200);
    const bundle = all.json<Bundle>();
    expect(bundle.type).toBe('searchset');
    expect(bundle.entry!.length).toBeGreaterThan(5);
    for (const e of bundle.entry!) expect(subjectOf(e.resource!)).toBe('Patient/P1');
    // What the client receives is valid FHIR R4 (serialised through the response schema).
    loadFhirDefinitions();
    expect(() => validateResource(bundle)).not.toThrow();
    expect((await get('/fhir/Patient/P2/$everything', tokens['A'])).status).toBe(403);
  });

  it('confines every search, and every paging link, to the token patient', async () => {
    for (const type of TYPES) {
      const own = await get(`/fhir/${type}`, tokens['A']);
      expect(own.status, type).toBe(200);
      const b = own.json<Bundle>();
      for (const e of b.entry ?? []) expect(subjectOf(e.resource!)).toBe('Patient/P1');
      for (const q of ['patient=P2', 'patient=Patient/P2']) {
        const r = await get(`/fhir/${type}?${q}`, tokens['A']);
        expect(r.status, `${type}?${q}`).toBe(403);
        expect(r.json<OperationOutcome>().resourceType).toBe('OperationOutcome');
      }
    }
    // Paging: 4 released observations for P1, two per page.
    const p1 = await get('/fhir/Observation?patient=P1&_count=2', tokens['A']);
    const page1 = p1.json<Bundle>();
    expect(page1.total).toBe(4);
    expect(page1.entry).toHaveLength(2);
    const next = page1.link!.find((l) => l.relation === 'next')!.url;
    expect(next).toContain('patient=P1');
    const p2 = await get(next, tokens['A']);
    expect(p2.status).toBe(200);
    const page2 = p2.json<Bundle>();
    expect(page2.entry).toHaveLength(2);
    expect(page2.link!.find((l) => l.relation === 'next')).toBeUndefined();
    const ids = [...page1.entry!, ...page2.entry!].map((e) => e.resource!.id);
    expect(new Set(ids).size).toBe(4);
    // A doctored paging link naming another patient is refused like any other request.
    const forged = await get(next.replace('patient=P1', 'patient=P2'), tokens['A']);
    expect(forged.status).toBe(403);
    // $everything pages too, and its next link stays on the same patient.
    const e1 = (await get('/fhir/Patient/P1/$everything?_count=3', tokens['A'])).json<Bundle>();
    const eNext = e1.link!.find((l) => l.relation === 'next')!.url;
    expect(eNext).toContain('/fhir/Patient/P1/$everything');
    expect((await get(eNext, tokens['A'])).status).toBe(200);
    expect((await get(eNext.replace('/Patient/P1/', '/Patient/P2/'), tokens['A'])).status).toBe(403);
    const onlyObs = (await get('/fhir/Patient/P1/$everything?_type=Observation', tokens['A'])).json<Bundle>();
    expect(onlyObs.total).toBe(4);
    expect(new Set(onlyObs.entry!.map((e) => e.resource!.resourceType))).toEqual(new Set(['Observation']));
  });

  it('shows released results only and filters by code, date and status', async () => {
    const staff = tokens['staff'];
    const reports = (await get('/fhir/DiagnosticReport?patient=P2', staff)).json<Bundle>();
    const ids = reports.entry!.map((e) => e.resource!.id).sort();
    expect(ids).toEqual(['R3', 'R9']); // R12 is preliminary
    const all = (await get('/fhir/Patient/P2/$everything', staff)).json<Bundle>();
    const allIds = all.entry!.map((e) => `${e.resource!.resourceType}/${e.resource!.id}`);
    expect(allIds).toContain('DiagnosticReport/R3');
    expect(allIds.filter((i) => i.includes('R12'))).toEqual([]);
    const byCode = (
      await get('/fhir/DiagnosticReport?patient=P1&code=http://loinc.org|36643-5', staff)
    ).json<Bundle>();
    expect(byCode.entry!.map((e) => e.resource!.id)).toEqual(['R2']);
    const corrected = (await get('/fhir/DiagnosticReport?patient=P1&status=corrected', staff)).json<Bundle>();
    expect(corrected.entry!.map((e) => e.resource!.id)).toEqual(['R1']);
    const early = (
      await get('/fhir/Encounter?patient=P1&date=ge2026-03-02&date=lt2026-03-03', staff)
    ).json<Bundle>();
    expect(early.entry!.map((e) => e.resource!.id)).toEqual(['E1']);
    const none = (await get('/fhir/Encounter?patient=P1&date=2026-04', staff)).json<Bundle>();
    expect(none.total).toBe(0);
    // Staff must name the patient.
    expect((await get('/fhir/Observation', staff)).status).toBe(400);
  });

  it('serves allergies, conditions and coverage: searched by patient, read by id, in $everything, every reference resolving', async () => {
    loadFhirDefinitions();
    const A = tokens['A'];
    const search = async (q: string) => {
      const r = await get(q, A);
      expect(r.status, q).toBe(200);
      const b = r.json<Bundle>();
      expect(() => validateResource(b), q).not.toThrow();
      return (b.entry ?? []).map((e) => e.resource!);
    };
    // The withdrawn allergy (entered in error) is not served.
    expect((await search('/fhir/AllergyIntolerance?patient=P1')).map((r) => r.id)).toEqual(['AL1']);
    expect((await search('/fhir/AllergyIntolerance?category=food')).map((r) => r.id)).toEqual([]);
    const conditions = await search('/fhir/Condition?encounter=E1&category=encounter-diagnosis');
    expect(conditions.map((r) => r.id).sort()).toEqual(['D1', 'D1B']);
    const coverages = await search('/fhir/Coverage?beneficiary=Patient/P1');
    expect(coverages).toMatchObject([
      { id: 'C1', subscriberId: 'MEM-123', payor: [{ display: 'Blue Cross' }] },
    ]);
    // No match: a searchset without an entry element.
    const none = await get('/fhir/Condition?patient=P1&clinical-status=resolved', A);
    expect(none.json<Bundle>()).toMatchObject({ total: 0 });
    expect(none.text).not.toContain('"entry"');

    // The visit lists its diagnoses by rank.
    const e1 = (await get('/fhir/Encounter/E1', A)).json<{
      diagnosis?: { condition: { reference: string }; rank?: number }[];
    }>();
    expect(e1.diagnosis?.map((d) => [d.condition.reference, d.rank])).toEqual([
      ['Condition/D1', 1],
      ['Condition/D1B', 2],
    ]);

    // $everything has them, and every reference in it resolves to a resource the token may read.
    const everything: Resource[] = [];
    let next: string | undefined = '/fhir/Patient/P1/$everything?_count=50';
    while (next) {
      const b: Bundle = (await get(next, A)).json<Bundle>();
      expect(() => validateResource(b)).not.toThrow();
      everything.push(...(b.entry ?? []).map((e) => e.resource!));
      next = b.link?.find((l) => l.relation === 'next')?.url;
    }
    const types = new Set(everything.map((r) => r.resourceType));
    for (const t of ['AllergyIntolerance', 'Condition', 'Coverage'])
      expect(types.has(t as never), t).toBe(true);
    const refs = new Set(
      [...JSON.stringify(everything).matchAll(/"reference":"([A-Za-z]+\/[^"#]+)"/g)].map((m) => m[1]!),
    );
    expect(refs.size).toBeGreaterThan(5);
    for (const ref of refs) {
      if (ref.startsWith('Binary/')) continue; // presentedForm urls, not references
      const r = await get(`/fhir/${ref}`, A);
      expect(r.status, ref).toBe(200);
    }
    // Another patient's: refused, for reads as for searches.
    expect((await get('/fhir/Condition/D2', A)).status).toBe(403);
    expect((await get('/fhir/Coverage?beneficiary=P2', A)).status).toBe(403);
  });

  it('serves a report PDF: presentedForm in the report, Binary as bytes or as FHIR JSON, scoped to its patient', async () => {
    const staff = tokens['staff'];
    // given a released report of P9 that presents a PDF
    const report = (await get('/fhir/DiagnosticReport?patient=P9', staff)).json<Bundle>().entry![0]!
      .resource!;
    // then presentedForm names it, with FHIR's hash (base64 SHA-1)
    expect(report).toMatchObject({
      presentedForm: [
        {
          contentType: 'application/pdf',
          url: `Binary/${PDF_SHA}`,
          size: PDF.length,
          hash: createHash('sha1').update(PDF).digest('base64'),
          title: 'Report PDF',
        },
      ],
    });
    loadFhirDefinitions();
    expect(() => validateResource(report)).not.toThrow();
    // when the Binary is read without FHIR JSON in Accept, the bytes come back as they were sent
    const raw = await api.http.inject({
      method: 'GET',
      url: `/fhir/Binary/${PDF_SHA}`,
      headers: { authorization: `Bearer ${staff}`, accept: 'application/pdf' },
    });
    audited++;
    expect(raw.statusCode).toBe(200);
    expect(raw.headers['content-type']).toBe('application/pdf');
    expect(raw.rawPayload.equals(PDF)).toBe(true);
    // and as a FHIR Binary with Accept: application/fhir+json
    const res = await api.http.inject({
      method: 'GET',
      url: `/fhir/Binary/${PDF_SHA}`,
      headers: { authorization: `Bearer ${staff}`, accept: 'application/fhir+json' },
    });
    audited++;
    expect(res.headers['content-type']).toMatch(/application\/fhir\+json/);
    const bin = res.json<{ resourceType: string; contentType: string; data: string }>();
    expect(bin).toMatchObject({ resourceType: 'Binary', id: PDF_SHA, contentType: 'application/pdf' });
    expect(Buffer.from(bin.data, 'base64').equals(PDF)).toBe(true);
    // another patient's token, content no report presents, and a malformed id
    expect((await get(`/fhir/Binary/${PDF_SHA}`, tokens['A'])).status).toBe(403);
    expect((await get(`/fhir/Binary/${'0'.repeat(64)}`, staff)).status).toBe(404);
    expect((await get('/fhir/Binary/not-a-hash', staff)).status).toBe(400);
    expect((await get(`/fhir/Binary/${PDF_SHA}`)).status).toBe(401);
  });

  it('authorization matrix: every protected route x every kind of token, on patient B', async () => {
    // [method, path, form body, the one token kind allowed]
    type Kind = 'staff' | 'billing' | 'analytics' | 'admin';
    const routes: [string, string, string | undefined, Kind][] = [
      ['GET', '/fhir/Patient/P2', undefined, 'staff'],
      ['GET', '/fhir/Patient/P2/$everything', undefined, 'staff'],
      ...TYPES.map((t): [string, string, string | undefined, Kind] => [
        'GET',
        `/fhir/${t}?patient=P2`,
        undefined,
        'staff',
      ]),
      ...TYPES.map((t): [string, string, string | undefined, Kind] => [
        'POST',
        `/fhir/${t}/_search`,
        'patient=P2',
        'staff',
      ]),
      ['GET', '/billing/accounts', undefined, 'billing'],
      ['GET', '/billing/accounts/E2/charges', undefined, 'billing'],
      ['GET', '/billing/worklist', undefined, 'billing'],
      ['GET', '/analytics/views', undefined, 'analytics'],
      ['GET', '/analytics/views/v_daily_admissions', undefined, 'analytics'],
      ['GET', '/admin/audit/events?patient=P2', undefined, 'admin'],
      ['GET', '/admin/audit/verify', undefined, 'admin'],
      ['GET', '/admin/access', undefined, 'admin'],
      ['GET', `/fhir/Binary/${PDF_SHA}`, undefined, 'staff'],
    ];
    // A read of one of patient B's resources of every type (ids as the model made them).
    for (const t of TYPES) {
      const found = (await get(`/fhir/${t}?patient=P2&_count=1`, tokens['staff'])).json<Bundle>();
      const id = found.entry?.[0]?.resource?.id;
      expect(id, t).toBeDefined();
      routes.push(['GET', `/fhir/${t}/${id}`, undefined, 'staff']);
    }
    // Every route the OpenAPI document lists (bar the public metadata) is in the matrix.
    const documented = (await documentedRoutes())
      .filter((r) => r !== 'GET /fhir/metadata')
      // The subscription routes have a matrix of their own (next test).
      .filter((r) => !SUBSCRIPTION_ROUTE.test(r))
      .sort();
    const template = (p: string) =>
      p
        .split('?')[0]!
        .replace(/\/Patient\/P2/, '/Patient/{id}')
        .replace(/\/accounts\/E2\//, '/accounts/{encounterId}/')
        .replace(/\/views\/v_\w+/, '/views/{view}')
        .replace(/\/Binary\/[0-9a-f]{64}/, '/Binary/{id}')
        .replace(new RegExp(`^/fhir/(${TYPES.join('|')})/(?!_search$)[^/]+$`), '/fhir/$1/{id}');
    expect([...new Set(routes.map(([m, p]) => `${m} ${template(p)}`))].sort()).toEqual(documented);

    const kinds = ['A', 'staff', 'billing', 'analytics', 'admin', 'none'] as const;
    const table: string[] = [];
    for (const [method, path, form, allowed] of routes) {
      const row: string[] = [];
      for (const k of kinds) {
        const r = await call(method as 'GET' | 'POST', path, k === 'none' ? undefined : tokens[k], form);
        const want = k === 'none' ? 401 : k === allowed ? 200 : 403;
        row.push(`${k}:${r.status}`);
        expect(r.status, `${k} ${method} ${path}`).toBe(want);
        // Patient A's token never carries anything of B's back.
        if (k === 'A') expect(r.text).not.toMatch(/Bravo|MRN-P2|"P2"/);
      }
      table.push(`${method} ${path}  ${row.join(' ')}`);
    }
    expect(table).toHaveLength(routes.length);
  });

  it('authorization matrix of the subscription routes: only system/Subscription scopes, named, and audited', async () => {
    const writer = await mintToken({
      keys,
      subject: 'integration-engine',
      scope: ['system/Subscription.rs', 'system/Subscription.cud'],
      ttlSec: 600,
    });
    subjectOfToken.set(writer, 'integration-engine');
    const id = '00000000-0000-4000-8000-000000000000';
    const hub = { name: 'matrix', channel: { type: 'webhook', endpoint: 'https://receiver.example.org/' } };
    const fhir = {
      resourceType: 'Subscription',
      status: 'requested',
      reason: 'matrix',
      criteria: 'https://clinical-hub.example/fhir/SubscriptionTopic/Encounter',
      channel: {
        type: 'rest-hook',
        endpoint: 'https://receiver.example.org/',
        payload: 'application/fhir+json',
      },
    };
    const routes: ['GET' | 'POST' | 'PUT' | 'DELETE', string, unknown][] = [
      ['GET', '/subscriptions', undefined],
      ['POST', '/subscriptions', hub],
      ['GET', '/subscriptions/{id}', undefined],
      ['PUT', '/subscriptions/{id}', hub],
      ['DELETE', '/subscriptions/{id}', undefined],
      ['POST', '/subscriptions/{id}/pause', undefined],
      ['POST', '/subscriptions/{id}/resume', undefined],
      ['POST', '/subscriptions/{id}/replay', { from: '2026-01-01T00:00:00Z' }],
      ['GET', '/subscriptions/{id}/status', undefined],
      ['GET', '/fhir/Subscription', undefined],
      ['POST', '/fhir/Subscription', fhir],
      ['GET', '/fhir/Subscription/{id}', undefined],
      ['PUT', '/fhir/Subscription/{id}', fhir],
      ['DELETE', '/fhir/Subscription/{id}', undefined],
      ['GET', '/fhir/Subscription/{id}/$status', undefined],
    ];
    const documented = (await documentedRoutes()).filter((r) => SUBSCRIPTION_ROUTE.test(r)).sort();
    expect(routes.map(([m, p]) => `${m} ${p}`).sort()).toEqual(documented);
    for (const [method, template, body] of routes) {
      const path = template.replace('{id}', id);
      for (const k of ['A', 'staff', 'billing', 'analytics', 'admin', 'none'] as const) {
        const r = await call(method, path, k === 'none' ? undefined : tokens[k], undefined, body);
        expect(r.status, `${k} ${method} ${path}`).toBe(k === 'none' ? 401 : 403);
      }
      // The writer's answer: done, or no such subscription; never refused.
      const r = await call(method, path, writer, undefined, body);
      expect([200, 201, 204, 404], `${method} ${path}`).toContain(r.status);
    }
  });

  it('refuses billing and analytics tokens on portal routes, analytics on identified data', async () => {
    const portalRoutes = [
      '/fhir/Patient/P1',
      '/fhir/Patient/P1/$everything',
      ...TYPES.map((t) => `/fhir/${t}?patient=P1`),
    ];
    for (const tok of ['billing', 'analytics'] as const) {
      for (const r of portalRoutes) expect((await get(r, tokens[tok])).status, `${tok} ${r}`).toBe(403);
      expect((await get('/admin/audit/events', tokens[tok])).status).toBe(403);
    }
    for (const r of ['/billing/accounts', '/billing/accounts/E1/charges', '/billing/worklist']) {
      expect((await get(r, tokens['analytics'])).status, r).toBe(403);
      expect((await get(r, tokens['A'])).status, r).toBe(403);
      expect((await get(r, tokens['billing'])).status, r).toBe(200);
    }
    expect((await get('/analytics/views/v_daily_admissions', tokens['A'])).status).toBe(403);
    expect((await get('/analytics/views/v_daily_admissions', tokens['billing'])).status).toBe(403);
  });

  it('rejects missing, expired, wrongly addressed and unsigned tokens', async () => {
    expect((await get('/fhir/Patient/P1')).status).toBe(401);
    const expired = await mintToken({
      keys,
      subject: 'patient-p1',
      scope: ['patient/*.rs'],
      patient: 'P1',
      ttlSec: 60,
      now: Math.floor(Date.now() / 1000) - 3600,
    });
    const wrongAud = await mintToken({
      keys,
      subject: 'x',
      scope: ['user/*.rs'],
      ttlSec: 60,
      audience: 'other',
    });
    const wrongIss = await mintToken({
      keys,
      subject: 'x',
      scope: ['user/*.rs'],
      ttlSec: 60,
      issuer: 'https://evil',
    });
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const body = Buffer.from(
      JSON.stringify({
        sub: 'x',
        scope: 'user/*.rs',
        iss: 'https://hub.local/dev-issuer',
        aud: 'hub-api',
        exp: 9e9,
      }),
    ).toString('base64url');
    for (const t of [expired, wrongAud, wrongIss, `${header}.${body}.`]) {
      const r = await get('/fhir/Patient/P1', t);
      expect(r.status).toBe(401);
      expect(r.json<OperationOutcome>().issue[0]!.code).toBe('login');
    }
  });

  // #17: a token for a patient the hub does not know got 200 (empty bundles).
  it('refuses a token whose patient context is unknown or merged away, with WWW-Authenticate, audited', async () => {
    const inject = async (url: string, token?: string, headers: Record<string, string> = {}) => {
      audited++;
      return api.http.inject({
        method: 'GET',
        url,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      });
    };
    const unknown = await mintToken({
      keys,
      subject: 'ghost',
      scope: ['patient/*.rs'],
      patient: 'NOPE-1',
      ttlSec: 600,
    });
    // P4 was merged into P3 (hospitalDay): its record is served under P3 now.
    const retired = await mintToken({
      keys,
      subject: 'p4-user',
      scope: ['patient/*.rs'],
      patient: 'P4',
      ttlSec: 600,
    });
    for (const [token, reason] of [
      [unknown, 'no patient of this hub'],
      [retired, 'merged into another patient'],
    ] as const) {
      for (const url of ['/fhir/Observation', '/fhir/Patient/P4', '/fhir/Patient/NOPE-1/$everything']) {
        const r = await inject(url, token);
        expect(r.statusCode, url).toBe(401);
        expect(r.headers['www-authenticate'], url).toMatch(/^Bearer realm="hub", error="invalid_token"/);
        expect(r.headers['www-authenticate'], url).toContain(reason);
      }
    }
    // P3, the survivor, is served as before; no token: a bare challenge.
    const p3 = await mintToken({
      keys,
      subject: 'p3-user',
      scope: ['patient/*.rs'],
      patient: 'P3',
      ttlSec: 600,
    });
    expect((await inject('/fhir/Observation', p3)).statusCode).toBe(200);
    // Through call(): a 401 without a token the final audit test counts.
    expect((await get('/fhir/Observation')).headers['www-authenticate']).toBe('Bearer realm="hub"');
    // Through call(): a 403 the final audit test counts.
    const scope = await get('/billing/accounts', tokens['A']);
    expect(scope.status).toBe(403);
    expect(scope.headers['www-authenticate']).toBe(
      'Bearer realm="hub", error="insufficient_scope", scope="system/billing.read"',
    );
    const rows = await eventually(
      async () => {
        const r = await ctx.db
          .withSchema(stable.audit)
          .from(AUDIT_TABLE)
          .whereIn('agent', ['ghost', 'p4-user'])
          .select<{ agent: string; outcome: string; event: AuditEvent }[]>('agent', 'outcome', 'event');
        return r.length >= 6 ? r : undefined;
      },
      { what: 'six denied patient-context audit rows', timeoutMs: 30_000 },
    );
    expect(rows.map((r) => [r.agent, r.outcome, r.event.outcomeDesc]).sort()).toEqual([
      ...Array<string[]>(3).fill(['ghost', '4', 'patient-context-unknown']),
      ...Array<string[]>(3).fill(['p4-user', '4', 'patient-context-merged']),
    ]);
  });

  // #17: NUL bytes gave 500 on several routes, one echoing a SQLSTATE.
  it('answers hostile input on every route with 4xx, never a 5xx or driver text', async () => {
    const bads = [
      '%00',
      '%01',
      '%1b',
      '%7f',
      '%ED%A0%80',
      '%C0%80',
      '%FF',
      '%E0%A4%A',
      '%F0%9F%98%80',
      "'%22%5C",
    ];
    const routes = (b: string): [string, string | undefined][] => [
      [`/fhir/Patient/P1${b}`, tokens['staff']],
      [`/fhir/Patient/P1${b}/$everything`, tokens['staff']],
      [`/fhir/Observation?patient=P1${b}`, tokens['staff']],
      [`/fhir/Observation?patient=P1&code=x${b}`, tokens['staff']],
      [`/fhir/Encounter?patient=P1&date=ge2026${b}`, tokens['staff']],
      [`/fhir/DiagnosticReport?patient=P1&status=final${b}`, tokens['A']],
      [`/fhir/Binary/${'a'.repeat(63)}${b}`, tokens['staff']],
      [`/billing/accounts?status=open${b}`, tokens['billing']],
      [`/billing/accounts/E1${b}/charges`, tokens['billing']],
      [`/billing/worklist?problem=x${b}`, tokens['billing']],
      [`/analytics/views/v_daily_admissions${b}`, tokens['analytics']],
      [`/analytics/views/v_daily_admissions?from=2026-01-01${b}&groupBy=unit${b}`, tokens['analytics']],
      [`/admin/audit/events?patient=P1${b}&agent=a${b}`, tokens['admin']],
      [`/admin/audit/events?_count=1${b}`, tokens['admin']],
      [`/fhir/Nope${b}/x`, tokens['staff']],
    ];
    const seen = new Map<number, number>();
    const check = (what: string, status: number, body: string) => {
      seen.set(status, (seen.get(status) ?? 0) + 1);
      expect(status, what).toBeLessThan(500);
      expect(body, what).not.toMatch(/SQLSTATE|22P05|22021|syntax|byte sequence|violates|postgres|knex/i);
    };
    for (const b of bads) {
      for (const [url, token] of routes(b)) {
        const r = await get(url, token);
        check(url, r.status, r.text);
      }
      const form = await call('POST', '/fhir/Observation/_search', tokens['staff'], `patient=P1&code=${b}`);
      check(`form ${b}`, form.status, form.text);
    }
    const json = async (payload: string) => {
      audited++;
      const r = await api.http.inject({
        method: 'POST',
        url: '/fhir/Observation/_search',
        headers: { authorization: `Bearer ${tokens['staff']}`, 'content-type': 'application/json' },
        payload,
      });
      check(`json ${payload}`, r.statusCode, r.body);
      return r.statusCode;
    };
    for (const payload of [
      '{"patient":"P1\\u0000"}',
      '{"patient":"P1","code":"\\ud800"}',
      '{"patient":"P1","date":["ge\\u0001"]}',
      '{"patient":{"a":"\\u0000"}}',
      '{"patient":"P1","\\u0000":1}',
      '"\\u0000"',
    ]) {
      expect(await json(payload), payload).toBe(400);
    }
    // A token claim's bytes are not trusted to be storable either.
    const nul = await mintToken({
      keys,
      subject: 'nul',
      scope: ['patient/*.rs'],
      patient: 'P1\u0000',
      ttlSec: 600,
    });
    audited++;
    const refused = await api.http.inject({
      method: 'GET',
      url: '/fhir/Observation',
      headers: { authorization: `Bearer ${nul}` },
    });
    expect(refused.statusCode).toBe(401);
    expect(seen.get(500) ?? 0).toBe(0);
  });

  // #17: Bundle links were built from the Host header.
  it('builds every link from the configured base, whatever Host a request names', async () => {
    audited += 2;
    const evil = { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' };
    for (const url of ['/fhir/Observation?_count=1', '/fhir/Patient/P1/$everything?_count=1']) {
      const r = await api.http.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${tokens['A']}`, ...evil },
      });
      expect(r.statusCode).toBe(200);
      expect(r.body).not.toContain('evil.example');
      const b = JSON.parse(r.body) as Bundle;
      expect(b.link?.find((l) => l.relation === 'next')?.url).toMatch(/^https:\/\/api\.test\/fhir\//);
      expect(b.entry?.every((e) => e.fullUrl?.startsWith('https://api.test/fhir/'))).toBe(true);
    }
  });

  // #17: unrouted requests on PHI paths left no trace.
  it('audits an unrouted request under /fhir or /patients with the area only', async () => {
    expect((await get('/fhir/Medication/P2-secret', tokens['staff'])).status).toBe(404);
    expect((await get('/patients/P2/record')).status).toBe(404);
    const rows = await eventually(
      async () => {
        const r = await ctx.db
          .withSchema(stable.audit)
          .from(AUDIT_TABLE)
          .whereRaw(`event->>'outcomeDesc' = 'unrouted'`)
          .select<{ route: string; patient_id: string | null; agent: string | null }[]>(
            'route',
            'patient_id',
            'agent',
          );
        return r.some((x) => x.route === 'GET /patients/*') ? r : undefined;
      },
      { what: 'unrouted audit rows', timeoutMs: 30_000 },
    );
    expect(rows.map((r) => r.route)).toEqual(expect.arrayContaining(['GET /fhir/*', 'GET /patients/*']));
    expect(rows.every((r) => r.patient_id === null && !r.route.includes('P2'))).toBe(true);
    expect(rows.some((r) => r.agent === 'nurse-1')).toBe(true);
  });

  it('validates input: unknown parameters, _count maximum, bad dates', async () => {
    const u = await get('/fhir/Observation?patient=P1&foo=1', tokens['A']);
    expect(u.status).toBe(400);
    expect(u.json<OperationOutcome>().issue[0]!.diagnostics).toContain('foo');
    expect((await get('/fhir/Observation?patient=P1&_count=1000', tokens['A'])).status).toBe(400);
    expect((await get('/fhir/Observation?patient=P1&date=yesterday', tokens['A'])).status).toBe(400);
    expect((await get('/billing/accounts?status=bogus', tokens['billing'])).status).toBe(400);
    expect((await get('/billing/accounts?__proto__=x', tokens['billing'])).status).toBe(400);
  });

  // Regression (#17): a NUL in an id reached the audit topic and stalled the audit
  // projector. The final audit test below proves these requests left rows and
  // that every later request still reached the table.
  it('refuses a NUL in a FHIR id with 400 before any read, with or without a token', async () => {
    for (const token of [tokens['A'], undefined]) {
      const r = await get('/fhir/Patient/P1%00', token);
      expect(r.status).toBe(400);
      expect(r.json<OperationOutcome>().issue[0]).toMatchObject({ code: 'invalid' });
      expect(r.text).not.toContain('\\u0000');
    }
  });

  it('searches with a form body too (POST _search), within the body limit', async () => {
    const post = async (path: string, body: string) => {
      const r = await call('POST', path, tokens['A'], body);
      return { status: r.status, body: r.json<{ total?: number; issue?: { code: string }[] }>() };
    };
    const own = await post('/fhir/Observation/_search', 'patient=P1&_count=2');
    expect(own.status).toBe(200);
    expect(own.body.total).toBe(4);
    expect((await post('/fhir/Observation/_search', 'patient=P2')).status).toBe(403);
    expect((await post('/fhir/Observation/_search', 'patient=P1&name=x')).status).toBe(400);
    expect((await post('/fhir/Observation/_search', 'patient=P1&__proto__=a&__proto__=b')).status).toBe(400);
    expect((await post('/fhir/Observation/_search', 'patient=P1&constructor=x')).status).toBe(400);
    const big = await post('/fhir/Observation/_search', `patient=P1&status=${'x'.repeat(20_000)}`);
    expect(big.status).toBe(413);
    expect(big.body.issue?.[0]?.code).toBe('too-costly');
  });

  it('serialises only declared fields: a column added to the read model does not leak', async () => {
    const active = projectors[0]!.activeSchema()!;
    await ctx.db.raw(
      `update ??.patients set resource = resource || '{"secretNote":"internal only","extension":[{"url":"x"}]}'::jsonb where patient_id = 'P1'`,
      [active],
    );
    const r = await get('/fhir/Patient/P1', tokens['A']);
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('secretNote');
    // A FHIR element is declared by name whatever the type (resourceSchema); a name FHIR does not have is not.
    expect(r.text).not.toContain('internal only');
  });

  it('serves billing accounts, charges and the worklist', async () => {
    const accounts = (await get('/billing/accounts?status=discharged', tokens['billing'])).json<{
      total: number;
      items: { encounterId: string; status: string }[];
    }>();
    expect(accounts.items.map((a) => a.encounterId).sort()).toEqual(['E1', 'E2', 'E4']);
    const paged = (await get('/billing/accounts?_count=2', tokens['billing'])).json<{
      total: number;
      next: string;
    }>();
    expect(paged.total).toBeGreaterThan(2);
    expect(paged.next).toContain('_offset=2');
    expect((await get(paged.next, tokens['billing'])).status).toBe(200);
    const charges = (await get('/billing/accounts/E1/charges', tokens['billing'])).json<{
      account: { encounterId: string };
      charges: { lineId: string; cpt: string | null; priceCents: number | null; status: string }[];
    }>();
    expect(charges.account.encounterId).toBe('E1');
    expect(charges.charges.find((c) => c.lineId === 'O1')).toMatchObject({
      cpt: '85027',
      priceCents: 4500,
      status: 'billable',
    });
    const work = (await get('/billing/worklist', tokens['billing'])).json<{ items: { problem: string }[] }>();
    expect(work.items.length).toBeGreaterThan(0);
    expect((await get('/billing/accounts/NOPE/charges', tokens['billing'])).status).toBe(404);
  });

  it('serves analytics views by date range and grouping, as JSON and CSV', async () => {
    const a = tokens['analytics'];
    const day = (await get('/analytics/views/v_daily_admissions?from=2026-03-02&to=2026-03-02', a)).json<{
      rows: { day: string; admissions: number }[];
    }>();
    expect(day.rows.length).toBeGreaterThan(0);
    expect(day.rows.every((r) => r.day === '2026-03-02')).toBe(true);
    const byClass = (
      await get('/analytics/views/v_daily_admissions?groupBy=encounter_class&interval=all', a)
    ).json<{ columns: string[]; rows: { encounter_class: string; admissions: number }[] }>();
    expect(byClass.columns).toEqual(['encounter_class', 'admissions']);
    expect(byClass.rows.reduce((s, r) => s + r.admissions, 0)).toBe(4); // E3 cancelled
    const csv = await get('/analytics/views/v_daily_admissions?groupBy=unit&format=csv', a);
    expect(csv.status).toBe(200);
    expect(csv.type).toContain('text/csv');
    expect(csv.text.split('\r\n')[0]).toBe('day,unit,admissions');
    expect((await get('/analytics/views/v_turnaround?groupBy=code', a)).status).toBe(400);
    expect((await get('/analytics/views/v_turnaround', a)).status).toBe(200);
    expect((await get('/analytics/views/not_a_view', a)).status).toBe(400);
    const views = (await get('/analytics/views', a)).json<{ name: string }[]>();
    expect(views.length).toBe(15);
    // Data quality: with no site configuration here, every authority on the log is unregistered.
    const unregistered = (await get('/analytics/views/v_unregistered_authorities', a)).json<{
      columns: string[];
      rows: { system: string; kinds: string; events: number; first_seen: string }[];
    }>();
    expect(unregistered.columns).toEqual(['system', 'kinds', 'sources', 'first_seen', 'last_seen', 'events']);
    expect(unregistered.rows.map((r) => r.system)).toContain('urn:oid:2.16.840.1.113883.3.999.1');
    expect(unregistered.rows.every((r) => r.events > 0 && /^\d{4}-\d\d-\d\dT/.test(r.first_seen))).toBe(true);
  });

  it('publishes metadata, OpenAPI and metrics without a token (route templates only)', async () => {
    const metrics = await get('/metrics');
    expect(metrics.text).toContain('hub_api_request_seconds_bucket{');
    expect(metrics.text).toContain('route="/fhir/Patient/:id"');
    expect(metrics.text).not.toMatch(/route="[^"]*P1/);
    expect(metrics.text).toMatch(/hub_api_audit_events_total\{outcome="4"\} \d+/);
    const meta = await get('/fhir/metadata');
    expect(meta.status).toBe(200);
    expect(meta.json<{ resourceType: string; fhirVersion: string }>()).toMatchObject({
      resourceType: 'CapabilityStatement',
      fhirVersion: '4.0.1',
    });
    const doc = await get('/docs/json');
    expect(doc.status).toBe(200);
    const paths = Object.keys(doc.json<{ paths: Record<string, unknown> }>().paths);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/fhir/Patient/{id}',
        '/fhir/Observation',
        '/billing/accounts',
        '/analytics/views/{view}',
      ]),
    );
    expect((await get('/docs/')).status).toBe(200);
  });

  it('lists who reads the clinical topics', async () => {
    const r = await get('/admin/access', tokens['admin']);
    expect(r.status).toBe(200);
    const body = r.json<{ kafkaConsumers: { groupId: string; topics: string[] }[] }>();
    const groups = body.kafkaConsumers.map((c) => c.groupId);
    expect(groups.filter((g) => g.includes(ctx.schema))).toHaveLength(3);
  });

  it('rate-limits per client', async () => {
    const small = await buildApi(
      {
        db: ctx.db,
        kafka: ctx.kafka,
        producer: ctx.producer,
        logger: createLogger({ name: 'rl', level: 'silent' }),
        metrics: createMetrics({ defaultMetrics: false }),
        verifier: createTokenVerifier({
          issuer: 'https://hub.local/dev-issuer',
          audience: 'hub-api',
          jwks: keys.jwks,
        }),
      },
      { ...cfg, auditProjector: false, rateLimit: { max: 3, windowMs: 60_000 } },
    );
    await small.http.ready();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await small.http.inject({
        url: '/fhir/Patient/P1',
        headers: { authorization: `Bearer ${tokens['A']}` },
      });
      statuses.push(res.statusCode);
      audited++;
      if (i === 3) expect((JSON.parse(res.body) as OperationOutcome).issue[0]!.code).toBe('throttled');
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    // Another client is not throttled by the first one's use.
    const other = await small.http.inject({
      url: '/fhir/Patient/P1',
      headers: { authorization: `Bearer ${tokens['staff']}` },
    });
    audited++;
    expect(other.statusCode).toBe(200);
    await small.http.close();
  });

  it('cancels a query that exceeds its deadline and answers 503', async () => {
    const slow = await buildApi(
      {
        db: ctx.db,
        kafka: ctx.kafka,
        producer: ctx.producer,
        logger: createLogger({ name: 'slow', level: 'silent' }),
        metrics: createMetrics({ defaultMetrics: false }),
        verifier: createTokenVerifier({
          issuer: 'https://hub.local/dev-issuer',
          audience: 'hub-api',
          jwks: keys.jwks,
        }),
      },
      { ...cfg, auditProjector: false, queryTimeoutMs: 300 },
    );
    await slow.http.ready();
    const trx = await ctx.db.transaction();
    try {
      // A lock held elsewhere stands in for any slow plan: the read must not wait for it.
      await trx.raw('lock table ??.patients in access exclusive mode', [projectors[0]!.activeSchema()!]);
      const t0 = Date.now();
      const res = await slow.http.inject({
        url: '/fhir/Patient/P1',
        headers: { authorization: `Bearer ${tokens['A']}` },
      });
      audited++;
      expect(res.statusCode).toBe(503);
      expect((JSON.parse(res.body) as OperationOutcome).issue[0]!.code).toBe('transient');
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await trx.rollback();
    }
    await slow.http.close();
  });

  it('fails closed: no answer when the audit record cannot be written', async () => {
    // A producer that gives up at once, and an audit topic that does not exist.
    const producer = createEventProducer({ kafka: ctx.kafka, codec: ctx.codec, retries: 1 });
    await producer.connect();
    const blind = await buildApi(
      {
        db: ctx.db,
        kafka: ctx.kafka,
        producer,
        logger: createLogger({ name: 'blind', level: 'silent' }),
        metrics: createMetrics({ defaultMetrics: false }),
        verifier: createTokenVerifier({
          issuer: 'https://hub.local/dev-issuer',
          audience: 'hub-api',
          jwks: keys.jwks,
        }),
      },
      { ...cfg, auditProjector: false, auditTopic: `hub.audit.missing.${ctx.id}` },
    );
    await blind.http.ready();
    try {
      const res = await blind.http.inject({
        url: '/fhir/Patient/P1',
        headers: { authorization: `Bearer ${tokens['A']}` },
      });
      expect(res.statusCode).toBe(503);
      expect(res.body).not.toContain('Alpha');
      expect((JSON.parse(res.body) as OperationOutcome).issue[0]!.code).toBe('transient');
    } finally {
      await blind.http.close();
      await producer.disconnect();
    }
  });

  it('audits every request, allowed or denied, into a verifiable chain', async () => {
    const db = ctx.db;
    const rows = await eventually(
      async () => {
        const r = await db.withSchema(stable.audit).from(AUDIT_TABLE).count<{ n: string }[]>({ n: '*' });
        return Number(r[0]!.n) >= audited ? Number(r[0]!.n) : undefined;
      },
      { what: `${audited} audit rows`, timeoutMs: 30_000 },
    );
    expect(rows).toBe(audited);
    // Every denial the API answered is in the log, with who and why.
    const deniedRows = await db
      .withSchema(stable.audit)
      .from(AUDIT_TABLE)
      .where({ outcome: '4' })
      .whereRaw(`event->>'outcomeDesc' in ('unauthenticated', 'patient-mismatch', 'insufficient-scope')`)
      .select<{ agent: string | null }[]>('agent');
    const logged = new Map<string, number>();
    for (const r of deniedRows) logged.set(r.agent ?? '', (logged.get(r.agent ?? '') ?? 0) + 1);
    expect(Object.fromEntries(logged)).toEqual(Object.fromEntries(denials));
    expect(denials.get('patient-p1')).toBeGreaterThan(20);
    expect(denials.get('billing-svc')).toBeGreaterThan(10);
    expect(denials.get('bi-tool')).toBeGreaterThan(10);
    // Which patient: A's attempts on B name B; none of them succeeded.
    const aOnB = await db
      .withSchema(stable.audit)
      .from(AUDIT_TABLE)
      .where({ agent: 'patient-p1', patient_id: 'P2' })
      .select<{ outcome: string; event: AuditEvent }[]>('outcome', 'event');
    expect(aOnB.length).toBeGreaterThan(15);
    expect(aOnB.filter((r) => r.outcome !== '4')).toEqual([]);
    expect(aOnB[0]!.event.agent[0]!.network?.address).toBeTruthy();
    expect(aOnB.some((r) => r.event.outcomeDesc === 'patient-mismatch')).toBe(true);

    expect(await verifyAuditChain(db, stable.audit)).toMatchObject({ ok: true, rows });
    // The table against its topic too: every audit record there is a row here.
    const cliEnv = {
      DATABASE_URL: ctx.ep.databaseUrl,
      AUDIT_SCHEMA: stable.audit,
      AUDIT_TOPIC: auditTopic,
      KAFKA_BROKERS: ctx.ep.kafkaBrokers.join(','),
    };
    const ok = runHub(['audit', 'verify', '--group', `hub.audit.projector.${ctx.id}`], cliEnv);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`${rows} row(s)`);
  });

  it('refuses edits to the audit table, and detects one made around the trigger', async () => {
    const db = ctx.db;
    await expect(
      db.withSchema(stable.audit).from(AUDIT_TABLE).where({ seq: 3 }).update({ outcome: '0' }),
    ).rejects.toThrow(/append-only/);
    await expect(db.withSchema(stable.audit).from(AUDIT_TABLE).where({ seq: 3 }).delete()).rejects.toThrow(
      /append-only/,
    );
    // The test connects as the database owner (a superuser here), which can disable the trigger.
    await db.raw('alter table ??.?? disable trigger audit_log_append_only', [stable.audit, AUDIT_TABLE]);
    try {
      await db
        .withSchema(stable.audit)
        .from(AUDIT_TABLE)
        .where({ seq: 3 })
        .update({ patient_id: 'someone-else' });
    } finally {
      await db.raw('alter table ??.?? enable trigger audit_log_append_only', [stable.audit, AUDIT_TABLE]);
    }
    expect(await verifyAuditChain(db, stable.audit)).toMatchObject({
      ok: false,
      brokenAt: 3,
      reason: 'hash-mismatch',
    });
    const bad = runHub(['audit', 'verify', '--chain-only'], {
      DATABASE_URL: ctx.ep.databaseUrl,
      AUDIT_SCHEMA: stable.audit,
    });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('HUB_AUDIT_CHAIN_BROKEN');
    expect(bad.stderr).toContain('seq 3');
  });

  it('skips a redelivered audit record instead of forking the chain', async () => {
    const db = ctx.db;
    const before = await db.withSchema(stable.audit).from(AUDIT_TABLE).count<{ n: string }[]>({ n: '*' });
    const old = await db
      .withSchema(stable.audit)
      .from(AUDIT_TABLE)
      .orderBy('seq')
      .limit(5)
      .select<{ event: AuditEvent }[]>('event');
    const n = await db.transaction((trx) =>
      appendAudit(
        trx,
        stable.audit,
        old.map((r) => r.event),
      ),
    );
    expect(n).toBe(0);
    const after = await db.withSchema(stable.audit).from(AUDIT_TABLE).count<{ n: string }[]>({ n: '*' });
    expect(after[0]!.n).toBe(before[0]!.n);
  });

  it('keeps canary names and identifiers out of every log line', async () => {
    // Requests that carry PHI in paths, parameters and answers, allowed and refused.
    await get(`/fhir/Patient/${CANARY_PID}`, tokens['canary']);
    await get(`/fhir/Patient/${CANARY_PID}/$everything`, tokens['canary']);
    await get(`/fhir/Patient/${CANARY_FAMILY}`, tokens['canary']);
    await get(`/fhir/Observation?patient=${CANARY_PID}&code=${CANARY_MRN}`, tokens['canary']);
    await get(`/fhir/Observation?patient=${CANARY_PID}&name=${CANARY_FAMILY}`, tokens['canary']);
    await get(`/fhir/Encounter?patient=${CANARY_MRN}`, tokens['staff']);
    await get(`/fhir/Patient/${CANARY_PID}`, 'garbage.' + CANARY_FAMILY);
    const joined = logLines.join('\n');
    expect(logLines.length).toBeGreaterThan(0);
    for (const c of CANARIES) expect(joined, `log contains ${c}`).not.toContain(c);
  });
});
