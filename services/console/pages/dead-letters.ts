import type { FastifyPluginAsync } from 'fastify';
import { HubError } from '../../../libs/errors/index.js';
import { sendHtml, sessionOf, type PageOptions } from '../context.js';
import {
  actOnMatching,
  actOnOne,
  listDeadLetters,
  openDeadLetter,
  type DeadLetterQuery,
} from '../dlq/data.js';
import { recordAddress, text } from '../dlq/form.js';
import { actionRedirect, listBody, noticeOf, openBody } from '../dlq/views.js';
import { page } from '../layout.js';

/**
 * Dead letters: browse by topic and reason (headers only), open one with an
 * audited reason, redrive or discard one or every open one the filter shows.
 * Actions are plain form posts answered with a redirect back to the list
 * (its query holds only a topic name and a reason code).
 */

type Body = Record<string, unknown>;

const orNull = (v: string): string | null => (v.trim() === '' ? null : v.trim());

function queryOf(q: Body): DeadLetterQuery {
  return {
    topic: orNull(text(q['topic'])),
    reasonCode: orNull(text(q['reasonCode'])),
    handled: q['handled'] === 'on',
  };
}

/** The list filter the action's form carried back. */
function filterOf(b: Body): DeadLetterQuery {
  return {
    topic: orNull(text(b['filterTopic'])),
    reasonCode: orNull(text(b['filterReasonCode'])),
    handled: b['filterHandled'] === 'on',
  };
}

export const deadLettersPage: FastifyPluginAsync<PageOptions> = (app, { ctx }) => {
  const title = 'Dead letters';
  app.get('/', async (req, reply) => {
    const query = req.query as Body;
    const q = queryOf(query);
    const listing = await listDeadLetters(ctx, q);
    const s = sessionOf(req);
    return sendHtml(
      reply,
      page({ title, session: s, active: '/dead-letters', body: listBody(s, q, listing, noticeOf(query)) }),
    );
  });

  app.post('/open', async (req, reply) => {
    const b = req.body as Body;
    const reason = text(b['reason']);
    const opened = await openDeadLetter(ctx, req, recordAddress(b, 'a dead letter'), reason);
    const s = sessionOf(req);
    return sendHtml(
      reply,
      page({
        title: 'Dead letter',
        session: s,
        active: '/dead-letters',
        body: openBody(s, filterOf(b), opened, reason.trim()),
      }),
    );
  });

  for (const [path, action, done] of [
    ['/redrive', 'redrive', 'redriven'],
    ['/discard', 'discard', 'discarded'],
  ] as const) {
    app.post(path, async (req, reply) => {
      const b = req.body as Body;
      const r = await actOnOne(ctx, req, action, recordAddress(b, 'a dead letter'), text(b['reason']));
      return reply.redirect(actionRedirect(filterOf(b), done, r), 303);
    });
  }

  app.post('/bulk', async (req, reply) => {
    const b = req.body as Body;
    const q = filterOf(b);
    const action = b['action'];
    if (action !== 'redrive' && action !== 'discard')
      throw new HubError('HUB_INPUT_INVALID', 'choose redrive or discard');
    const r = await actOnMatching(ctx, req, action, q, text(b['reason']));
    return reply.redirect(actionRedirect(q, action === 'redrive' ? 'redriven' : 'discarded', r), 303);
  });
  return Promise.resolve();
};
