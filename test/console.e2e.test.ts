import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics } from '../libs/kafka/admin.js';
import { dlqTopicFor } from '../libs/kafka/dlq.js';
import { scanTopic } from '../libs/kafka/scan.js';
import {
  axeViolations,
  launchChromium,
  recordTrail,
  tabStops,
  type BrowserTrail,
} from './support/browser.js';
import { lastWeek, startConsoleStack, type ConsoleStack } from './support/console.js';
import { createTestContext, eventually, type TestContext } from './support/harness.js';
import { repoDir } from './support/processes.js';
import { RawMllpClient, ackField } from './support/raw-mllp-client.js';

// A made-up patient: her name, MRN and birth date must never be in a URL the browser used.
const FAMILY = 'Quintavalle';
const GIVEN = 'Rosa';
const MRN = 'MC-204711';
const BIRTH = '19710523';
const PHI = [FAMILY, MRN, BIRTH, '1971-05-23'];
const SHOTS = process.env['CONSOLE_SCREENSHOTS'] === '1';
const SHOT_DIR = join(repoDir, 'docs', 'console');
const PATIENT_TOPIC = 'clinical.patient.v1';

const msh = (app: string, fac: string, type: string, id: string, at: string) =>
  `MSH|^~\\&|${app}|${fac}|HUB|HUB|${at}||${type}|${id}|P|2.5.1`;
/** PV1 with the visit number in PV1-19, which a registration needs. */
const pv1 = (cls: string, fac: string, visit: string | null) =>
  `PV1|1|${cls}|CLINIC^^^${fac}${'|'.repeat(16)}${visit === null ? '' : `${visit}^^^${fac}^VN`}`;

function registration(o: { app: string; fac: string; id: string; pid: string; visit: string | null }) {
  return [msh(o.app, o.fac, 'ADT^A04^ADT_A01', o.id, '20260115081500'), 'EVN|A04|20260115081500', o.pid]
    .concat(pv1('O', o.fac, o.visit))
    .join('\r');
}
const rosa = `PID|1||${MRN}^^^MERCY^MR||${FAMILY}^${GIVEN}||${BIRTH}|F|||7 Linden Rd^^Springfield^^01103`;
/** Two registrations of one person (a typo in St Jude's), close enough for the steward's worklist. */
const marta = (fac: 'MERCY' | 'STJUDE') =>
  fac === 'MERCY'
    ? 'PID|1||MC-310552^^^MERCY^MR||Kowalski^Marta||19840312|F|||12 Elm St^^Springfield^^01101||555-0100'
    : 'PID|1||SJ-88120^^^STJUDE^MR||Kowalsky^Marta||19840312|F|||48 Oak Ave^^Springfield^^01105';

function labResult(id: string) {
  return [
    msh('LAB', 'MERCY', 'ORU^R01^ORU_R01', id, '20260115093000'),
    `PID|1||${MRN}^^^MERCY^MR||${FAMILY}^${GIVEN}||${BIRTH}|F`,
    `OBR|1|PL-${id}^EHR|FL-${id}^LAB|24331-1^Lipid panel^LN|||20260115083000|||||||||||||||20260115092900|||F`,
    'OBX|1|NM|2093-3^Cholesterol^LN||196|mg/dL|<200||||F|||20260115092900',
  ].join('\r');
}

/**
 * The console in Debian's Chromium against the real hub: the shared test
 * stack's Kafka, registry and Postgres, the adapter, analytics projector,
 * identity-matcher and console each as its own process. One browser context
 * for the whole file, signed in once through the form, so the URL trail and
 * the storage checked at the end are a whole session's.
 */
