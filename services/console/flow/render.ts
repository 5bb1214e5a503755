/**
 * The flow page's markup, from a FlowView: pure, so each table is tested
 * without Kafka. Names of senders, topics, schemas and subscriptions and
 * counts only: never a message's content. States are words (with a class
 * for colour), never colour alone.
 */
import type { ServiceStatus } from '../../../libs/ops/services.js';
import type { GroupStatus, ProjectionStatus } from '../../../libs/ops/status.js';
import type { SubscriptionsStatus } from '../../../libs/ops/subscriptions.js';
import { html, type Html } from '../html.js';
import type { FlowView, PipelineView, TopicRate, TrafficView } from './reader.js';
import type { SourceRow, SourceRules } from './sources.js';

/** The live region's URL (GET, no parameters: nothing identifying in it). */
export const FLOW_LIVE_PATH = '/flow/live';

const STATE_CLASS: Record<string, string> = {
  ok: 'state-ok',
  'caught-up': 'state-ok',
  active: 'state-ok',
  ready: 'state-ok',
  behind: 'state-warn',
  rejecting: 'state-warn',
  paused: 'state-warn',
  'not ready': 'state-warn',
  silent: 'state-bad',
  stalled: 'state-bad',
  'missing-topic': 'state-bad',
  error: 'state-bad',
  'not running': 'state-bad',
};

function state(s: string): Html {
  return html`<span class="${STATE_CLASS[s] ?? 'state-warn'}">${s}</span>`;
}

/** A rate to one decimal below 10, whole above. Pure. */
export function formatRate(n: number): string {
  return n < 10 ? n.toFixed(1) : String(Math.round(n));
}

