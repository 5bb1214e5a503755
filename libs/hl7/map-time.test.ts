import { describe, expect, it } from 'vitest';
import { invalidPaths, type ClinicalEvent, type EventType, type EventTypeMap } from '../events/index.js';
import { DEFAULT_IDENTITY_POLICY } from '../identity/index.js';
import { mapHl7Message } from './map.js';
import type { MapContext } from './types.js';

/**
 * HL7 v2 times without an offset are the sender's local time (v2 chapter 2,
 * DTM): the mapper reads them in MapContext.timeZone, keeps instants in UTC
 * and records in meta.sourceTimes how each was sent (precision, offset,
 * whether the offset came from the zone).
 */
const NY = 'America/New_York';
const ctx = (timeZone: string): MapContext => ({
  recordedAt: Date.UTC(2026, 0, 20),
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: null,
  timeZone,
});

const PID = 'PID|1||MRN55501^^^MERCY^MR||Zonetest^Ada||19700101|F';

function map(segments: string[], timeZone: string): ClinicalEvent[] {
  const out = mapHl7Message(Buffer.from(segments.join('\r') + '\r', 'latin1'), ctx(timeZone));
  if (out.kind !== 'mapped')
    throw new Error(`refused: ${out.refusal.hl7ErrorCode} ${out.refusal.error.message}`);
  for (const e of out.events) expect(invalidPaths(e.type, e.data)).toEqual([]);
  return out.events;
}

function only<K extends EventType>(events: ClinicalEvent[], type: K): EventTypeMap[K] {
  const hits = events.filter((e) => e.type === type);
  expect(hits).toHaveLength(1);
  return hits[0]!.data as EventTypeMap[K];
}

/** PV1 with the given fields set (1-based), the rest empty. */
function pv1(fields: Record<number, string>): string {
  const last = Math.max(...Object.keys(fields).map(Number));
  const out = ['PV1'];
  for (let i = 1; i <= last; i++) out.push(fields[i] ?? '');
  return out.join('|');
}
const VISIT = { 1: '1', 2: 'I', 3: 'WARD1^101^A^MERCY', 10: 'MED', 19: 'V9001^^^MERCY^VN' };

const admit = (pv1_44: string, msh7 = '20260115081500', extra: Record<number, string> = {}) => [
  `MSH|^~\\&|EHR|MERCY|HUB|HUB|${msh7}||ADT^A01^ADT_A01|TZ0001|P|2.5.1`,
  `EVN|A01|${msh7}`,
  PID,
  pv1({ ...VISIT, 44: pv1_44, ...extra }),
];

