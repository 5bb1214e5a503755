import { html, type Html } from '../html.js';
import { reasonInput } from '../dlq/views.js';
import { csrfField } from '../layout.js';
import type { ConsoleSession } from '../session.js';
import type { ReadModelState } from './applied.js';
import type { MessageDetail } from './detail.js';
import { DEFAULT_WINDOW_MS, MAX_HITS, type MessageHit, type SearchResult } from './search.js';

/**
 * The message-search page's HTML. The result list holds headers only
 * (control id, sender, type, time, outcome); the message itself, its ACK and
 * its events are on the opened view, which the page audits first.
 */

export function searchForm(s: ConsoleSession): Html {
  return html`<form
      method="post"
      action="/messages/search"
      hx-post="/messages/search"
      hx-target="#message-results"
      hx-swap="innerHTML"
      class="inline card"
      aria-label="Find messages"
    >
      ${csrfField(s)}
      <div>
        <label for="msg-control-id">Control id</label>
        <input id="msg-control-id" name="controlId" maxlength="199" autocomplete="off" />
      </div>
      <div>
        <label for="msg-sender">Sender</label>
        <input id="msg-sender" name="sender" maxlength="200" placeholder="APP|FACILITY" autocomplete="off" />
      </div>
      <div>
        <label for="msg-from">From (UTC)</label>
        <input id="msg-from" name="from" type="datetime-local" step="1" />
      </div>
      <div>
        <label for="msg-to">To (UTC)</label>
        <input id="msg-to" name="to" type="datetime-local" step="1" />
      </div>
      <div><button type="submit">Search</button></div>
    </form>
    <p class="muted">
      Searches accepted (hl7.raw.v1) and refused (hl7.dlq.v1) messages received in the range; without one, the
      last ${DEFAULT_WINDOW_MS / 3600_000} hours. At most ${MAX_HITS} are listed, newest first.
    </p>`;
}

function outcomeCell(h: MessageHit): Html {
  return h.outcome === 'accepted'
    ? html`<td data-field="outcome"><span class="state-ok">accepted</span></td>`
    : html`<td data-field="outcome">
        <span class="state-bad">refused${h.ackCode ? ` (${h.ackCode})` : ''}</span>
      </td>`;
}

function openForm(s: ConsoleSession, h: MessageHit, i: number): Html {
  return html`<form method="post" action="/messages/open" class="row-actions">
    ${csrfField(s)}
    <input type="hidden" name="topic" value="${h.topic}" />
    <input type="hidden" name="partition" value="${h.partition}" />
    <input type="hidden" name="offset" value="${h.offset}" />
    ${reasonInput(`msg-reason-${i}`, 'Reason')}
    <button type="submit">Open</button>
  </form>`;
}

export function resultsTable(s: ConsoleSession, r: SearchResult): Html {
  if (r.hits.length === 0) return html`<p role="status">No message matches.</p>`;
  return html`<p role="status">
      ${r.hits.length} message(s)${r.truncated ? html`; more matched: narrow the search` : ''}.
    </p>
    <table data-testid="messages">
      <caption>
        Messages (headers only; open one to see it, audited)
      </caption>
      <thead>
        <tr>
          <th scope="col">Control id</th>
          <th scope="col">Sender</th>
          <th scope="col">Type</th>
          <th scope="col">Received at</th>
          <th scope="col">Outcome</th>
          <th scope="col">Open</th>
        </tr>
      </thead>
      <tbody>
        ${r.hits.map(
          (h, i) =>
            html`<tr data-control-id="${h.controlId}" data-message="${h.topic}/${h.partition}/${h.offset}">
              <th scope="row">${h.controlId}</th>
              <td data-field="sender">${h.sender}</td>
              <td data-field="type">${h.messageType}</td>
              <td data-field="received">${h.receivedAt}</td>
              ${outcomeCell(h)}
              <td>${openForm(s, h, i)}</td>
            </tr>`,
        )}
      </tbody>
    </table>`;
}

