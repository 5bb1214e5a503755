import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core: nothing is downloaded at run
 * time. A missing browser is a failure with the fix in its message, never a
 * silent skip (.ci/run installs the `chromium` package).
 */
export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium package ` +
        '(apt-get install chromium fonts-dejavu-core; .ci/run does) or set CHROMIUM_PATH',
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Everything the browser asked for or navigated to, and every CSP refusal it logged. */
export interface BrowserTrail {
  urls: string[];
  cspViolations: string[];
  pageErrors: string[];
}

/** Records the trail of every page of a context (requests include navigations, htmx polls and assets). */
export function recordTrail(context: BrowserContext): BrowserTrail {
  const trail: BrowserTrail = { urls: [], cspViolations: [], pageErrors: [] };
  context.on('request', (r) => trail.urls.push(r.url()));
  context.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) trail.cspViolations.push(m.text());
  });
  context.on('page', (p) => {
    p.on('framenavigated', (f) => trail.urls.push(f.url()));
    p.on('pageerror', (e) => trail.pageErrors.push(e.message));
  });
  return trail;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * axe-core's WCAG 2 A/AA rules on the page as it is now. axe is evaluated
 * through the DevTools protocol (page.evaluate), which the page's CSP
 * (script-src 'self') does not govern, so the pages stay under their real
 * CSP for the whole test: bypassCSP or a <script> tag would hide a page
 * that only works without it.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    interface AxeResult {
      violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[];
    }
    const axe = (globalThis as unknown as { axe: { run(o: unknown): Promise<AxeResult> } }).axe;
    const r = await axe.run({
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
}

/**
 * Describes the focused element the way a keyboard user meets it: tag, href
 * or name, text. Page-side code is a string: the project's types have no DOM.
 */
export function focused(page: Page): Promise<string> {
  return page.evaluate<string>(`(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return 'body';
    const href = el.getAttribute('href');
    const name = el.getAttribute('name');
    const text = (el.textContent || '').trim().slice(0, 40);
    return el.tagName.toLowerCase() + (href ? '[href=' + href + ']' : '') + (name ? '[name=' + name + ']' : '') + ' ' + text;
  })()`);
}

/** On a freshly loaded page: presses Tab up to `max` times; the focus stops met, in order. */
export async function tabStops(page: Page, max = 40): Promise<string[]> {
  const stops: string[] = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    // Back at the start: the walk is done. A repeat in place is a field with parts (a date's day, month, year).
    if (f === 'body' || f === stops[0]) break;
    if (f !== stops[stops.length - 1]) stops.push(f);
  }
  return stops;
}