describe('operations console in a real browser', () => {
  let ctx: TestContext;
  let stack: ConsoleStack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let trail: BrowserTrail;
  let parkedDlq: string;
  let noBrowser: Error | null = null;
  /**
   * A test of this file: fails (not skipped: a failed beforeAll would only
   * mark them skipped in the report CI prints) when there is no browser.
   */
  const step = (name: string, fn: () => Promise<void>, timeoutMs?: number) =>
    it(
      name,
      async () => {
        if (noBrowser) throw noBrowser;
        await fn();
      },
      timeoutMs,
    );

  const send = async (message: string): Promise<string> => {
    const client = await RawMllpClient.connect(stack.mllpPort);
    try {
      await client.send(message);
      return ackField(await client.nextAck(60_000), 'MSA', 1);
    } finally {
      client.close();
    }
  };
  /** Records on the audit topic so far (its end offsets; none before the first audited access). */
  const auditRecords = async () => {
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      const ends = await admin.fetchTopicOffsets(`hub.audit.v1.${ctx.id}`).catch(() => []);
      return ends.reduce((n, p) => n + Number(p.high), 0);
    } finally {
      await admin.disconnect();
    }
  };
  const shot = async (name: string) => {
    if (!SHOTS) return;
    mkdirSync(SHOT_DIR, { recursive: true });
    await page.screenshot({ path: join(SHOT_DIR, `${name}.png`), fullPage: true });
  };
  const expectAccessible = async () => {
    expect(await axeViolations(page)).toEqual([]);
    expect(trail.cspViolations).toEqual([]);
    expect(trail.pageErrors).toEqual([]);
  };
  /** Opens a page from the menu, as a person does; the menu marks it as the current one. */
  const open = async (path: string) => {
    await page.locator(`nav a[href="${path}"]`).click();
    await page.locator(`nav a[href="${path}"][aria-current="page"]`).waitFor();
    expect(await page.locator('h1').count()).toBe(1);
  };

  beforeAll(async () => {
    // Launched first: without Chromium nothing else starts, and every test fails with the fix in its message.
    try {
      browser = await launchChromium();
    } catch (err) {
      noBrowser = err instanceof Error ? err : new Error(String(err));
      return;
    }
    ctx = await createTestContext('console_e2e');
    // A consumer's dead-letter topic, where a record is parked as the consumer runner parks one.
    parkedDlq = dlqTopicFor('projector-portal', ctx.topic);
    ctx.extraTopics.push(parkedDlq);
    await ensureTopics(ctx.kafka, [
      { name: parkedDlq, partitions: 1, replicationFactor: 1, retentionMs: -1 },
    ]);
    stack = await startConsoleStack(ctx);
    // The outcomes charts' week: the analytics projector reads it while the other pages are tested.
    await ctx.producer.publish(lastWeek(Date.now()));
    context = await browser.newContext({ baseURL: stack.url, viewport: { width: 1280, height: 860 } });
    trail = recordTrail(context);
    page = await context.newPage();
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await stack?.stop();
    await ctx?.cleanup();
  }, 120_000);

  step('signs in through the development form, typing and clicking', async () => {
    await page.goto('/');
    await expect.poll(() => new URL(page.url()).pathname).toBe('/login');
    await expectAccessible();
    await shot('login');
    const user = page.getByLabel('User name');
    await user.clear();
    await user.pressSequentially('oncall-anna');
    await page.getByLabel(/Data steward/).check();
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/flow');
    await page.locator('nav a[href="/flow"][aria-current="page"]').waitFor();
  });

  step('shows a message sent over MLLP on the flow page, live', async () => {
    expect(
      await send(registration({ app: 'ADT', fac: 'MERCY', id: 'ADT-1001', pid: rosa, visit: 'V-1001' })),
    ).toBe('AA');
    expect(await send(labResult('LAB-2001'))).toBe('AA');
    // No reload: the polling region brings the senders in.
    const row = page.locator('table[data-testid="sources"] tr[data-source="ADT|MERCY"]');
    await row.waitFor({ timeout: 30_000 });
    await page.locator(`tr[data-source="LAB|MERCY"]`).waitFor({ timeout: 30_000 });
    await expect
      .poll(() => row.locator('[data-field="received"]').textContent(), { timeout: 30_000 })
      .toMatch(/[1-9]/);
    for (const f of ['per-minute', 'last-message', 'rejected-rate', 'state']) {
      expect(await row.locator(`[data-field="${f}"]`).count(), f).toBe(1);
    }
    expect(await page.locator('table[data-testid="topics"] tr[data-topic]').count()).toBeGreaterThan(0);
    await page.locator('table[data-testid="projections"]').waitFor();
    await page.locator('table[data-testid="subscriptions"]').waitFor();
    await expectAccessible();
    await shot('flow');
  });

  step(
    'is keyboard-usable: the skip link is the first stop and moves focus to the content; Tab reaches every page link and the search form',
    async () => {
      await page.goto('/flow');
      const stops = await tabStops(page);
      expect(stops[0]).toMatch(/^a\[href=#main\] Skip to content/);
      for (const href of ['/flow', '/dead-letters', '/messages', '/identity', '/outcomes']) {
        expect(
          stops.some((s) => s.startsWith(`a[href=${href}]`)),
          `Tab reaches ${href}: ${stops.join(', ')}`,
        ).toBe(true);
      }
      await page.goto('/messages');
      const formStops = await tabStops(page);
      for (const name of ['controlId', 'sender', 'from', 'to']) {
        expect(
          formStops.some((s) => s.includes(`[name=${name}]`)),
          `Tab reaches ${name}: ${formStops.join(', ')}`,
        ).toBe(true);
      }
      expect(formStops.some((s) => s.startsWith('button'))).toBe(true);
      await page.goto('/flow');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.evaluate<string | undefined>('document.activeElement?.id')).toBe('main');
    },
  );

  step(
    'lists a refused message among the dead letters without PHI, opens it with an audited reason, and a redrive with a reason makes the open count fall',
    async () => {
      // A registration without its visit number (PV1-19): the adapter refuses it and keeps it as a dead letter.
      const refused = registration({ app: 'ADT', fac: 'MERCY', id: 'ADT-1002', pid: rosa, visit: null });
      expect(['AE', 'AR']).toContain(await send(refused));
      // A patient event the portal projector could not apply, parked with the consumer runner's headers.
      const [event] = await eventually(async () => {
        const r = await scanTopic(ctx.kafka, ctx.topic(PATIENT_TOPIC));
        return r.length > 0 ? r : undefined;
      });
      if (!event) throw new Error('no patient event');
      await ctx.producer.publishRaw([
        {
          topic: parkedDlq,
          key: event.key,
          value: event.value,
          headers: {
            ...event.headers,
            'hub-dlq-reason-code': 'HUB_PROJECTION_FAILED',
            'hub-dlq-reason': 'projector-portal could not apply the event',
            'hub-dlq-consumer': 'hub.projection.portal',
            'hub-dlq-source-topic': event.topic,
            'hub-dlq-source-partition': String(event.partition),
            'hub-dlq-source-offset': event.offset,
            'hub-dlq-failed-at': new Date().toISOString(),
          },
        },
      ]);

      await open('/dead-letters');
      const refusedRow = page.locator(`tr[data-dead-letter^="${ctx.topic('hl7.dlq.v1')}/"]`).first();
      await refusedRow.waitFor();
      expect(await page.locator('main').textContent()).not.toContain(FAMILY);
      await expectAccessible();
      await shot('dead-letters');

      // Its content only with a reason, and only once the access is on the audit topic.
      const audited = await auditRecords();
      await actWithReason(page, refusedRow, 'Open', 'INC-4410 why is ADT from Mercy refused');
      const payload = page.locator('[data-testid="payload"]');
      await payload.waitFor();
      expect(await payload.textContent()).toContain('ADT^A04');
      expect(await auditRecords()).toBeGreaterThan(audited);
      await expectAccessible();

      await open('/dead-letters');

      await filterDeadLetters(page, parkedDlq);
      const count = page.locator('output[data-testid="dlq-open"]');
      await expect.poll(() => count.textContent()).toBe('1');
      const row = page.locator(`tr[data-dead-letter="${parkedDlq}/0/0"]`);
      await actWithReason(page, row, 'Redrive', 'INC-4411 portal mapping fixed in 2.3');
      await expect.poll(() => count.textContent(), { timeout: 30_000 }).toBe('0');
    },
  );

  step('finds a message by control id and shows its raw form, ACK, events and read models', async () => {
    await open('/messages');
    await page.getByLabel('Control id').fill('LAB-2001');
    await page.getByLabel('Control id').press('Enter');
    const row = page.locator('table[data-testid="messages"] tr[data-control-id="LAB-2001"]');
    await row.waitFor({ timeout: 30_000 });
    await actWithReason(page, row, 'Open', 'lab feed check requested by ward 4');
    await page.locator('[data-testid="raw"]').waitFor();
    expect(await page.locator('[data-testid="raw"]').textContent()).toContain('ORU^R01');
    expect(await page.locator('[data-testid="ack"]').textContent()).toMatch(/AA/);
    await page.locator('[data-testid="events"]').waitFor();
    await page.locator('[data-testid="applied"]').waitFor();
    await expectAccessible();
    await shot('messages');
  });

  step(
    "shows the steward's worklist with a proposed pair side by side, and a link with a reason takes it off",
    async () => {
      for (const fac of ['MERCY', 'STJUDE'] as const) {
        const m = registration({ app: 'EHR', fac, id: `EHR-${fac}-1`, pid: marta(fac), visit: `V-${fac}-1` });
        expect(await send(m)).toBe('AA');
      }
      await open('/identity');
      // The worklist is not a live region: the pair is there once the matcher has scored it.
      await eventually(
        async () => {
          if ((await page.locator('[data-pair]').count()) > 0) return true;
          await page.reload();
          return undefined;
        },
        { what: 'the pair on the worklist', timeoutMs: 90_000, intervalMs: 1000 },
      );
      await page.getByRole('button', { name: 'Not the same person' }).first().waitFor();
      await expectAccessible();
      await shot('identity');

      // The steward links them, with a reason: the pair leaves the worklist.
      const pair = page.locator('[data-pair]').first();
      await pair.getByLabel('Reason').fill('same person: family name typed wrong at St Jude');
      await pair.getByRole('button', { name: 'Link', exact: true }).click();
      await eventually(
        async () => {
          await page.reload();
          return (await page.locator('[data-pair]').count()) === 0 ? true : undefined;
        },
        { what: 'the linked pair off the worklist', timeoutMs: 30_000, intervalMs: 1000 },
      );
    },
  );

  step(
    'draws each outcome KPI with data as a chart with an accessible name, a fallback table and its SQL view',
    async () => {
      await open('/outcomes');
      const charted = ['ed-wait-times', 'result-turnaround', 'census', 'length-of-stay', 'rejected-input'];
      // The page is not live: reloaded until the projector has made the week's days.
      await eventually(
        async () => {
          const drawn = await Promise.all(
            charted.map((k) => page.locator(`section[data-kpi="${k}"] canvas[data-chart]`).count()),
          );
          if (drawn.every((c) => c === 1)) return true;
          await page.reload();
          return undefined;
        },
        { what: `charts of ${charted.join(', ')}`, timeoutMs: 45_000, intervalMs: 1000 },
      );
      const kpis = page.locator('section[data-kpi]');
      const n = await kpis.count();
      expect(n).toBeGreaterThanOrEqual(charted.length);
      for (let i = 0; i < n; i++) {
        const kpi = kpis.nth(i);
        const name = (await kpi.getAttribute('data-kpi')) ?? '';
        expect(await kpi.locator('h2').count(), `${name} h2`).toBe(1);
        expect(await kpi.locator('code').count(), `${name} SQL view`).toBeGreaterThan(0);
        const canvas = kpi.locator('canvas[data-chart]');
        if ((await canvas.count()) === 0) {
          // Without data (billing: no billing projector here) the section says so, no empty chart.
          expect(charted, name).not.toContain(name);
          expect(await kpi.locator('[data-testid="no-data"]').count(), name).toBe(1);
          continue;
        }
        expect(await kpi.locator('table').count(), `${name} fallback table`).toBeGreaterThan(0);
        expect(await canvas.getAttribute('aria-label'), `${name} chart name`).toBeTruthy();
        // Drawn by Chart.js (served by the console), not just an empty canvas.
        await expect
          .poll(() =>
            canvas.evaluate((c) => {
              const chart = (globalThis as { Chart?: { getChart(c: unknown): unknown } }).Chart;
              return chart?.getChart(c) !== undefined;
            }),
          )
          .toBe(true);
      }
      await expectAccessible();
      await shot('outcomes');
    },
    90_000,
  );

  step(
    'kept PHI out of every URL the browser used and out of its storage; only the opaque session cookie',
    async () => {
      expect(trail.urls.length).toBeGreaterThan(10);
      for (const url of trail.urls) {
        for (const p of PHI) expect(decodeURIComponent(url), url).not.toContain(p);
      }
      // Storage: nothing but htmx's note of the current path (it writes it on every load), a path already in the trail.
      const storage = await page.evaluate<{ local: string[]; session: [string, string][] }>(
        '({ local: Object.keys(localStorage), session: Object.entries(sessionStorage) })',
      );
      expect(storage.local).toEqual([]);
      for (const [key, value] of storage.session) {
        expect(key).toBe('htmx-current-path-for-history');
        expect(
          trail.urls.some((u) => new URL(u).pathname + new URL(u).search === value),
          value,
        ).toBe(true);
      }
      const cookies = await context.cookies();
      expect(cookies.map((c) => c.name)).toEqual(['hub_console']);
      const [cookie] = cookies;
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
      expect(cookie?.value).not.toContain('oncall-anna');
      for (const p of PHI) expect(cookie?.value).not.toContain(p);
      // Nor in the console's own log.
      for (const p of [FAMILY, MRN]) expect(stack.procs.console.output()).not.toContain(p);

      if (SHOTS) {
        // The flow page again for the README: every sender of the session, the refusal in ADT|MERCY's AE/AR rate.
        await open('/flow');
        const rate = page.locator('tr[data-source="ADT|MERCY"] [data-field="rejected-rate"]');
        await expect.poll(() => rate.textContent()).not.toMatch(/^\s*0(\.0)?\s*%?\s*$/);
        await shot('flow');
      }
    },
  );
});

/** Narrows the dead-letter list to one topic with the page's own filter form. */
async function filterDeadLetters(page: Page, topic: string): Promise<void> {
  await page.getByLabel('Topic', { exact: true }).selectOption(topic);
  await page.getByRole('button', { name: 'Filter', exact: true }).click();
  await page.locator(`tr[data-dead-letter^="${topic}/"]`).first().waitFor();
}

/**
 * Runs a row's action that needs a reason: the Reason field is in the row,
 * or appears once the action is chosen (then confirmed with the same verb).
 */
async function actWithReason(page: Page, row: Locator, action: string, reason: string): Promise<void> {
  const inRow = row.getByLabel('Reason');
  if ((await inRow.count()) > 0) {
    await inRow.first().fill(reason);
    await row.getByRole('button', { name: action, exact: true }).click();
    return;
  }
  await row.getByRole('button', { name: action, exact: true }).click();
  const field = page.getByLabel('Reason').filter({ visible: true }).first();
  await field.fill(reason);
  await field.press('Enter');
}
