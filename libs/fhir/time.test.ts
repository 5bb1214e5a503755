import type { DiagnosticReport, Encounter, Observation } from '@medplum/fhirtypes';
import { beforeAll, describe, expect, it } from 'vitest';
import { contentHash, fhirTime, mapResource, type MapContext, type MapInput } from './mapping.js';
import { loadFhirDefinitions, parseResource, timesWithoutOffset } from './validate.js';

// Indexing the R4 definitions takes a while on a busy machine: once, outside the tests' clocks.
beforeAll(() => loadFhirDefinitions(), 60_000);

/**
 * FHIR R4 times: a dateTime or instant with a time of day SHALL carry a zone
 * (R4 datatypes). Without one the input is refused (400, the element named,
 * never the value); with one, the instant is kept in UTC and its offset and
 * precision recorded in meta.sourceTimes (zoned: false, the client sent it).
 */
const encounter = (start: string, end?: string): Encounter => ({
  resourceType: 'Encounter',
  status: end ? 'finished' : 'in-progress',
  class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
  subject: { reference: 'Patient/p1' },
  period: { start, ...(end ? { end } : {}) },
});

describe('FHIR input times without an offset', () => {
  it('given Encounter.period.start with a time and no zone, when validated, then 400 naming Encounter.period.start', () => {
    const r = parseResource(JSON.stringify(encounter('2026-01-15T08:00:00')), 'Encounter');
    expect(r).toMatchObject({ ok: false, status: 400, reason: 'fhir-invalid' });
    if (r.ok) return;
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]?.expression).toEqual(['Encounter.period.start']);
    expect(r.issues[0]?.diagnostics).not.toContain('2026-01-15');
  });

  it('given an instant (DiagnosticReport.issued) without zone, when validated, then 400 at that element', () => {
    const r = parseResource(
      JSON.stringify({
        resourceType: 'DiagnosticReport',
        status: 'final',
        code: { text: 'x' },
        issued: '2026-01-15T08:00:00.5',
      }),
    );
    expect(r).toMatchObject({
      ok: false,
      status: 400,
      issues: [{ expression: ['DiagnosticReport.issued'] }],
    });
  });

  it('given zoneless times inside a Bundle entry and an extension, when validated, then each is named', () => {
    const obs: Observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      effectiveDateTime: '2026-01-15T08:00:00',
      extension: [{ url: 'urn:x', valueDateTime: '2026-01-15T09:00:00' }],
    };
    const bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [{ resource: obs, request: { method: 'POST', url: 'Observation' } }],
    };
    expect(timesWithoutOffset(bundle).sort()).toEqual([
      'Bundle.entry[0].resource.effectiveDateTime',
      'Bundle.entry[0].resource.extension[0].valueDateTime',
    ]);
  });

  it('given dates without time, times with Z or an offset, and a string that only looks like a time, when validated, then accepted', () => {
    for (const start of [
      '2026',
      '2026-01',
      '2026-01-15',
      '2026-01-15T08:00:00Z',
      '2026-01-15T08:00:00-05:00',
    ]) {
      expect(parseResource(JSON.stringify(encounter(start)), 'Encounter').ok).toBe(true);
    }
    const text: Observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      valueString: '2026-01-15T08:00:00',
    };
    expect(timesWithoutOffset(text)).toEqual([]);
  });
});

describe('fhirTime', () => {
  it('given each precision, when read, then instant, precision and offset as sent', () => {
    expect(fhirTime('2026-01-15T08:00:00-05:00')).toEqual({
      instant: Date.UTC(2026, 0, 15, 13),
      precision: 'second',
      offsetMinutes: -300,
    });
    expect(fhirTime('2026-01-15T08:00:00.25+05:30')).toEqual({
      instant: Date.UTC(2026, 0, 15, 2, 30, 0, 250),
      precision: 'millisecond',
      offsetMinutes: 330,
    });
    expect(fhirTime('2026-01-15T08:00:00Z')).toMatchObject({ offsetMinutes: 0, precision: 'second' });
    expect(fhirTime('2026-01-15')).toEqual({
      instant: Date.UTC(2026, 0, 15),
      precision: 'day',
      offsetMinutes: 0,
    });
    expect(fhirTime('2026-01')).toMatchObject({ precision: 'month', instant: Date.UTC(2026, 0, 1) });
    expect(fhirTime('2026')).toMatchObject({ precision: 'year' });
    expect(fhirTime(undefined)).toBeNull();
    expect(fhirTime('yesterday')).toBeNull();
  });
});

describe('FHIR mapping records source times', () => {
  const ctx: MapContext = {
    policy: { enterpriseSystems: [], authorityAliases: {} },
    recordedAt: Date.UTC(2026, 0, 20, 12),
    source: { system: 'fhir-test', facility: null, messageId: null },
    correlationId: null,
    requestKey: null,
  };
  const input = (resource: MapInput['resource'], extra: Partial<MapInput> = {}): MapInput => ({
    resource,
    id: 'r1',
    version: 1,
    contentHash: contentHash(resource),
    previous: null,
    subjectKey: 'pat-key',
    ...extra,
  });

  it('given a finished Encounter with offsets, when mapped, then admittedAt/endedAt keep their offsets, not zoned', () => {
    const r = mapResource(input(encounter('2026-01-15T08:00:00-05:00', '2026-01-16T17:30:00-05:00')), ctx);
    if (!r.ok) throw new Error('refused');
    const [started, ended] = r.events;
    expect(started?.type).toBe('EncounterStarted');
    expect(started?.data.meta.sourceTimes).toEqual([
      { field: 'meta.occurredAt', precision: 'second', offsetMinutes: -300, zoned: false },
      { field: 'admittedAt', precision: 'second', offsetMinutes: -300, zoned: false },
    ]);
    if (started?.type === 'EncounterStarted') expect(started.data.admittedAt).toBe(Date.UTC(2026, 0, 15, 13));
    expect(ended?.data.meta.sourceTimes).toContainEqual({
      field: 'endedAt',
      precision: 'second',
      offsetMinutes: -300,
      zoned: false,
    });
  });

  it('given a DiagnosticReport with observations, when mapped, then effective, issued and each observedAt are recorded', () => {
    const report: DiagnosticReport = {
      resourceType: 'DiagnosticReport',
      status: 'final',
      code: { text: 'panel' },
      effectiveDateTime: '2026-01-15T07:00:00+01:00',
      issued: '2026-01-15T09:00:00.123+01:00',
    };
    const o: Observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'glucose' },
      effectiveDateTime: '2026-01-15T07:05:00+01:00',
    };
    const r = mapResource(input(report, { resultObservations: [o] }), ctx);
    if (!r.ok) throw new Error('refused');
    expect(r.events[0]?.data.meta.sourceTimes).toEqual([
      { field: 'meta.occurredAt', precision: 'millisecond', offsetMinutes: 60, zoned: false },
      { field: 'effectiveAt', precision: 'second', offsetMinutes: 60, zoned: false },
      { field: 'issuedAt', precision: 'millisecond', offsetMinutes: 60, zoned: false },
      { field: 'observations[0].observedAt', precision: 'second', offsetMinutes: 60, zoned: false },
    ]);
  });

  it('given an Encounter whose start is absent (ingest time stands in), when mapped, then no meta.occurredAt source time', () => {
    const { period: _absent, ...e }: Encounter = encounter('2026-01-15T08:00:00Z');
    const r = mapResource(input(e), ctx);
    if (!r.ok) throw new Error('refused');
    expect(r.events[0]?.data.meta.sourceTimes).toEqual([]);
  });
});
