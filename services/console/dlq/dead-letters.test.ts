import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formPost, signedInApp, type SignedInApp } from '../../../test/support/console-pages.js';
import type { FoundDeadLetter, ListedDeadLetter } from '../../../libs/kafka/dlq-ops.js';
import { parseDeadLetter } from '../../../libs/kafka/dlq.js';
import type { ScannedRecord } from '../../../libs/kafka/scan.js';
import type { ConsoleSession } from '../session.js';
import type { DeadLetterQuery } from './data.js';
import { actionRedirect, listBody, noticeOf, openBody, payloadText } from './views.js';

const FAMILY = 'ZZTOPFAMILY';
const HL7 = `MSH|^~\\&|LAB|MERCY|HUB|HUB|20260101120000||ADT^A04|C-1|P|2.5.1\rPID|1||MRN-1^^^MERCY^MR||${FAMILY}^JANE`;

function rec(topic: string, offset: string, headers: Record<string, string>): ScannedRecord {
  return {
    topic,
    partition: 0,
    offset,
    key: Buffer.from('patient-1'),
    value: Buffer.from(HL7),
    headers,
    timestamp: Date.parse('2026-01-01T12:00:00Z'),
  };
}

function found(r: ScannedRecord, state: ListedDeadLetter['state'] = 'open'): FoundDeadLetter {
  return { rec: r, info: { ...parseDeadLetter(r), state, stateReason: null } };
}

const hl7Refusal = found(
  rec('hl7.dlq.v1.t', '3', {
    'hl7-raw-id': 'r-1',
    'hl7-received-at': '2026-01-01T12:00:00.000Z',
    'hl7-sender': 'LAB|MERCY',
    'hl7-control-id': 'C-1',
    'hl7-message-type': 'ADT^A04',
    'hub-reason-code': 'HUB_INPUT_INVALID:101',
    'hl7-ack-code': 'AE',
  }),
);
const parked = found(
  rec('hub.dlq.projector-portal.t', '0', {
    'hub-event-type': 'PatientRegistered',
    'hub-event-id': 'e-1',
    'hub-source': 'EHR',
    'hub-dlq-reason-code': 'HUB_PROJECTION_FAILED',
    'hub-dlq-consumer': 'hub.projection.portal',
    'hub-dlq-source-topic': 'clinical.patient.v1.t',
    'hub-dlq-source-partition': '0',
    'hub-dlq-source-offset': '7',
  }),
);
const redriven = found(rec('hub.dlq.projector-portal.t', '1', parked.rec.headers), 'redriven');

const session: ConsoleSession = {
  id: 's',
  principal: { subject: 'anna', clientId: 'c', scopes: [] } as unknown as ConsoleSession['principal'],
  roles: ['operator'],
  csrf: 'csrf-token',
  expiresAt: Date.now() + 60_000,
};
const q: DeadLetterQuery = { topic: null, reasonCode: null, handled: false };
const listing = {
  topics: ['hl7.dlq.v1.t', 'hub.dlq.projector-portal.t'],
  reasonCodes: ['HUB_INPUT_INVALID:101', 'HUB_PROJECTION_FAILED'],
  matching: [hl7Refusal, parked, redriven],
  open: 2,
};

