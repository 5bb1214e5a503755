import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createAuditSink } from '../../libs/audit/topic.js';
import { consoleTestApp, devSignIn, TEST_CONSOLE_SETTINGS, type ConsoleTestApp } from './console-app.js';
import type { TestContext } from './harness.js';
import type { ConsoleContext } from '../../services/console/context.js';

/** For the console's dead-letter and message pages' tests (inject and int). */

/** A signed-in browser (test/support/console-app.ts devSignIn). */
export interface SignedIn {
  cookie: string;
  csrf: string;
}

/** A post of one of the pages' forms, as a browser sends it (form-encoded, with the session's CSRF field). */
export function formPost(
  app: FastifyInstance,
  who: SignedIn,
  url: string,
  fields: Record<string, string>,
): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url,
    headers: { cookie: who.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: who.csrf, ...fields }).toString(),
  });
}

export interface SignedInApp {
  t: ConsoleTestApp;
  app: FastifyInstance;
  operator: SignedIn;
  steward: SignedIn;
}

/** The console app (stubbed connections unless `ctx` gives real ones) with an operator and a steward signed in. */
export async function signedInApp(ctx?: Partial<ConsoleContext>): Promise<SignedInApp> {
  const t = await consoleTestApp(ctx ? { ctx } : {});
  return {
    t,
    app: t.app,
    operator: await devSignIn(t, ['operator'], 'anna'),
    steward: await devSignIn(t, ['steward'], 'sam'),
  };
}

/** The pages' context on a test's own topics, schema and audit topic. */
export function pageContext(ctx: TestContext, auditTopic: string): Partial<ConsoleContext> {
  return {
    db: ctx.db,
    kafka: ctx.kafka,
    codec: ctx.codec,
    registry: ctx.registry,
    producer: ctx.producer,
    audit: createAuditSink(ctx.producer, auditTopic),
    settings: { ...TEST_CONSOLE_SETTINGS, topic: ctx.topic, opsSchema: ctx.schema, auditTopic },
  };
}
