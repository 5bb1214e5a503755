import { html, type Html, type HtmlValue } from './html.js';
import type { ConsoleSession, Role } from './session.js';

/** The pages and who sees them (the server enforces it per route; the menu only mirrors it). */
export const PAGES: readonly { path: string; title: string; role: Role }[] = [
  { path: '/flow', title: 'Flow', role: 'operator' },
  { path: '/dead-letters', title: 'Dead letters', role: 'operator' },
  { path: '/messages', title: 'Message search', role: 'operator' },
  { path: '/identity', title: 'Identity review', role: 'steward' },
  { path: '/outcomes', title: 'Outcomes', role: 'operator' },
];

/**
 * htmx settings: no history cache (it would copy pages, PHI included, into
 * localStorage), no inline indicator styles (the CSP allows no inline style),
 * and no eval-based features.
 */
const HTMX_CONFIG = JSON.stringify({
  historyCacheSize: 0,
  refreshOnHistoryMiss: true,
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  selfRequestsOnly: true,
});

function nav(session: ConsoleSession | null, active: string): Html {
  if (!session) return html``;
  const items = PAGES.filter((p) => session.roles.includes(p.role));
  return html`<nav aria-label="Console pages">
    <ul>
      ${items.map(
        (p) =>
          html`<li>
            <a href="${p.path}" ${p.path === active ? html`aria-current="page"` : ''}>${p.title}</a>
          </li>`,
      )}
    </ul>
    <form method="post" action="/logout" class="logout">
      <input type="hidden" name="_csrf" value="${session.csrf}" />
      <span class="who">${session.principal.subject} (${session.roles.join(', ') || 'no role'})</span>
      <button type="submit">Sign out</button>
    </form>
  </nav>`;
}

/** A whole page: skip link, menu, one main landmark, the console's own scripts only. */
export function page(o: {
  title: string;
  session: ConsoleSession | null;
  active?: string;
  body: HtmlValue;
  scripts?: readonly string[];
}): Html {
  const csrfHeaders = o.session ? JSON.stringify({ 'x-csrf-token': o.session.csrf }) : '{}';
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="htmx-config" content="${HTMX_CONFIG}" />
        <title>${o.title} · Clinical hub console</title>
        <link rel="stylesheet" href="/assets/console.css" />
        <script src="/assets/htmx.min.js" defer></script>
        <script src="/assets/console.js" defer></script>
        ${(o.scripts ?? []).map((s) => html`<script src="${s}" defer></script>`)}
      </head>
      <body hx-headers="${csrfHeaders}">
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <p class="brand">Clinical hub console</p>
          ${nav(o.session, o.active ?? '')}
        </header>
        <main id="main" tabindex="-1">
          <h1>${o.title}</h1>
          <div id="alerts" role="alert"></div>
          ${o.body}
        </main>
      </body>
    </html>`;
}

/** The hidden CSRF field of a plain (non-htmx) form. */
export const csrfField = (session: ConsoleSession): Html =>
  html`<input type="hidden" name="_csrf" value="${session.csrf}" />`;