describe('dead-letters views', () => {
  it('lists headers only: address, time, reason, sender, type, state; never the value', () => {
    const page = listBody(session, q, listing, noticeOf({})).toString();
    expect(page).not.toContain(FAMILY);
    expect(page).not.toContain('MRN-1');
    expect(page).toContain('<output data-testid="dlq-open" aria-live="polite">2</output>');
    expect(page).toContain('data-dead-letter="hl7.dlq.v1.t/0/3"');
    expect(page).toContain('data-dead-letter="hub.dlq.projector-portal.t/0/0"');
    // Handled ones are hidden unless asked for; the count is of open ones either way.
    expect(page).not.toContain('data-dead-letter="hub.dlq.projector-portal.t/0/1"');
    expect(page).toContain('LAB|MERCY');
    expect(page).toContain('ADT^A04');
    expect(page).toContain('HUB_PROJECTION_FAILED');
    for (const b of ['Open', 'Redrive all shown', 'Discard all shown'])
      expect(page).toContain(`>${b}</button>`);
    expect(page).toMatch(/<label for="dlq-reason-0">Reason<\/label>/);
    expect(page).toMatch(/id="dlq-reason-0" name="reason" required minlength="5"/);
  });

  it('offers redrive only for what a consumer parked', () => {
    const page = listBody(session, q, listing, noticeOf({})).toString();
    const hl7Row = page.slice(
      page.indexOf('data-dead-letter="hl7.dlq.v1.t/0/3"'),
      page.indexOf('</tr>', page.indexOf('hl7.dlq.v1.t/0/3')),
    );
    expect(hl7Row).toMatch(/formaction="\/dead-letters\/redrive"\s+disabled/);
    const parkedRow = page.slice(page.indexOf('data-dead-letter="hub.dlq.projector-portal.t/0/0"'));
    expect(parkedRow.slice(0, parkedRow.indexOf('</tr>'))).not.toMatch(/redrive"\s+disabled/);
  });

  it('lists handled ones with their state when asked', () => {
    const page = listBody(session, { ...q, handled: true }, listing, noticeOf({})).toString();
    expect(page).toContain('data-dead-letter="hub.dlq.projector-portal.t/0/1"');
    expect(page).toContain('<span class="state-ok">redriven</span>');
  });

  it('shows the decoded content on the opened view, HL7 one segment per line', () => {
    const page = openBody(
      session,
      q,
      { found: { ...hl7Refusal, stateBy: null }, payload: HL7.split('\r') },
      'INC-1 check',
    ).toString();
    expect(page).toContain(`PID|1||MRN-1^^^MERCY^MR||${FAMILY}^JANE`);
    expect(page).toContain('reason: INC-1 check');
    expect(payloadText({ a: 1n })).toContain('"a": "1"');
  });

  it('returns to the same filter after an action, with counts only', () => {
    const to = actionRedirect({ topic: 'hub.dlq.x.t', reasonCode: null, handled: false }, 'redriven', {
      done: 2,
      skipped: 1,
    });
    expect(to).toBe('/dead-letters?topic=hub.dlq.x.t&done=redriven&n=2&skipped=1');
    expect(noticeOf({ done: 'redriven', n: '2', skipped: '1' }).toString()).toContain(
      '2 dead letter(s) redriven',
    );
    expect(noticeOf({ done: '<script>', n: '2' }).toString()).toBe('');
  });
});

describe('dead-letters routes: guards', () => {
  let c: SignedInApp;
  beforeAll(async () => {
    c = await signedInApp();
  });
  afterAll(() => c.t.close());

  it('sends a visitor without a session to sign in, and refuses a steward', async () => {
    const anon = await c.app.inject({ method: 'GET', url: '/dead-letters' });
    expect(anon.statusCode).toBe(303);
    expect(anon.headers.location).toBe('/login');
    const res = await c.app.inject({
      method: 'GET',
      url: '/dead-letters',
      headers: { cookie: c.steward.cookie },
    });
    expect(res.statusCode).toBe(403);
  });

  it('refuses a post without the CSRF token, before reading anything', async () => {
    const res = await c.app.inject({
      method: 'POST',
      url: '/dead-letters/redrive',
      headers: { cookie: c.operator.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'topic=hub.dlq.x.t&partition=0&offset=0&reason=INC-1+fixed',
    });
    expect(res.statusCode).toBe(403);
  });

  it('needs a reason to open, redrive, discard or act on all shown; nothing is read or audited without one', async () => {
    const where = { topic: 'hub.dlq.x.t', partition: '0', offset: '0' };
    for (const url of ['/dead-letters/open', '/dead-letters/redrive', '/dead-letters/discard']) {
      const res = await formPost(c.app, c.operator, url, { ...where, reason: 'no' });
      expect(res.statusCode, url).toBe(400);
      expect(res.body).toContain('HUB_INPUT_INVALID');
    }
    const bulk = await formPost(c.app, c.operator, '/dead-letters/bulk', { action: 'redrive', reason: '' });
    expect(bulk.statusCode).toBe(400);
    expect(c.t.audited).toHaveLength(0);
  });

  it('refuses a malformed address', async () => {
    const res = await formPost(c.app, c.operator, '/dead-letters/open', {
      topic: 'x',
      partition: 'a',
      offset: '0',
      reason: 'INC-1 check',
    });
    expect(res.statusCode).toBe(400);
  });
});