/** "42 s ago", "7 min ago", "3 h ago". Pure. */
export function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 120 * 60) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function time(ms: number): Html {
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.replace('T', ' ').slice(0, 19)} UTC</time>`;
}

const minutes = (ms: number): number => Math.round(ms / 60_000);

interface Column {
  label: string;
  num?: boolean;
}

/**
 * A section's table: caption, column headers, and its rows, or a line
 * saying it is still being read (null) or has nothing to show. Pure.
 */
function dataTable(o: {
  testid: string;
  caption: string;
  columns: readonly Column[];
  rows: readonly Html[] | null;
  empty: string;
}): Html {
  const line = (text: string) =>
    html`<tr>
      <td colspan="${o.columns.length}" class="muted">${text}</td>
    </tr>`;
  return html`<table data-testid="${o.testid}">
    <caption>
      ${o.caption}
    </caption>
    <thead>
      <tr>
        ${o.columns.map((c) => html`<th scope="col" ${c.num ? html`class="num"` : ''}>${c.label}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${!o.rows ? line('Reading…') : o.rows.length === 0 ? line(o.empty) : o.rows}
    </tbody>
  </table>`;
}

/** A section with its heading. */
function section(id: string, title: string, body: Html): Html {
  return html`<section aria-labelledby="${id}">
    <h2 id="${id}">${title}</h2>
    ${body}
  </section>`;
}

function sourceRow(r: SourceRow): Html {
  const codes = Object.entries(r.rejectedByCode)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  return html`<tr data-source="${r.source}">
    <th scope="row">${r.source}</th>
    <td>${r.kind === 'hl7' ? 'HL7 v2' : 'FHIR'}</td>
    <td class="num" data-field="received">${r.received}</td>
    <td class="num" data-field="per-minute">${formatRate(r.perMinute)}</td>
    <td data-field="last-message">
      ${time(r.lastMessageAt)} <span class="muted">(${formatAge(r.ageSeconds)})</span>
    </td>
    <td class="num" data-field="rejected-rate">
      ${(r.rejectedRate * 100).toFixed(1)} %${codes ? html` <span class="muted">(${codes})</span>` : ''}
    </td>
    <td data-field="state">${state(r.state)}</td>
  </tr>`;
}

/** The sources table with its explanation (window, thresholds, a capped scan). Pure. */
export function sourcesSection(t: TrafficView | null, rules: SourceRules): Html {
  const win = minutes(rules.windowMs);
  const capped = t && t.skipped !== '0';
  return section(
    'flow-sources',
    'Sources',
    html`<p>
        HL7 senders (MSH-3|MSH-4; accepted on the raw topic, refused on the HL7 dead-letter topic) and FHIR
        clients (their source system). Received and AE/AR rate over the last ${win} min; silent: no message
        for more than ${minutes(rules.silentAfterMs)} min (the floor of the HubSourceSilent alert); rejecting:
        more than ${(rules.rejectingRate * 100).toFixed(0)} % refused (HubHl7ErrorAckRate).
      </p>
      ${
        capped
          ? html`<p class="state-warn" data-testid="sources-capped">
              Scan capped at ${t.capPerTopic} records per topic and read: ${t.skipped} older record(s) were
              not read, so counts and last-message times may be low.
            </p>`
          : ''
      }
      ${dataTable({
        testid: 'sources',
        caption: `Messages per source, last ${win} min`,
        columns: [
          { label: 'Source' },
          { label: 'Kind' },
          { label: `Received (${win} min)`, num: true },
          { label: 'Per minute', num: true },
          { label: 'Last message' },
          { label: 'AE/AR rate', num: true },
          { label: 'State' },
        ],
        rows: t ? t.sources.map(sourceRow) : null,
        empty: 'No messages in the last hours.',
      })}`,
  );
}

/** Each topic's rate. Pure. */
export function topicsSection(topics: readonly TopicRate[] | null, rateWindowMs: number): Html {
  const win = minutes(rateWindowMs);
  const row = (t: TopicRate) =>
    html`<tr data-topic="${t.topic}">
      <th scope="row">${t.topic}</th>
      <td class="num">${t.partitions}</td>
      <td class="num" data-field="recent">${t.recent}</td>
      <td class="num" data-field="per-minute">${formatRate(t.perMinute)}</td>
      <td class="num">${t.records}</td>
    </tr>`;
  return section(
    'flow-topics',
    'Topics',
    dataTable({
      testid: 'topics',
      caption: `Records written per topic (from offsets now and ${win} min ago)`,
      columns: [
        { label: 'Topic' },
        { label: 'Partitions', num: true },
        { label: `Last ${win} min`, num: true },
        { label: 'Per minute', num: true },
        { label: 'Records kept', num: true },
      ],
      rows: topics ? topics.map(row) : null,
      empty: 'No catalog topic exists yet.',
    }),
  );
}

function projectionRow(p: ProjectionStatus): Html {
  return html`<tr data-projection="${p.schema}">
    <th scope="row">${p.schema}</th>
    <td data-field="state">${state(p.state)}</td>
    <td class="num" data-field="lag">${p.lag}</td>
    <td>
      ${p.lastCheckpointAt ? time(Date.parse(p.lastCheckpointAt)) : html`<span class="muted">never</span>`}
    </td>
    <td>${p.topics.join(', ')}</td>
  </tr>`;
}

function groupRow(g: GroupStatus): Html {
  return html`<tr data-group="${g.group}">
    <th scope="row">${g.group}</th>
    <td class="num" data-field="lag">${g.lag}</td>
    <td class="num">${g.partitions}</td>
    <td>${g.topics.join(', ')}</td>
  </tr>`;
}

/** Projections (Postgres checkpoints) and consumer groups (committed offsets), as `hub status` reads them. Pure. */
export function projectionsSection(p: PipelineView | null): Html {
  return section(
    'flow-projections',
    'Projections',
    html`${dataTable({
        testid: 'projections',
        caption: "Read models: their checkpoints against the topics' end offsets",
        columns: [
          { label: 'Schema' },
          { label: 'State' },
          { label: 'Lag (records)', num: true },
          { label: 'Last checkpoint' },
          { label: 'Topics' },
        ],
        rows: p ? p.projections.map(projectionRow) : null,
        empty: 'No projection has checkpointed yet.',
      })}
      <h3>Consumer groups</h3>
      ${dataTable({
        testid: 'consumer-groups',
        caption: "Consumer groups: committed offsets against the topics' end offsets",
        columns: [
          { label: 'Group' },
          { label: 'Lag (records)', num: true },
          { label: 'Partitions', num: true },
          { label: 'Topics' },
        ],
        rows: p ? p.consumerGroups.map(groupRow) : null,
        empty: 'No consumer group has committed offsets.',
      })}`,
  );
}

function subscriptionRows(s: SubscriptionsStatus, lag: Readonly<Record<string, string>>): Html[] {
  return s.subscriptions.map(
    (r) =>
      html`<tr data-subscription="${r.id}">
        <th scope="row">${r.name}</th>
        <td>${r.channel}</td>
        <td data-field="state">${state(r.health)}</td>
        <td class="num" data-field="lag">${lag[r.id] ?? '–'}</td>
        <td class="num">${r.delivered}</td>
        <td class="num">${r.deadLetters}</td>
        <td>
          ${r.lastDeliveredAt ? time(Date.parse(r.lastDeliveredAt)) : html`<span class="muted">never</span>`}
        </td>
        <td>${r.failingSince ? `${r.lastFailureReason ?? 'unknown'} since ${r.failingSince}` : ''}</td>
      </tr>`,
  );
}

/** Outbound subscriptions (libs/ops/subscriptions.ts) with their lag. Pure. */
export function subscriptionsSection(p: PipelineView | null): Html {
  const s = p?.subscriptions ?? null;
  return section(
    'flow-subscriptions',
    'Subscriptions',
    dataTable({
      testid: 'subscriptions',
      caption: 'Outbound subscriptions: health, records not yet delivered, dead letters',
      columns: [
        { label: 'Subscription' },
        { label: 'Channel' },
        { label: 'State' },
        { label: 'Lag (records)', num: true },
        { label: 'Delivered', num: true },
        { label: 'Dead letters', num: true },
        { label: 'Last delivered' },
        { label: 'Failing' },
      ],
      rows: p ? (s ? subscriptionRows(s, p.subscriptionLag) : []) : null,
      empty: p && !s ? 'Not read: Postgres unreachable.' : 'No subscriptions.',
    }),
  );
}

/** The services' readiness. Pure. */
export function servicesSection(services: readonly ServiceStatus[] | null): Html {
  const row = (s: ServiceStatus) =>
    html`<tr data-service="${s.service}">
      <th scope="row">${s.service}</th>
      <td data-field="state">${state(s.state)}</td>
      <td>${s.failing}</td>
    </tr>`;
  return section(
    'flow-services',
    'Services',
    dataTable({
      testid: 'services',
      caption: "Each service's /ready",
      columns: [{ label: 'Service' }, { label: 'State' }, { label: 'Failing checks' }],
      rows: services ? services.map(row) : null,
      empty: 'No service to probe.',
    }),
  );
}

/** Everything the live region holds. Pure. */
export function flowLive(v: FlowView): Html {
  const problems = [...(v.traffic?.value.problems ?? []), ...(v.pipeline?.value.problems ?? [])];
  return html`<p class="muted">Read at ${time(v.at)}.</p>
    ${
      problems.length > 0
        ? html`<ul class="flow-problems" data-testid="problems">
            ${problems.map((p) => html`<li>${p}</li>`)}
          </ul>`
        : ''
    }
    ${sourcesSection(v.traffic?.value ?? null, v.rules)}
    ${topicsSection(v.traffic?.value.topics ?? null, v.rateWindowMs)}
    ${projectionsSection(v.pipeline?.value ?? null)} ${subscriptionsSection(v.pipeline?.value ?? null)}
    ${servicesSection(v.services?.value ?? null)}`;
}

/** The page body: the live region, polling every refreshMs (htmx), first filled on the server. Pure. */
export function flowBody(v: FlowView, refreshMs: number): Html {
  return html`<p>Refreshes every ${Math.round(refreshMs / 1000)} s.</p>
    <div
      id="flow-live"
      data-testid="flow-live"
      hx-get="${FLOW_LIVE_PATH}"
      hx-trigger="every ${refreshMs}ms"
      hx-swap="innerHTML"
    >
      ${flowLive(v)}
    </div>`;
}
