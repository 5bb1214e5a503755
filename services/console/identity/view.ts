import type { Address, HumanName, Identifier } from '../../../libs/events/index.js';
import type { CommandKind, CommandOutcome, RecordDisplay, ReviewItem } from '../../../libs/identity/store.js';
import { html, type Html } from '../html.js';
import { csrfField } from '../layout.js';
import type { ConsoleSession } from '../session.js';

/**
 * The identity review page's markup: each proposed pair as both records
 * side by side (the demographics the steward API shows, nothing more), the
 * matcher's evidence per field, and the decision form for stewards who may
 * decide. Pure: data in, `html` out (every value escaped).
 */

const nameText = (n: HumanName): string =>
  [n.prefix, [n.family ?? '', n.given.join(' ')].filter(Boolean).join(', '), n.suffix]
    .filter(Boolean)
    .join(' ') + (n.use ? ` (${n.use})` : '');
const identifierText = (i: Identifier): string => `${i.value} @ ${i.system}${i.type ? ` (${i.type})` : ''}`;
const addressText = (a: Address | null): string =>
  a ? [...a.lines, a.city, a.state, a.postalCode, a.country].filter(Boolean).join(', ') : '';

/** The rows of the side-by-side table: each a label and the record's values as lines. */
const FIELDS: readonly { label: string; values: (d: RecordDisplay) => string[] }[] = [
  { label: 'Names', values: (d) => d.names.map(nameText) },
  { label: 'Birth date', values: (d) => (d.birthDate ? [d.birthDate] : []) },
  { label: 'Sex', values: (d) => (d.sex ? [d.sex] : []) },
  { label: 'Identifiers', values: (d) => d.identifiers.map(identifierText) },
  { label: 'Address', values: (d) => (d.address ? [addressText(d.address)] : []) },
  { label: 'Phone', values: (d) => (d.phone ? [d.phone] : []) },
];

const cell = (lines: readonly string[]): Html =>
  lines.length === 0
    ? html`<span class="muted">(none)</span>`
    : html`${lines.map((l, i) => html`${i > 0 ? html`<br />` : ''}${l}`)}`;

/** Same or not, in words (never by colour alone). */
function agreement(a: readonly string[], b: readonly string[]): Html {
  if (a.length === 0 || b.length === 0) return html`<span class="muted">missing</span>`;
  const same = a.length === b.length && a.every((x, i) => x.toLowerCase() === b[i]?.toLowerCase());
  return same ? html`<span class="state-ok">same</span>` : html`<span class="state-warn">differs</span>`;
}

function sideBySide(item: ReviewItem, n: number): Html {
  const { pair } = item;
  return html`<table class="records" data-testid="records">
    <caption>
      Pair ${n}: both records side by side
    </caption>
    <thead>
      <tr>
        <th scope="col">Field</th>
        <th scope="col">Record <code>${pair.patientId}</code></th>
        <th scope="col">Record <code>${pair.otherPatientId}</code></th>
        <th scope="col">Agreement</th>
      </tr>
    </thead>
    <tbody>
      ${FIELDS.map((f) => {
        const a = f.values(item.record);
        const b = f.values(item.otherRecord);
        return html`<tr>
          <th scope="row">${f.label}</th>
          <td>${cell(a)}</td>
          <td>${cell(b)}</td>
          <td>${agreement(a, b)}</td>
        </tr>`;
      })}
    </tbody>
  </table>`;
}

const signed = (w: number): string => (w > 0 ? `+${w.toFixed(1)}` : w.toFixed(1));

function evidenceTable(item: ReviewItem, n: number): Html {
  const { pair } = item;
  return html`<table class="evidence" data-testid="evidence">
    <caption>
      Pair ${n}: the matcher's evidence per field
    </caption>
    <thead>
      <tr>
        <th scope="col">Field</th>
        <th scope="col">Agreement level</th>
        <th scope="col" class="num">Weight</th>
      </tr>
    </thead>
    <tbody>
      ${pair.evidence.map(
        (e) =>
          html`<tr data-evidence="${e.field}">
            <th scope="row">${e.field}</th>
            <td>${e.level}</td>
            <td class="num">${signed(e.weight)}</td>
          </tr>`,
      )}
    </tbody>
    <tfoot>
      <tr>
        <th scope="row" colspan="2">Score (weights ${pair.weightsVersion ?? 'unknown'})</th>
        <td class="num" data-field="score">${pair.score === null ? '—' : pair.score.toFixed(1)}</td>
      </tr>
    </tfoot>
  </table>`;
}

