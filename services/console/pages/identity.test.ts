import formbody from '@fastify/formbody';
import type { AuditEvent } from '@medplum/fhirtypes';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { httpStatusOf, toHubError } from '../../../libs/errors/index.js';
import type { CommandOutcome, DecisionRequest, ReviewItem } from '../../../libs/identity/store.js';
import { consoleTestApp, devSignIn, type ConsoleTestApp } from '../../../test/support/console-app.js';
import type { ConsoleContext } from '../context.js';
import type { StewardStore } from '../identity/store.js';
import { createSessionStore, type ConsoleSession } from '../session.js';
import { identityPageWith } from './identity.js';

const item: ReviewItem = {
  pair: {
    pairKey: 'E-1|E-2',
    patientId: 'E-1',
    otherPatientId: 'E-2',
    state: 'proposed',
    score: 22,
    weightsVersion: 'w1',
    evidence: [
      { field: 'given', level: 'jw-high', weight: 4 },
      { field: 'birthDate', level: 'exact', weight: 8 },
    ],
    rules: [],
    decidedBy: 'identity-matcher',
    reason: null,
    basis: 'auto',
    eventId: 'ev-1',
    updatedAt: '2026-01-15T10:00:00.000Z',
  },
  record: {
    names: [{ family: 'Quill', given: ['Ada'], prefix: null, suffix: null, use: null }],
    birthDate: '1990-02-03',
    sex: 'female',
    identifiers: [{ system: 'urn:north', value: 'MRN-1', type: 'MR' }],
    address: null,
    phone: null,
  },
  otherRecord: {
    names: [{ family: 'Quill', given: ['Adah'], prefix: null, suffix: null, use: null }],
    birthDate: '1990-02-03',
    sex: 'female',
    identifiers: [{ system: 'urn:south', value: 'MRN-9', type: 'MR' }],
    address: null,
    phone: null,
  },
};

interface Harness {
  app: FastifyInstance;
  audited: AuditEvent[];
  decided: DecisionRequest[];
  /** What happened to the store and the audit sink, in order. */
  order: string[];
}

/** The page alone over a fake store, with the given session: what it renders and records. */
async function pageWith(scopes: readonly string[], outcome: CommandOutcome): Promise<Harness> {
  const h: Harness = { app: Fastify(), audited: [], decided: [], order: [] };
  const session: ConsoleSession = createSessionStore().create(
    { subject: 'steward-ann', clientId: 'hub-console', scopes, patient: null },
    60_000,
  );
  const store: StewardStore = {
    review: () => Promise.resolve(void h.order.push('review')).then(() => [item]),
    decide: (req) => {
      h.decided.push(req);
      h.order.push('decide');
      return Promise.resolve({ commandId: 'cmd-1', outcome });
    },
  };
  const ctx = {
    audit: {
      record: (e: AuditEvent) => Promise.resolve(void h.audited.push(e)),
      recordAll: (es: readonly AuditEvent[]) => {
        h.order.push('audit');
        h.audited.push(...es);
        return Promise.resolve();
      },
    },
    now: () => Date.parse('2026-01-15T12:00:00Z'),
  } as unknown as ConsoleContext;
  await h.app.register(formbody);
  // As the console's error handler answers: the HubError's status.
  h.app.setErrorHandler((err, _req, reply) =>
    reply.status(httpStatusOf(toHubError(err))).send(toHubError(err).code),
  );
  h.app.decorateRequest('consoleSession', null);
  h.app.addHook('onRequest', (req, _reply, done) => {
    req.consoleSession = session;
    done();
  });
  await h.app.register(
    identityPageWith(() => store),
    { prefix: '/identity', ctx },
  );
  return h;
}

const form = (o: Record<string, string>) => ({
  method: 'POST' as const,
  url: '/identity/decide',
  headers: { 'content-type': 'application/x-www-form-urlencoded', 'hx-request': 'true' },
  payload: new URLSearchParams(o).toString(),
});

