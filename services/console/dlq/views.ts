import { safeHeaders } from '../../../libs/kafka/dlq.js';
import type { FoundDeadLetter } from '../../../libs/kafka/dlq-ops.js';
import { html, type Html } from '../html.js';
import { csrfField } from '../layout.js';
import { MIN_REASON } from './form.js';
import type { ConsoleSession } from '../session.js';
import { type ActionSummary, type DeadLetterQuery, type Listing, type Opened } from './data.js';

/**
 * The dead-letters page's HTML. The list shows headers the hub wrote
 * (addresses, codes, sender names, message types, states), never a value:
 * values are shown only by the open view, after the audit write.
 */

/** The list's query string (topic, reason code, handled): what every action returns to. */
export function queryString(q: DeadLetterQuery): string {
  const p = new URLSearchParams();
  if (q.topic !== null) p.set('topic', q.topic);
  if (q.reasonCode !== null) p.set('reasonCode', q.reasonCode);
  if (q.handled) p.set('handled', 'on');
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const addressOf = (d: FoundDeadLetter): string =>
  `${d.info.topic}/${d.info.partition}/${d.info.offset}`;

/** Who sent what failed: the HL7 sender, else the event's source system (both hub headers). */
export const senderOf = (d: FoundDeadLetter): string =>
  d.rec.headers['hl7-sender'] ?? d.rec.headers['hub-source'] ?? '';

export const messageTypeOf = (d: FoundDeadLetter): string =>
  d.rec.headers['hl7-message-type'] ?? d.info.eventType ?? '';

function option(value: string, label: string, selected: boolean): Html {
  return html`<option value="${value}" ${selected ? html`selected` : ''}>${label}</option>`;
}

function filterForm(q: DeadLetterQuery, l: Listing): Html {
  return html`<form method="get" action="/dead-letters" class="inline" aria-label="Filter dead letters">
    <div>
      <label for="dlq-topic">Topic</label>
      <select id="dlq-topic" name="topic">
        ${option('', 'every dead-letter topic', q.topic === null)}
        ${l.topics.map((t) => option(t, t, q.topic === t))}
      </select>
    </div>
    <div>
      <label for="dlq-reason-code">Reason code</label>
      <select id="dlq-reason-code" name="reasonCode">
        ${option('', 'any reason', q.reasonCode === null)}
        ${l.reasonCodes.map((c) => option(c, c, q.reasonCode === c))}
      </select>
    </div>
    <div>
      <input type="checkbox" id="dlq-handled" name="handled" value="on" ${q.handled ? html`checked` : ''} />
      <label for="dlq-handled">Also list redriven and discarded</label>
    </div>
    <div><button type="submit">Filter</button></div>
  </form>`;
}

/** The list's filter as hidden fields, so that an action returns to the same list. */
function filterFields(q: DeadLetterQuery): Html {
  return html`<input type="hidden" name="filterTopic" value="${q.topic ?? ''}" />
    <input type="hidden" name="filterReasonCode" value="${q.reasonCode ?? ''}" />
    <input type="hidden" name="filterHandled" value="${q.handled ? 'on' : ''}" />`;
}

/** The required reason of an audited action: label and field. */
export function reasonInput(id: string, label: string): Html {
  return html`<label for="${id}">${label}</label>
    <input id="${id}" name="reason" required minlength="${MIN_REASON}" maxlength="200" autocomplete="off" />`;
}

function stateCell(d: FoundDeadLetter): Html {
  const s = d.info.state;
  const cls = s === 'open' ? 'state-warn' : s === 'redriven' ? 'state-ok' : 'muted';
  return html`<td data-field="state"><span class="${cls}">${s}</span></td>`;
}

function rowActions(s: ConsoleSession, q: DeadLetterQuery, d: FoundDeadLetter, i: number): Html {
  const open = d.info.state === 'open';
  return html`<form method="post" action="/dead-letters/open" class="row-actions">
    ${csrfField(s)} ${filterFields(q)}
    <input type="hidden" name="topic" value="${d.info.topic}" />
    <input type="hidden" name="partition" value="${d.info.partition}" />
    <input type="hidden" name="offset" value="${d.info.offset}" />
    ${reasonInput(`dlq-reason-${i}`, 'Reason')}
    <button type="submit" formaction="/dead-letters/open">Open</button>
    <button
      type="submit"
      formaction="/dead-letters/redrive"
      ${open && d.info.redrivable ? '' : html`disabled`}
      ${d.info.redrivable ? '' : html`title="Not redrivable: no event to re-publish"`}
    >
      Redrive
    </button>
    <button type="submit" class="danger" formaction="/dead-letters/discard" ${open ? '' : html`disabled`}>
      Discard
    </button>
  </form>`;
}

function table(s: ConsoleSession, q: DeadLetterQuery, shown: readonly FoundDeadLetter[]): Html {
  if (shown.length === 0) return html`<p>No dead letters match.</p>`;
  return html`<table data-testid="dead-letters">
    <caption>
      Dead letters (headers only; open one to see its content)
    </caption>
    <thead>
      <tr>
        <th scope="col">Topic / partition / offset</th>
        <th scope="col">Failed at</th>
        <th scope="col">Reason code</th>
        <th scope="col">Consumer</th>
        <th scope="col">Sender</th>
        <th scope="col">Message type</th>
        <th scope="col">State</th>
        <th scope="col">Actions</th>
      </tr>
    </thead>
    <tbody>
      ${shown.map(
        (d, i) =>
          html`<tr data-dead-letter="${addressOf(d)}">
            <th scope="row">${addressOf(d)}</th>
            <td data-field="time">${d.info.failedAt ?? ''}</td>
            <td data-field="reason-code"><code>${d.info.reasonCode}</code></td>
            <td data-field="consumer">${d.info.consumer}</td>
            <td data-field="sender">${senderOf(d)}</td>
            <td data-field="message-type">${messageTypeOf(d)}</td>
            ${stateCell(d)}
            <td>${rowActions(s, q, d, i)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function bulkForm(s: ConsoleSession, q: DeadLetterQuery, open: number): Html {
  if (open === 0) return html``;
  return html`<form method="post" action="/dead-letters/bulk" class="card bulk" aria-label="Act on all shown">
    <h2>All ${open} open dead letter(s) shown</h2>
    <p class="muted">
      Redrive re-publishes those a consumer parked (others are skipped); discard marks them all.
    </p>
    ${csrfField(s)} ${filterFields(q)} ${reasonInput('dlq-bulk-reason', 'Reason')}
    <button type="submit" name="action" value="redrive">Redrive all shown</button>
    <button type="submit" name="action" value="discard" class="danger">Discard all shown</button>
  </form>`;
}

/** What the last action did, as the redirect's query carries it (counts only). */
export function noticeOf(query: Record<string, unknown>): Html {
  const done = query['done'];
  const n = Number(query['n'] ?? 0);
  const skipped = Number(query['skipped'] ?? 0);
  if ((done !== 'redriven' && done !== 'discarded') || !Number.isInteger(n) || !Number.isInteger(skipped))
    return html``;
  const more = skipped > 0 ? `; ${skipped} skipped (not redrivable or handled meanwhile)` : '';
  return html`<p role="status" class="notice">${`${n} dead letter(s) ${done}${more}.`}</p>`;
}

export function listBody(s: ConsoleSession, q: DeadLetterQuery, l: Listing, notice: Html): Html {
  const shown = q.handled ? l.matching : l.matching.filter((d) => d.info.state === 'open');
  return html`${notice} ${filterForm(q, l)}
    <p class="dlq-count">
      Open dead letters matching: <output data-testid="dlq-open" aria-live="polite">${l.open}</output>
    </p>
    ${bulkForm(s, q, l.open)} ${table(s, q, shown)}`;
}

/** A decoded value as text: HL7 one segment per line, the rest as JSON. */
export function payloadText(payload: unknown): string {
  if (Array.isArray(payload) && payload.every((x) => typeof x === 'string')) return payload.join('\n');
  return JSON.stringify(payload, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

export function openBody(s: ConsoleSession, q: DeadLetterQuery, o: Opened, reason: string): Html {
  const d = o.found;
  const headers = Object.entries(safeHeaders(d.rec.headers));
  return html`<p><a href="/dead-letters${queryString(q)}">Back to the list</a></p>
    <p role="status">Access recorded on the audit trail (dlq.show.include-phi, reason: ${reason}).</p>
    <h2>${addressOf(d)}</h2>
    <dl class="facts">
      <dt>Kind</dt>
      <dd>${d.info.kind}</dd>
      <dt>Failed at</dt>
      <dd>${d.info.failedAt ?? ''}</dd>
      <dt>Reason code</dt>
      <dd><code>${d.info.reasonCode}</code></dd>
      <dt>Consumer</dt>
      <dd>${d.info.consumer}</dd>
      <dt>Sender</dt>
      <dd>${senderOf(d)}</dd>
      <dt>Message type</dt>
      <dd>${messageTypeOf(d)}</dd>
      <dt>State</dt>
      <dd>
        ${d.info.state}${d.stateBy ? ` by ${d.stateBy}` : ''}${d.info.stateReason ? ` (${d.info.stateReason})` : ''}
      </dd>
    </dl>
    <h2>Headers</h2>
    <table data-testid="headers">
      <thead>
        <tr>
          <th scope="col">Header</th>
          <th scope="col">Value</th>
        </tr>
      </thead>
      <tbody>
        ${headers.map(
          ([k, v]) =>
            html`<tr>
              <th scope="row"><code>${k}</code></th>
              <td>${v}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <h2>Content</h2>
    <pre data-testid="payload">${payloadText(o.payload)}</pre>
    ${d.info.state === 'open' ? rowActions(s, q, d, 0) : ''}`;
}

export function actionRedirect(q: DeadLetterQuery, done: 'redriven' | 'discarded', r: ActionSummary): string {
  const base = queryString(q);
  return `/dead-letters${base}${base ? '&' : '?'}done=${done}&n=${r.done}&skipped=${r.skipped}`;
}
