import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { sendHtml, sessionOf, type PageOptions } from '../context.js';
import { createFlowReader, type FlowReader } from '../flow/reader.js';
import { flowBody, flowLive } from '../flow/render.js';
import { page } from '../layout.js';

/**
 * The flow page's routes on a reader: the whole page, and the live region
 * htmx polls (GET /flow/live). Apart from the plugin so tests hand a reader in.
 */
export function flowRoutes(app: FastifyInstance, reader: FlowReader, refreshMs: number): void {
  app.get('/', async (req, reply) =>
    sendHtml(
      reply,
      page({
        title: 'Flow',
        session: sessionOf(req),
        active: '/flow',
        body: flowBody(await reader.read(), refreshMs),
      }),
    ),
  );
  app.get('/live', async (_req, reply) => sendHtml(reply, flowLive(await reader.read())));
}

/** Sources, topics, projections, subscriptions and services, live: operators only (app.ts guards it). */
export const flowPage: FastifyPluginAsync<PageOptions> = (app, { ctx }) => {
  flowRoutes(app, createFlowReader(ctx), ctx.settings.refreshMs);
  return Promise.resolve();
};