describe('identity review page', () => {
  let t: ConsoleTestApp | null = null;
  afterEach(async () => {
    await t?.close();
    t = null;
  });

  it('given a proposed pair, when a deciding steward opens the worklist, then both records side by side, the evidence, Link and "Not the same person" with a reason, audited first, one event per patient', async () => {
    const h = await pageWith(['user/Identity.crs'], { status: 'done', eventId: 'ev', error: null });
    const res = await h.app.inject({ method: 'GET', url: '/identity' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('data-testid="review"');
    expect(res.body).toContain('data-pair="E-1|E-2"');
    expect(res.body).toMatch(/Quill, Ada[\s\S]*Quill, Adah/);
    expect(res.body).toContain('data-evidence="birthDate"');
    expect(res.body).toMatch(/<td class="num" data-field="score">22\.0<\/td>/);
    expect(res.body).toMatch(/<label for="reason-1">Reason<\/label>/);
    expect(res.body).toMatch(/<button type="submit" name="kind" value="link">Link<\/button>/);
    expect(res.body).toMatch(/value="reject">Not the same person<\/button>/);
    expect(h.order).toEqual(['review', 'audit']);
    const patients = h.audited.map(
      (e) => e.entity?.find((x) => x.what?.reference?.startsWith('Patient/'))?.what?.reference,
    );
    expect(patients).toEqual(['Patient/E-1', 'Patient/E-2']);
  });

  it('given a steward who may only look, when the worklist is shown, then no decision buttons; a decision posted anyway is refused', async () => {
    const h = await pageWith(['user/Identity.rs'], { status: 'done', eventId: 'ev', error: null });
    const res = await h.app.inject({ method: 'GET', url: '/identity' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('data-pair="E-1|E-2"');
    expect(res.body).not.toContain('value="link"');
    expect(res.body).not.toContain('Not the same person</button>');
    expect(res.body).not.toContain('/identity/decide');
    const post = await h.app.inject(
      form({ kind: 'link', patientId: 'E-1', otherPatientId: 'E-2', reason: 'x' }),
    );
    expect(post.statusCode).toBe(403);
    expect(h.decided).toEqual([]);
  });

  it.each([
    [
      'done',
      { status: 'done', eventId: 'ev-9', error: null },
      /Linked: the records are one person[\s\S]*ev-9/,
    ],
    [
      'refused',
      { status: 'refused', eventId: null, error: 'the records were merged' },
      /Refused[\s\S]*the records were merged/,
    ],
    ['pending', { status: 'pending', eventId: null, error: null }, /Pending[\s\S]*cmd-1/],
  ] as const)(
    'given the matcher answers %s, when a steward links with a reason, then the result says so, decided by the session subject and audited with the reason',
    async (status, outcome, text) => {
      const h = await pageWith(['user/Identity.crs'], outcome);
      const res = await h.app.inject(
        form({ kind: 'link', patientId: 'E-1', otherPatientId: 'E-2', reason: ' same MRN on paper ' }),
      );
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain(`data-outcome="${status}"`);
      expect(res.body).toMatch(text);
      expect(h.decided).toEqual([
        {
          kind: 'link',
          patientId: 'E-1',
          otherPatientId: 'E-2',
          decidedBy: 'steward-ann',
          reason: 'same MRN on paper',
        },
      ]);
      expect(h.order).toEqual(['decide', 'audit']);
      expect(h.audited).toHaveLength(2);
      expect(JSON.stringify(h.audited)).toContain('steward-ann');
      expect(JSON.stringify(h.audited)).toContain('same MRN on paper');
    },
  );

  it('given a decision without a reason or with one id twice, then 400 and nothing is requested', async () => {
    const h = await pageWith(['user/Identity.crs'], { status: 'done', eventId: 'ev', error: null });
    for (const body of [
      { kind: 'reject', patientId: 'E-1', otherPatientId: 'E-2', reason: '  ' },
      { kind: 'reject', patientId: 'E-1', otherPatientId: 'E-1', reason: 'x' },
      { kind: 'unlink', patientId: 'E-1', otherPatientId: 'E-2', reason: 'x' },
    ]) {
      const res = await h.app.inject(form(body));
      expect(res.statusCode).toBe(400);
    }
    expect(h.decided).toEqual([]);
  });

  it('given an operator without the steward role, when /identity is opened or a decision posted, then 403', async () => {
    t = await consoleTestApp();
    const { cookie, csrf } = await devSignIn(t, ['operator']);
    const get = await t.app.inject({ method: 'GET', url: '/identity', headers: { cookie } });
    expect(get.statusCode).toBe(403);
    const post = await t.app.inject({
      method: 'POST',
      url: '/identity/decide',
      headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'kind=link&patientId=E-1&otherPatientId=E-2&reason=x',
    });
    expect(post.statusCode).toBe(403);
  });
});
