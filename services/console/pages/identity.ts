import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { HubError, httpStatusOf } from '../../../libs/errors/index.js';
import type { CommandKind } from '../../../libs/identity/store.js';
import { auditAccess, sendHtml, sessionOf, type ConsoleContext, type PageOptions } from '../context.js';
import { html } from '../html.js';
import { stewardStoreOf, type StewardStore } from '../identity/store.js';
import { decisionResult, worklist } from '../identity/view.js';
import { page } from '../layout.js';
import { mayDecideIdentity } from '../session.js';

/**
 * Identity review (issue 21's steward worklist, issue 22's console): the
 * proposed pairs side by side, and link / not the same person with a reason.
 * Audited like the API's identity routes: every record shown or decided on
 * is an AuditEvent of its own, acknowledged before the page is sent. Patient
 * ids travel only in POST bodies; they are opaque enterprise ids anyway.
 */

/** How many pairs one page shows (the API's default `_count`). */
const REVIEW_LIMIT = 50;
/** How long a decision waits for the matcher before answering "pending" (the API's `awaitMs`). */
const DECISION_WAIT_MS = 10_000;
const ID_MAX = 128;
const REASON_MAX = 1000;

interface Decision {
  kind: Extract<CommandKind, 'link' | 'reject'>;
  patientId: string;
  otherPatientId: string;
  reason: string;
}

const text = (v: unknown, max: number): string | null =>
  typeof v === 'string' && v.trim() !== '' && v.length <= max ? v.trim() : null;

/** The form's decision, checked; an error names the field, never a value. */
function decisionOf(body: unknown): Decision {
  const b = (body ?? {}) as Record<string, unknown>;
  const kind = b.kind === 'link' || b.kind === 'reject' ? b.kind : null;
  if (!kind) throw new HubError('HUB_INPUT_INVALID', 'kind: link or reject');
  const patientId = text(b.patientId, ID_MAX);
  const otherPatientId = text(b.otherPatientId, ID_MAX);
  if (!patientId || !otherPatientId || patientId === otherPatientId)
    throw new HubError('HUB_INPUT_INVALID', 'patientId, otherPatientId: two different enterprise ids');
  const reason = text(b.reason, REASON_MAX);
  if (!reason)
    throw new HubError('HUB_INPUT_INVALID', `reason: required, the steward's why (${REASON_MAX} at most)`);
  return { kind, patientId, otherPatientId, reason };
}

async function showWorklist(
  ctx: ConsoleContext,
  store: StewardStore,
  req: FastifyRequest,
  reply: FastifyReply,
) {
  const session = sessionOf(req);
  const items = await store.review(REVIEW_LIMIT);
  if (!items) {
    const body = html`<p data-testid="review-absent">
      The master patient index has no tables yet: the identity-matcher has not started on this schema.
    </p>`;
    return sendHtml(reply, page({ title: 'Identity review', session, active: '/identity', body }));
  }
  // Each record shown is an access to that patient's data: one event per patient, before the page leaves.
  const shown = [...new Set(items.flatMap((i) => [i.pair.patientId, i.pair.otherPatientId]))];
  await auditAccess(ctx, req, {
    route: 'GET /identity',
    interaction: 'search-type',
    resourceType: 'Patient',
    patientIds: shown,
  });
  const body = worklist(items, session, {
    mayDecide: mayDecideIdentity(session.principal),
    limit: REVIEW_LIMIT,
  });
  return sendHtml(reply, page({ title: 'Identity review', session, active: '/identity', body }));
}

async function decide(ctx: ConsoleContext, store: StewardStore, req: FastifyRequest, reply: FastifyReply) {
  const session = sessionOf(req);
  if (!mayDecideIdentity(session.principal))
    throw new HubError('HUB_FORBIDDEN', 'deciding needs the identity write permission');
  const d = decisionOf(req.body);
  const request = {
    kind: d.kind,
    patientId: d.patientId,
    otherPatientId: d.otherPatientId,
    decidedBy: session.principal.subject,
    reason: d.reason,
  };
  const { commandId, outcome } = await store.decide(request, DECISION_WAIT_MS).catch(async (err: unknown) => {
    // A refused attempt (an unknown record, the database down) is on the trail too, as the API's are.
    await auditAccess(ctx, req, {
      route: 'POST /identity/decide',
      interaction: 'create',
      resourceType: 'Patient',
      patientIds: [d.patientId, d.otherPatientId],
      status: httpStatusOf(err),
      reason: d.reason,
    });
    throw err;
  });
  // Both records' person changes (or is confirmed apart): each patient an event, with the steward's reason.
  await auditAccess(ctx, req, {
    route: 'POST /identity/decide',
    interaction: 'create',
    resourceType: 'Patient',
    patientIds: [d.patientId, d.otherPatientId],
    status: outcome.status === 'done' ? 201 : outcome.status === 'refused' ? 409 : 202,
    reason: d.reason,
  });
  const result = decisionResult({ kind: d.kind, commandId, outcome }, d);
  if (req.headers['hx-request']) return sendHtml(reply, result);
  const body = html`${result}
    <p><a href="/identity">Back to the worklist</a></p>`;
  return sendHtml(reply, page({ title: 'Identity decision', session, active: '/identity', body }));
}

/** The page over a given store (tests hand a fake one). */
export function identityPageWith(
  storeOf: (ctx: ConsoleContext) => StewardStore,
): FastifyPluginAsync<PageOptions> {
  return (app, { ctx }) => {
    const store = storeOf(ctx);
    app.get('/', (req, reply) => showWorklist(ctx, store, req, reply));
    app.post('/decide', (req, reply) => decide(ctx, store, req, reply));
    return Promise.resolve();
  };
}

export const identityPage = identityPageWith(stewardStoreOf);