function ackSection(d: MessageDetail): Html {
  const a = d.ack;
  const how =
    a.source === 'rebuilt'
      ? html`The adapter does not keep the ACK bytes it sent. This ACK is <strong>rebuilt</strong> from the
          message's MSH with the adapter's own code (libs/hl7/ack.ts) for an accepted message; its MSH-7
          (time) and MSH-10 (the ACK's control id) are the rebuild's, not the original's.`
      : html`A refused message is kept as a dead letter whose headers hold the ACK and error codes the adapter
          sent. The ACK below is <strong>rebuilt</strong> from those codes (libs/hl7/ack.ts); its MSH-7,
          MSH-10 and ERR text are the rebuild's.`;
  return html`<section data-testid="ack" aria-labelledby="ack-h">
    <h2 id="ack-h">ACK: ${a.codes.join(', ')}</h2>
    <p class="muted">${how}</p>
    ${
      a.errorCode !== null
        ? html`<dl class="facts">
            <dt>Error code (HL7 0357)</dt>
            <dd><code>${a.errorCode}</code></dd>
            <dt>Location</dt>
            <dd>${a.errorLocation ?? ''}</dd>
            <dt>Hub message</dt>
            <dd>${a.errorMessage ?? ''}</dd>
          </dl>`
        : ''
    }
    <pre>${a.text}</pre>
  </section>`;
}

function eventsSection(d: MessageDetail): Html {
  const body =
    d.events.length === 0
      ? html`<p>
          No event with this message's raw id was written within ${d.eventWindowMs / 60_000} minutes of its
          receipt
          ${d.hit.outcome === 'refused' ? '(a refused message produces none until it is re-mapped)' : ''}.
        </p>`
      : html`<table>
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Topic / partition / offset</th>
              <th scope="col">Event id</th>
            </tr>
          </thead>
          <tbody>
            ${d.events.map(
              (e) =>
                html`<tr data-event-id="${e.eventId}">
                  <th scope="row">${e.type}${e.remapped ? ' (re-mapped)' : ''}</th>
                  <td>${e.topic}/${e.partition}/${e.offset}</td>
                  <td><code>${e.eventId}</code></td>
                </tr>`,
            )}
          </tbody>
        </table>`;
  return html`<section data-testid="events" aria-labelledby="events-h">
    <h2 id="events-h">Events produced (${d.events.length})</h2>
    ${body}
  </section>`;
}

function stateBadge(state: ReadModelState['state']): Html {
  const cls = state === 'applied' ? 'state-ok' : state === 'not yet' ? 'state-warn' : 'muted';
  return html`<span class="${cls}">${state}</span>`;
}

function appliedSection(d: MessageDetail): Html {
  const body =
    d.readModels.length === 0
      ? html`<p>No read model has read this hub's clinical topics yet.</p>`
      : html`<table>
          <thead>
            <tr>
              <th scope="col">Read model</th>
              <th scope="col">Schema</th>
              <th scope="col">State</th>
              <th scope="col">Per event</th>
            </tr>
          </thead>
          <tbody>
            ${d.readModels.map(
              (m) =>
                html`<tr data-read-model="${m.readModel}">
                  <th scope="row">${m.readModel}</th>
                  <td><code>${m.schema}</code></td>
                  <td data-field="state">${stateBadge(m.state)}</td>
                  <td>${m.events.map((e) => html`${e.type}: ${e.applied ? 'applied' : 'not yet'}<br />`)}</td>
                </tr>`,
            )}
          </tbody>
        </table>`;
  return html`<section data-testid="applied" aria-labelledby="applied-h">
    <h2 id="applied-h">Where they were applied</h2>
    <p class="muted">
      Per read model that reads this hub's clinical topics: its applied-event ids and per-partition
      checkpoints in its active schema.
    </p>
    ${body}
  </section>`;
}

export function detailBody(d: MessageDetail): Html {
  const h = d.hit;
  return html`<p><a href="/messages">New search</a></p>
    <p role="status">Access recorded on the audit trail.</p>
    <h2>${h.messageType} #${h.controlId}</h2>
    <dl class="facts">
      <dt>Sender</dt>
      <dd>${h.sender}</dd>
      <dt>Received at</dt>
      <dd>${h.receivedAt}</dd>
      <dt>Outcome</dt>
      <dd>${h.outcome}${h.ackCode ? ` (${h.ackCode})` : ''}</dd>
      <dt>Kept at</dt>
      <dd>${h.topic}/${h.partition}/${h.offset}</dd>
      <dt>Raw id</dt>
      <dd><code>${h.rawId}</code></dd>
    </dl>
    <section aria-labelledby="raw-h">
      <h2 id="raw-h">Raw message</h2>
      <pre data-testid="raw">${d.raw}</pre>
    </section>
    ${ackSection(d)} ${eventsSection(d)} ${appliedSection(d)}`;
}