describe('HL7 times in the sender zone', () => {
  it('given an A01 with PV1-44 08:00 without offset from a sender in New York in January, when mapped, then admittedAt is 13:00Z and sourceTimes keep minute precision and -05:00 from the zone', () => {
    const enc = only(map(admit('202601150800'), NY), 'EncounterStarted');
    expect(enc.admittedAt).toBe(Date.UTC(2026, 0, 15, 13, 0));
    expect(enc.meta.occurredAt).toBe(Date.UTC(2026, 0, 15, 13, 0));
    expect(enc.meta.sourceTimes).toContainEqual({
      field: 'admittedAt',
      precision: 'minute',
      offsetMinutes: -300,
      zoned: true,
    });
    expect(enc.meta.sourceTimes).toContainEqual({
      field: 'meta.occurredAt',
      precision: 'minute',
      offsetMinutes: -300,
      zoned: true,
    });
  });

  it('given the same message from a sender in UTC, when mapped, then the same wall time is 08:00Z', () => {
    const enc = only(map(admit('202601150800'), 'UTC'), 'EncounterStarted');
    expect(enc.admittedAt).toBe(Date.UTC(2026, 0, 15, 8, 0));
    expect(enc.meta.sourceTimes).toContainEqual({
      field: 'admittedAt',
      precision: 'minute',
      offsetMinutes: 0,
      zoned: true,
    });
  });

  it('given PV1-44 with an explicit offset, when mapped, then the offset is used whatever the zone and is not zoned', () => {
    const enc = only(map(admit('202601150800-0600'), NY), 'EncounterStarted');
    expect(enc.admittedAt).toBe(Date.UTC(2026, 0, 15, 14, 0));
    expect(enc.meta.sourceTimes).toContainEqual({
      field: 'admittedAt',
      precision: 'minute',
      offsetMinutes: -360,
      zoned: false,
    });
  });

  it('given an A01 in July from New York, when mapped, then daylight time (-04:00) applies', () => {
    const enc = only(map(admit('20260715080000', '20260715081500'), NY), 'EncounterStarted');
    expect(enc.admittedAt).toBe(Date.UTC(2026, 6, 15, 12, 0));
    expect(enc.meta.sourceTimes).toContainEqual({
      field: 'admittedAt',
      precision: 'second',
      offsetMinutes: -240,
      zoned: true,
    });
  });

  it('given the PatientRegistered of the A01, when mapped, then its occurredAt (EVN-2 / MSH-7) is zoned too', () => {
    const reg = only(map(admit('202601150800'), NY), 'PatientRegistered');
    expect(reg.meta.occurredAt).toBe(Date.UTC(2026, 0, 15, 13, 15));
    expect(reg.meta.sourceTimes).toEqual([
      { field: 'meta.occurredAt', precision: 'second', offsetMinutes: -300, zoned: true },
    ]);
  });

  it('given an A03 with PV1-45, when mapped, then endedAt is zoned and recorded', () => {
    const msg = admit('202601150800', '20260116170000', { 45: '202601161630' });
    msg[0] = msg[0]!.replace('ADT^A01^ADT_A01', 'ADT^A03^ADT_A03');
    msg[1] = 'EVN|A03|20260116170000';
    const ended = only(map(msg, NY), 'EncounterEnded');
    expect(ended.endedAt).toBe(Date.UTC(2026, 0, 16, 21, 30));
    expect(ended.meta.sourceTimes).toContainEqual({
      field: 'endedAt',
      precision: 'minute',
      offsetMinutes: -300,
      zoned: true,
    });
  });

  it('given an ORM with ORC-9 and an ORU with OBR-7, OBR-22 and OBX-14, when mapped, then every instant field has its source time', () => {
    const order = only(
      map(
        [
          'MSH|^~\\&|CPOE|MERCY|HUB|HUB|20260115090000||ORM^O01^ORM_O01|TZ0002|P|2.3',
          PID,
          pv1(VISIT),
          'ORC|NW|PO9001^CPOE|||SC||||202601150855',
          'OBR|1|PO9001^CPOE||24323-8^Comprehensive metabolic panel^LN',
        ],
        NY,
      ),
      'OrderPlaced',
    );
    expect(order.orderedAt).toBe(Date.UTC(2026, 0, 15, 13, 55));
    expect(order.meta.sourceTimes.map((t) => t.field).sort()).toEqual(['meta.occurredAt', 'orderedAt']);

    const result = only(
      map(
        [
          'MSH|^~\\&|LIS|MERCY|HUB|HUB|20260115120000||ORU^R01^ORU_R01|TZ0003|P|2.5.1',
          PID,
          pv1(VISIT),
          'ORC|RE|PO9001^CPOE|F9001^LIS',
          'OBR|1|PO9001^CPOE|F9001^LIS|24323-8^Comprehensive metabolic panel^LN|||2026011510|||||||||||||||20260115115930.25+0100||CH|F',
          'OBX|1|NM|2345-7^Glucose^LN||99|mg/dL|70-99||||F|||20260115103000',
          'OBX|2|NM|2160-0^Creatinine^LN||0.9|mg/dL|0.6-1.3||||F',
        ],
        NY,
      ),
      'ResultReported',
    );
    expect(result.effectiveAt).toBe(Date.UTC(2026, 0, 15, 15, 0));
    expect(result.issuedAt).toBe(Date.UTC(2026, 0, 15, 10, 59, 30, 250));
    expect(result.observations[0]?.observedAt).toBe(Date.UTC(2026, 0, 15, 15, 30));
    expect(result.meta.occurredAt).toBe(result.issuedAt);
    expect(result.meta.sourceTimes).toEqual([
      { field: 'meta.occurredAt', precision: 'millisecond', offsetMinutes: 60, zoned: false },
      { field: 'effectiveAt', precision: 'hour', offsetMinutes: -300, zoned: true },
      { field: 'issuedAt', precision: 'millisecond', offsetMinutes: 60, zoned: false },
      { field: 'observations[0].observedAt', precision: 'second', offsetMinutes: -300, zoned: true },
    ]);
  });

  it('given a local time in the New York spring gap, when mapped, then it moves forward by the gap', () => {
    const enc = only(map(admit('202603080230', '20260308031500'), NY), 'EncounterStarted');
    expect(enc.admittedAt).toBe(Date.UTC(2026, 2, 8, 7, 30));
  });

  it('given a malformed PV1-44 (Feb 30), when mapped, then AE 102 at PV1-44', () => {
    const out = mapHl7Message(Buffer.from(admit('202602300800').join('\r'), 'latin1'), ctx(NY));
    if (out.kind !== 'refused') throw new Error('expected a refusal');
    expect(out.refusal).toMatchObject({
      ack: 'AE',
      hl7ErrorCode: '102',
      location: { segment: 'PV1', field: 44 },
    });
  });
});