/** Link or "Not the same person", with the steward's required reason; posted (ids never in a URL). */
function decisionForm(item: ReviewItem, n: number, session: ConsoleSession): Html {
  const { pair } = item;
  return html`<form
    class="decision"
    method="post"
    action="/identity/decide"
    hx-post="/identity/decide"
    hx-swap="outerHTML"
  >
    ${csrfField(session)}
    <input type="hidden" name="patientId" value="${pair.patientId}" />
    <input type="hidden" name="otherPatientId" value="${pair.otherPatientId}" />
    <label for="reason-${n}">Reason</label>
    <input id="reason-${n}" name="reason" required maxlength="1000" autocomplete="off" />
    <button type="submit" name="kind" value="link">Link</button>
    <button type="submit" name="kind" value="reject">Not the same person</button>
  </form>`;
}

function pairArticle(item: ReviewItem, n: number, session: ConsoleSession, mayDecide: boolean): Html {
  const { pair } = item;
  return html`<article class="pair" data-pair="${pair.patientId}|${pair.otherPatientId}" id="pair-${n}">
    <h3>Pair ${n}: score ${pair.score === null ? 'none' : pair.score.toFixed(1)}</h3>
    <p class="muted">
      Proposed by ${pair.decidedBy} at ${pair.updatedAt}${pair.reason ? html` (${pair.reason})` : ''}.
    </p>
    <div class="side-by-side">
      ${sideBySide(item, n)}
      <div>
        ${evidenceTable(item, n)}
        <p>
          Safety rules:
          ${pair.rules.length === 0 ? html`<span class="muted">none</span>` : html`<code>${pair.rules.join(', ')}</code>`}
        </p>
      </div>
    </div>
    ${
      mayDecide
        ? decisionForm(item, n, session)
        : html`<p class="muted">
            You may look at the worklist; deciding needs the identity write permission.
          </p>`
    }
  </article>`;
}

/** The worklist: every proposed pair of active records, highest score first. */
export function worklist(
  items: readonly ReviewItem[],
  session: ConsoleSession,
  o: { mayDecide: boolean; limit: number },
): Html {
  const more = items.length >= o.limit ? html` (the first ${o.limit}; decide these to see more)` : '';
  return html`<section data-testid="review" aria-labelledby="review-heading">
    <h2 id="review-heading">Proposed pairs: ${items.length}${more}</h2>
    ${
      items.length === 0
        ? html`<p>No pair waits for review.</p>`
        : items.map((item, i) => pairArticle(item, i + 1, session, o.mayDecide))
    }
  </section>`;
}

const DONE: Record<CommandKind, string> = {
  link: 'Linked: the records are one person',
  reject: 'Not the same person: the pair will not be proposed again',
  unlink: 'Unlinked',
};

/** What became of a decision: done (with its event), refused (with the matcher's reason) or pending. */
export function decisionResult(
  r: { kind: CommandKind; commandId: string; outcome: CommandOutcome },
  pair: { patientId: string; otherPatientId: string },
): Html {
  const { outcome } = r;
  const body =
    outcome.status === 'done'
      ? html`<strong class="state-ok">${DONE[r.kind]}</strong> (event
          <code>${outcome.eventId ?? '?'}</code>).`
      : outcome.status === 'refused'
        ? html`<strong class="state-bad">Refused</strong> by the identity matcher:
            ${outcome.error ?? 'no reason given'}.`
        : html`<strong class="state-warn">Pending</strong>: the identity matcher has not applied it yet
            (command <code>${r.commandId}</code>); it is applied when the matcher runs.`;
  return html`<div
    class="decision-result"
    role="status"
    data-outcome="${outcome.status}"
    data-decided-pair="${pair.patientId}|${pair.otherPatientId}"
  >
    <p>${body}</p>
  </div>`;
}
