import type { FastifyPluginAsync } from 'fastify';
import { sendHtml, sessionOf, type PageOptions } from '../context.js';
import { html } from '../html.js';
import { page } from '../layout.js';

// Placeholder: the page's owner replaces this file.
export const messagesPage: FastifyPluginAsync<PageOptions> = (app) => {
  app.get('/', (req, reply) =>
    sendHtml(
      reply,
      page({ title: 'messages', session: sessionOf(req), active: '/messages', body: html`<p>Coming.</p>` }),
    ),
  );
  return Promise.resolve();
};
