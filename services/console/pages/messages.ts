import type { FastifyPluginAsync } from 'fastify';
import { HubError } from '../../../libs/errors/index.js';
import { auditAccess, sendHtml, sessionOf, type PageOptions } from '../context.js';
import { html } from '../html.js';
import { page } from '../layout.js';
import { checkReason, recordAddress, text } from '../dlq/form.js';
import { messageDetail, patientsOf } from '../messages/detail.js';
import { DEFAULT_WINDOW_MS, searchMessages, type MessageQuery } from '../messages/search.js';
import { detailBody, resultsTable, searchForm } from '../messages/views.js';

/**
 * Message search: POST only (a control id or a time can point at a
 * patient's message, and nothing typed here goes into a URL). Opening a
 * message is audited with the patients of its events before anything of it
 * is sent.
 */

type Body = Record<string, unknown>;

/** `datetime-local` values carry no zone; the form says UTC. */
function instant(name: string, v: string): number | null {
  if (v === '') return null;
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
  if (!Number.isFinite(t)) throw new HubError('HUB_INPUT_INVALID', `${name}: expected a date and time`);
  return t;
}

export function queryOf(b: Body, now: number): MessageQuery {
  const to = instant('To', text(b['to'])) ?? now;
  const from = instant('From', text(b['from'])) ?? to - DEFAULT_WINDOW_MS;
  if (from >= to) throw new HubError('HUB_INPUT_INVALID', 'From must be before To');
  const controlId = text(b['controlId']);
  const sender = text(b['sender']);
  return { controlId: controlId || null, sender: sender || null, from, to };
}

export const messagesPage: FastifyPluginAsync<PageOptions> = (app, { ctx }) => {
  const title = 'Message search';
  app.get('/', (req, reply) => {
    const s = sessionOf(req);
    const body = html`${searchForm(s)}
      <div id="message-results" aria-live="polite"></div>`;
    return sendHtml(reply, page({ title, session: s, active: '/messages', body }));
  });

  app.post('/search', async (req, reply) => {
    const s = sessionOf(req);
    const results = resultsTable(s, await searchMessages(ctx, queryOf(req.body as Body, ctx.now())));
    if (req.headers['hx-request']) return sendHtml(reply, results);
    const body = html`${searchForm(s)}
      <div id="message-results" aria-live="polite">${results}</div>`;
    return sendHtml(reply, page({ title, session: s, active: '/messages', body }));
  });

  app.post('/open', async (req, reply) => {
    const b = req.body as Body;
    const reason = checkReason(text(b['reason']));
    const detail = await messageDetail(ctx, recordAddress(b, 'a message'));
    // Recorded (and acknowledged) before the page is sent; if it fails, nothing is shown.
    await auditAccess(ctx, req, {
      route: 'POST /messages/open',
      interaction: 'read',
      resourceType: null,
      patientIds: patientsOf(detail),
      reason,
    });
    const s = sessionOf(req);
    return sendHtml(
      reply,
      page({ title: 'Message', session: s, active: '/messages', body: detailBody(detail) }),
    );
  });
  return Promise.resolve();
};
