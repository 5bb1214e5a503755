import { describe, expect, it } from 'vitest';
import type { FlowView, PipelineView, TrafficView } from './reader.js';
import { flowBody, flowLive, formatAge, formatRate, sourcesSection } from './render.js';
import { DEFAULT_SOURCE_RULES, type SourceRow } from './sources.js';

const AT = Date.UTC(2026, 11, 6, 11, 0, 0);

function source(o: Partial<SourceRow> & { source: string }): SourceRow {
  return {
    kind: 'hl7',
    received: 30,
    perMinute: 2,
    lastMessageAt: AT - 42_000,
    ageSeconds: 42,
    rejected: 0,
    rejectedByCode: {},
    rejectedRate: 0,
    state: 'ok',
    ...o,
  };
}

function traffic(o: Partial<TrafficView> = {}): TrafficView {
  return {
    sources: [
      source({
        source: 'LAB|HOSP',
        rejected: 3,
        rejectedByCode: { AE: 2, AR: 1 },
        rejectedRate: 0.1,
        state: 'rejecting',
      }),
      source({ source: 'ADT|HOSP', received: 0, perMinute: 0, ageSeconds: 3600, state: 'silent' }),
      source({ source: 'fhir:lab-app', kind: 'fhir', received: 4, perMinute: 4 / 15 }),
    ],
    topics: [{ topic: 'hl7.raw.v1', partitions: 6, records: '900', recent: '10', perMinute: 2 }],
    skipped: '0',
    capPerTopic: 5000,
    problems: [],
    ...o,
  };
}

function pipeline(): PipelineView {
  return {
    projections: [
      {
        schema: 'analytics_v3',
        topics: ['clinical.patient.v1'],
        lag: '12',
        lastCheckpointAt: new Date(AT).toISOString(),
        state: 'behind',
      },
    ],
    consumerGroups: [{ group: 'hub.portal', topics: ['clinical.patient.v1'], partitions: 6, lag: '0' }],
    subscriptions: {
      schema: 'delivery',
      present: true,
      counts: { active: 1, error: 0, paused: 0 },
      subscriptions: [
        {
          id: 'sub-1',
          name: 'billing ADT',
          channel: 'mllp',
          health: 'active',
          delivered: 100,
          deadLetters: 0,
          lastDeliveredAt: null,
          failingSince: null,
          lastFailureReason: null,
        },
      ],
    },
    subscriptionLag: { 'sub-1': '7' },
    problems: ['projection x is stalled with lag 3'],
  };
}

function view(o: Partial<FlowView> = {}): FlowView {
  return {
    at: AT,
    rules: DEFAULT_SOURCE_RULES,
    rateWindowMs: 5 * 60_000,
    traffic: { value: traffic(), at: AT },
    pipeline: { value: pipeline(), at: AT },
    services: {
      value: [{ service: 'api', url: 'http://h:1', state: 'ready', alive: true, ready: true, failing: '' }],
      at: AT,
    },
    ...o,
  };
}

/** The `<tr …>…</tr>` whose opening tag has this attribute. */
function row(page: string, attr: string): string {
  const m = new RegExp(`<tr ${attr.replace(/[|]/g, '\\|')}>[\\s\\S]*?</tr>`).exec(page);
  if (!m) throw new Error(`no row ${attr}`);
  return m[0];
}

const field = (tr: string, name: string): string =>
  (new RegExp(`data-field="${name}">([\\s\\S]*?)</td>`).exec(tr)?.[1] ?? '')
    .replace(/<[^>]+>/g, '')
    .replace(/\s+/g, ' ')
    .trim();

describe('flow rendering', () => {
  it('gives each source a row keyed by sender with the contract fields, states in words', () => {
    // given a view with a rejecting lab, a silent ADT feed and a FHIR client / when rendered
    const page = flowLive(view()).toString();

    // then each has its row in the sources table
    expect(page).toContain('<table data-testid="sources">');
    const lab = row(page, 'data-source="LAB|HOSP"');
    expect(field(lab, 'received')).toBe('30');
    expect(field(lab, 'per-minute')).toBe('2.0');
    expect(field(lab, 'last-message')).toBe('2026-12-06 10:59:18 UTC (42 s ago)');
    expect(field(lab, 'rejected-rate')).toBe('10.0 % (AE 2, AR 1)');
    expect(field(lab, 'state')).toBe('rejecting');
    expect(field(row(page, 'data-source="ADT|HOSP"'), 'state')).toBe('silent');
    expect(row(page, 'data-source="fhir:lab-app"')).toContain('FHIR');
  });

  it('shows topics, projections, consumer groups, subscriptions with their lag, services and the problems', () => {
    const page = flowLive(view()).toString();
    expect(field(row(page, 'data-topic="hl7.raw.v1"'), 'recent')).toBe('10');
    const proj = row(page, 'data-projection="analytics_v3"');
    expect(field(proj, 'lag')).toBe('12');
    expect(field(proj, 'state')).toBe('behind');
    expect(row(page, 'data-group="hub.portal"')).toContain('hub.portal');
    expect(page).toContain('<table data-testid="subscriptions">');
    expect(field(row(page, 'data-subscription="sub-1"'), 'lag')).toBe('7');
    expect(field(row(page, 'data-service="api"'), 'state')).toBe('ready');
    expect(page).toContain('<li>projection x is stalled with lag 3</li>');
  });

  it('says when the scan was capped, and shows "Reading…" for a section not read yet', () => {
    // given a capped scan and no pipeline reading yet / when rendered
    const page = flowLive(
      view({ traffic: { value: traffic({ skipped: '1200' }), at: AT }, pipeline: null }),
    ).toString();
    // then
    expect(page).toMatch(
      /data-testid="sources-capped">[\s\S]*5000 records per topic[\s\S]*1200 older record/,
    );
    expect(page).toMatch(/<table data-testid="projections">[\s\S]*Reading…/);
  });

  it('escapes sender names (they come from MSH, i.e. from input)', () => {
    const html = sourcesSection(
      traffic({ sources: [source({ source: '<b>X|"Y"' })] }),
      DEFAULT_SOURCE_RULES,
    ).toString();
    expect(html).toContain('data-source="&lt;b&gt;X|&quot;Y&quot;"');
    expect(html).not.toContain('<b>X');
  });

  it('polls the live fragment every refreshMs with htmx', () => {
    const body = flowBody(view(), 5000).toString();
    expect(body).toMatch(/<div\s+id="flow-live"[^>]*hx-get="\/flow\/live"[^>]*hx-trigger="every 5000ms"/);
  });

  it('formats rates and ages for reading at a glance', () => {
    expect([formatRate(0.26), formatRate(12.4)]).toEqual(['0.3', '12']);
    expect([formatAge(42), formatAge(600), formatAge(7200 * 3)]).toEqual([
      '42 s ago',
      '10 min ago',
      '6 h ago',
    ]);
  });
});
