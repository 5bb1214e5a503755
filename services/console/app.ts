import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { frameworkClientError, httpStatusOf, publicMessage, toHubError } from '../../libs/errors/index.js';
import { createHttpApp, type ReadinessCheck } from '../../libs/http/index.js';
import { registerAssets } from './assets.js';
import { registerLogin, requireRole, type LoginOptions } from './auth.js';
import { sendHtml, type ConsoleContext, type PageOptions } from './context.js';
import { html } from './html.js';
import { page } from './layout.js';
import { deadLettersPage } from './pages/dead-letters.js';
import { flowPage } from './pages/flow.js';
import { identityPage } from './pages/identity.js';
import { messagesPage } from './pages/messages.js';
import { outcomesPage } from './pages/outcomes.js';
import type { Role } from './session.js';

/**
 * Every answer: no caching (pages carry PHI), no framing, no referrer (a
 * URL never leaves), and a CSP that runs only the console's own files.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

/** An error as the browser should see it: a page (or an htmx fragment) with the code's status and public text. */
function htmlErrorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const framework = frameworkClientError(err);
  const h = toHubError(err);
  const status = framework?.statusCode ?? httpStatusOf(h);
  if (status >= 500) req.log.error({ code: h.code }, 'console request failed');
  const text = framework ? `HUB_INPUT_INVALID: ${framework.message}` : `${h.code}: ${publicMessage(h)}`;
  const body = html`<p class="error">${text}</p>`;
  if (req.headers['hx-request']) {
    // htmx swaps only 2xx by default: an error is retargeted into the page's alert region.
    void reply.header('hx-retarget', '#alerts').header('hx-reswap', 'innerHTML');
    return sendHtml(reply, body, status);
  }
  return sendHtml(reply, page({ title: 'Error', session: req.consoleSession, body }), status);
}

export const PAGE_PLUGINS: readonly {
  prefix: string;
  role: Role;
  plugin: FastifyPluginAsync<PageOptions>;
}[] = [
  { prefix: '/flow', role: 'operator', plugin: flowPage },
  { prefix: '/dead-letters', role: 'operator', plugin: deadLettersPage },
  { prefix: '/messages', role: 'operator', plugin: messagesPage },
  { prefix: '/identity', role: 'steward', plugin: identityPage },
  { prefix: '/outcomes', role: 'operator', plugin: outcomesPage },
];

export interface ConsoleAppOptions {
  login: LoginOptions;
  readiness: Record<string, ReadinessCheck>;
  metrics?: Registry;
}

/** The console's HTTP app: assets, sign-in, and each page as an encapsulated plugin behind its role. */
export async function buildConsoleApp(ctx: ConsoleContext, o: ConsoleAppOptions): Promise<FastifyInstance> {
  const app = createHttpApp({
    logger: ctx.logger,
    readiness: o.readiness,
    ...(o.metrics ? { metrics: o.metrics } : {}),
    bodyLimit: 64 * 1024,
    // fastify's own 404 quotes the path, and a mistyped path may hold a patient id.
    codeOnlyNotFound: true,
  });
  await app.register(cookie);
  await app.register(formbody);
  app.addHook('onSend', (_req, reply, payload, done) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) if (!reply.hasHeader(k)) void reply.header(k, v);
    done(null, payload);
  });
  app.decorateRequest('consoleSession', null);
  registerAssets(app);
  await app.register((scope, _opts, done) => {
    scope.setErrorHandler(htmlErrorHandler);
    registerLogin(scope, o.login);
    scope.get('/', (req, reply) => {
      const s = req.consoleSession;
      if (!s) return reply.redirect('/login', 303);
      return reply.redirect(s.roles.includes('operator') ? '/flow' : '/identity', 303);
    });
    for (const p of PAGE_PLUGINS) {
      void scope.register(
        async (guarded) => {
          guarded.addHook('preHandler', requireRole(p.role));
          await guarded.register(p.plugin, { ctx });
        },
        { prefix: p.prefix },
      );
    }
    done();
  });
  return app;
}
