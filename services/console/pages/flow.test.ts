import { afterEach, describe, expect, it } from 'vitest';
import { consoleTestApp, devSignIn, type ConsoleTestApp } from '../../../test/support/console-app.js';

/**
 * The flow page through the console's app (sign-in, role guard, CSP). The
 * test app has no broker nor database: the page must still answer, saying
 * what it could not read.
 */
describe('flow page', () => {
  let t: ConsoleTestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('is for operators only: a steward is refused, nobody signed in is sent to sign in', async () => {
    // given a console and a steward / when each asks for the flow page / then
    t = await consoleTestApp();
    expect((await t.app.inject({ method: 'GET', url: '/flow' })).headers.location).toBe('/login');
    const { cookie } = await devSignIn(t, ['steward']);
    const res = await t.app.inject({ method: 'GET', url: '/flow', headers: { cookie } });
    expect(res.statusCode).toBe(403);
  });

  it('serves the page with its tables and the live region, and the fragment htmx polls, even with Kafka down', async () => {
    // given an operator on a console whose broker and database cannot be reached
    t = await consoleTestApp();
    const { cookie } = await devSignIn(t, ['operator']);

    // when the page and then its live fragment are asked for
    const page = await t.app.inject({ method: 'GET', url: '/flow', headers: { cookie } });
    const live = await t.app.inject({
      method: 'GET',
      url: '/flow/live',
      headers: { cookie, 'hx-request': 'true' },
    });

    // then the page has the polling region and every table, and says Kafka could not be read
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.body).toMatch(
      /<div\s+id="flow-live"[^>]*hx-get="\/flow\/live"[^>]*hx-trigger="every 5000ms"/,
    );
    for (const table of ['sources', 'topics', 'projections', 'subscriptions', 'services']) {
      expect(page.body).toContain(`<table data-testid="${table}">`);
    }
    expect(page.body).toMatch(/data-testid="problems">[\s\S]*kafka: HUB_/);
    // ... and the fragment is the region's content alone
    expect(live.statusCode).toBe(200);
    expect(live.body).not.toContain('<html');
    expect(live.body).toContain('<table data-testid="sources">');
  });
});
