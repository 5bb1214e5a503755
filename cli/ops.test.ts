import { describe, expect, it } from 'vitest';
import {
  createMetrics,
  consumerMetricsHook,
  producerMetricsHooks,
  sourceLabel,
} from '../libs/telemetry/metrics.js';
import { parseServiceUrls, serviceTargets } from '../libs/ops/services.js';
import { lastBySource, projectionState } from '../libs/ops/status.js';
import { SERVICES } from '../libs/stack/services.js';

describe('projectionState', () => {
  const now = 1_000_000;
  it('is caught-up without lag, whenever it last checkpointed', () => {
    expect(projectionState(0n, null, now, 60_000)).toBe('caught-up');
  });
  it('is behind with lag and a recent checkpoint', () => {
    expect(projectionState(5n, now - 1_000, now, 60_000)).toBe('behind');
  });
  it('is stalled with lag and no checkpoint within the window', () => {
    expect(projectionState(5n, now - 120_000, now, 60_000)).toBe('stalled');
    expect(projectionState(5n, null, now, 60_000)).toBe('stalled');
  });
});

describe('parseServiceUrls', () => {
  it('reads name=url pairs and refuses anything else with the expected form', () => {
    expect(parseServiceUrls(' portal=http://127.0.0.1:8097/ ,hl7=http://h:8092')).toEqual([
      { name: 'portal', url: 'http://127.0.0.1:8097' },
      { name: 'hl7', url: 'http://h:8092' },
    ]);
    expect(parseServiceUrls(undefined)).toEqual([]);
    expect(() => parseServiceUrls('portal')).toThrow(/name=http/);
  });
});

describe('serviceTargets', () => {
  it('regression: without HUB_SERVICE_URLS hub status probes the services hub up runs, on their local ports', () => {
    // given no HUB_SERVICE_URLS / when / then
    const targets = serviceTargets(undefined);
    expect(targets.map((t) => t.name)).toEqual(SERVICES.map((s) => s.name));
    expect(targets).toContainEqual({ name: 'patient-directory', url: 'http://127.0.0.1:8091' });
    expect(targets).toContainEqual({ name: 'api', url: 'http://127.0.0.1:8098' });
  });
  it('takes HUB_SERVICE_URLS instead when it is set', () => {
    expect(serviceTargets('portal=http://h:1')).toEqual([{ name: 'portal', url: 'http://h:1' }]);
  });
});

describe('lastBySource', () => {
  it('keeps the newest record per source', () => {
    const r = lastBySource(
      [
        { source: 'LAB', topic: 'a', timestamp: 1_000 },
        { source: 'LAB', topic: 'b', timestamp: 3_000 },
        { source: 'EHR', topic: 'a', timestamp: 2_000 },
      ],
      5_000,
    );
    expect(r).toEqual([
      { source: 'EHR', topic: 'a', lastMessageAt: new Date(2_000).toISOString(), ageSeconds: 3 },
      { source: 'LAB', topic: 'b', lastMessageAt: new Date(3_000).toISOString(), ageSeconds: 2 },
    ]);
  });
});

describe('ops metrics', () => {
  it('bounds source labels', () => {
    expect(sourceLabel('LAB MAIN/<x>')).toBe('LAB_MAIN__x_');
    expect(sourceLabel('')).toBe('unknown');
    expect(sourceLabel('x'.repeat(100))).toHaveLength(64);
  });
  it('records lag per partition, batch time and per-source last message time', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const hook = consumerMetricsHook(m);
    hook({ consumer: 'g', topic: 't', partition: 2, lag: 9, phase: 'start', seconds: 0 });
    hook({ consumer: 'g', topic: 't', partition: 2, lag: 4, phase: 'done', seconds: 0.2 });
    producerMetricsHooks(m).onSources(new Map([['EHR', 3]]), 5_000);
    producerMetricsHooks(m).onProduced('t', 0.004);
    const text = await m.registry.metrics();
    expect(text).toContain('hub_consumer_lag_records{consumer="g",topic="t",partition="2"} 4');
    expect(text).toContain('hub_consumer_batch_seconds_count{consumer="g"} 1');
    expect(text).toContain('hub_source_last_message_timestamp_seconds{source="EHR"} 5');
    expect(text).toContain('hub_source_events_total{source="EHR"} 3');
    expect(text).toContain('hub_produce_seconds_count{topic="t"} 1');
  });
});
