import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formPost, signedInApp, type SignedInApp } from '../../../test/support/console-pages.js';
import type { ScannedRecord } from '../../../libs/kafka/scan.js';
import { queryOf } from '../pages/messages.js';
import type { ConsoleSession } from '../session.js';
import { ackOf, type MessageDetail } from './detail.js';
import { hitOf, matchesQuery } from './search.js';
import { detailBody, resultsTable, searchForm } from './views.js';

const FAMILY = 'ZZTOPFAMILY';
const ORU = `MSH|^~\\&|LAB|MERCY|HUB|HUB|20260101120000||ORU^R01|LAB-2001|P|2.5.1\rPID|1||MRN-1^^^MERCY^MR||${FAMILY}^JANE\rOBX|1|NM|2345-7^Glucose^LN||5.4`;
const AT = Date.parse('2026-01-01T12:00:00Z');

function rec(topic: string, headers: Record<string, string>): ScannedRecord {
  return {
    topic,
    partition: 1,
    offset: '42',
    key: null,
    value: Buffer.from(ORU),
    timestamp: AT + 5,
    headers: {
      'hl7-raw-id': 'raw-1',
      'hl7-received-at': new Date(AT).toISOString(),
      'hl7-sender': 'LAB|MERCY',
      'hl7-control-id': 'LAB-2001',
      'hl7-message-type': 'ORU^R01',
      ...headers,
    },
  };
}

const accepted = rec('hl7.raw.v1.t', {});
const refused = rec('hl7.dlq.v1.t', {
  'hub-reason-code': 'HUB_INPUT_INVALID:101',
  'hl7-ack-code': 'AE',
  'hl7-error-code': '101',
  'hl7-error-location': 'PV1-19',
  'hub-error-message': 'visit number missing',
});
const session = { id: 's', roles: ['operator'], csrf: 't', expiresAt: 0 } as unknown as ConsoleSession;
const q = { controlId: null, sender: null, from: AT - 1000, to: AT + 1000 };

describe('message search: selection and views', () => {
  it('matches by control id, sender (APP|FACILITY or APP) and received time', () => {
    expect(matchesQuery(accepted, q)).toBe(true);
    expect(matchesQuery(accepted, { ...q, controlId: 'LAB-2001', sender: 'LAB|MERCY' })).toBe(true);
    expect(matchesQuery(accepted, { ...q, sender: 'LAB' })).toBe(true);
    expect(matchesQuery(accepted, { ...q, sender: 'LAB|STJUDE' })).toBe(false);
    expect(matchesQuery(accepted, { ...q, controlId: 'LAB-2002' })).toBe(false);
    expect(matchesQuery(accepted, { ...q, from: AT + 1 })).toBe(false);
    expect(matchesQuery(accepted, { ...q, to: AT })).toBe(false);
  });

  it('reads the form: datetime-local values as UTC, a default window, From before To', () => {
    const now = AT;
    expect(queryOf({ controlId: ' LAB-2001 ', sender: '' }, now)).toEqual({
      controlId: 'LAB-2001',
      sender: null,
      from: now - 24 * 3600_000,
      to: now,
    });
    expect(queryOf({ from: '2026-01-01T11:00', to: '2026-01-01T12:00:30' }, now)).toMatchObject({
      from: Date.parse('2026-01-01T11:00:00Z'),
      to: Date.parse('2026-01-01T12:00:30Z'),
    });
    expect(() => queryOf({ from: '2026-01-01T12:00', to: '2026-01-01T11:00' }, now)).toThrow(/before/);
    expect(() => queryOf({ from: 'soon' }, now)).toThrow(/date/);
  });

  it('lists results without PHI, one row per message, each opened by a post with a reason', () => {
    const page = resultsTable(session, {
      hits: [hitOf(accepted, 'accepted'), hitOf(refused, 'refused')],
      truncated: false,
    }).toString();
    expect(page).not.toContain(FAMILY);
    expect(page).toContain('<table data-testid="messages">');
    expect(page.match(/<tr data-control-id="LAB-2001"/g)).toHaveLength(2);
    expect(page).toContain('accepted');
    expect(page).toContain('refused (AE)');
    expect(page).toContain('<form method="post" action="/messages/open"');
    expect(page).toMatch(/<label for="msg-reason-0">Reason<\/label>/);
  });

  it('has the search form the contract names, posting (nothing typed goes into a URL)', () => {
    const f = searchForm(session).toString();
    for (const [id, name, label] of [
      ['msg-control-id', 'controlId', 'Control id'],
      ['msg-sender', 'sender', 'Sender'],
      ['msg-from', 'from', 'From (UTC)'],
      ['msg-to', 'to', 'To (UTC)'],
    ]) {
      expect(f).toContain(`<label for="${id}">${label}</label>`);
      expect(f).toContain(`id="${id}" name="${name}"`);
    }
    expect(f).toContain('hx-post="/messages/search"');
    expect(f).not.toContain('method="get"');
  });

  it("rebuilds an accepted message's ACK, and a refused one's from its dead-letter headers", () => {
    const ok = ackOf(accepted, 'accepted');
    expect(ok.codes).toEqual(['AA']);
    expect(ok.source).toBe('rebuilt');
    expect(ok.text).toMatch(/^MSH\|\^~\\&\|HUB\|HUB\|LAB\|MERCY\|/);
    expect(ok.text).toContain('MSA|AA|LAB-2001');
    const no = ackOf(refused, 'refused');
    expect(no.codes).toEqual(['AE']);
    expect(no.text).toContain('MSA|AE|LAB-2001');
    expect(no.text).toContain('ERR|');
    expect(no).toMatchObject({
      errorCode: '101',
      errorLocation: 'PV1-19',
      errorMessage: 'visit number missing',
    });
  });

  it('shows raw, ACK (saying it is rebuilt), events and read models on the opened view', () => {
    const d: MessageDetail = {
      hit: hitOf(accepted, 'accepted'),
      raw: ORU.replace(/\r/g, '\n'),
      ack: ackOf(accepted, 'accepted'),
      events: [
        {
          type: 'LabResultReported',
          eventId: '00000000-0000-4000-8000-000000000001',
          patientId: 'p-1',
          topic: 'clinical.result.v1.t',
          partition: 1,
          offset: '9',
          remapped: false,
        },
      ],
      eventWindowMs: 600_000,
      readModels: [
        {
          readModel: 'analytics',
          projection: 'analytics',
          schema: 'analytics_v1',
          events: [
            { eventId: '00000000-0000-4000-8000-000000000001', type: 'LabResultReported', applied: true },
          ],
          state: 'applied',
        },
        {
          readModel: 'portal',
          projection: 'portal',
          schema: 'portal_v1',
          events: [],
          state: 'nothing to apply',
        },
      ],
    };
    const page = detailBody(d).toString();
    expect(page).toMatch(/<pre data-testid="raw">MSH[^<]*ORU\^R01/);
    expect(page).toContain('<section data-testid="ack"');
    expect(page).toContain('does not keep the ACK bytes');
    expect(page).toContain('<section data-testid="events"');
    expect(page).toContain('clinical.result.v1.t/1/9');
    expect(page).toContain('<section data-testid="applied"');
    expect(page).toMatch(/data-read-model="analytics"[\s\S]*state-ok">applied</);
  });
});

describe('message search routes: guards', () => {
  let c: SignedInApp;
  beforeAll(async () => {
    c = await signedInApp();
  });
  afterAll(() => c.t.close());

  it('serves the search form to an operator; refuses a steward and a visitor', async () => {
    const ok = await c.app.inject({
      method: 'GET',
      url: '/messages',
      headers: { cookie: c.operator.cookie },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('id="message-results"');
    const st = await c.app.inject({ method: 'GET', url: '/messages', headers: { cookie: c.steward.cookie } });
    expect(st.statusCode).toBe(403);
    const anon = await c.app.inject({ method: 'POST', url: '/messages/search', payload: {} });
    expect(anon.statusCode).toBe(401);
  });

  it('refuses a search with a bad range and an open without a reason, reading and auditing nothing', async () => {
    const bad = await formPost(c.app, c.operator, '/messages/search', {
      from: '2026-01-02T00:00',
      to: '2026-01-01T00:00',
    });
    expect(bad.statusCode).toBe(400);
    const open = await formPost(c.app, c.operator, '/messages/open', {
      topic: 'hl7.raw.v1.t',
      partition: '0',
      offset: '0',
      reason: '',
    });
    expect(open.statusCode).toBe(400);
    expect(open.body).toContain('reason');
    expect(c.t.audited).toHaveLength(0);
  });

  it('answers an htmx error into the alert region', async () => {
    const res = await c.app.inject({
      method: 'POST',
      url: '/messages/search',
      headers: {
        cookie: c.operator.cookie,
        'content-type': 'application/x-www-form-urlencoded',
        'hx-request': 'true',
        'x-csrf-token': c.operator.csrf,
      },
      payload: 'from=nope',
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['hx-retarget']).toBe('#alerts');
  });
});
