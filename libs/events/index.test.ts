import { describe, expect, it } from 'vitest';
import { patientRegistered } from '../../test/support/fixtures.js';
import { HubError } from '../errors/index.js';
import {
  assertValidEvent,
  deterministicEventId,
  invalidPaths,
  EVENT_CONTRACTS,
  TOPIC_CATALOG,
} from './index.js';

describe('deterministicEventId', () => {
  it('is stable for the same source message, so a resend gets the same id', () => {
    expect(deterministicEventId(['EHR', 'FAC', '123', 'PatientRegistered'])).toBe(
      deterministicEventId(['EHR', 'FAC', '123', 'PatientRegistered']),
    );
  });
  it('differs when any part differs, and parts cannot be shifted across the separator', () => {
    const a = deterministicEventId(['EHR', 'FAC', '123', 'PatientRegistered']);
    expect(deterministicEventId(['EHR', 'FAC', '124', 'PatientRegistered'])).not.toBe(a);
    expect(deterministicEventId(['a|b', 'c'])).not.toBe(deterministicEventId(['a', 'b|c']));
  });
});

describe('event validation', () => {
  it('accepts a complete event', () => {
    const e = patientRegistered('P1', 'Alpha', 'm1');
    expect(invalidPaths(e.type, e.data)).toEqual([]);
  });
  it('reports the offending field path and never the value', () => {
    const e = patientRegistered('P1', 'Secretname', 'm1');
    const bad = {
      ...e.data,
      demographics: { ...(e.data as { demographics: object }).demographics, birthDate: 19700101 },
    };
    try {
      assertValidEvent('PatientRegistered', bad);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(HubError);
      expect((err as HubError).code).toBe('HUB_EVENT_INVALID');
      expect((err as HubError).message).toContain('demographics.birthDate');
      expect((err as HubError).message).not.toContain('Secretname');
      expect((err as HubError).message).not.toContain('19700101');
    }
  });
});

describe('catalog', () => {
  it('puts every aggregate topic on the same partition count, as co-partitioning requires', () => {
    expect(new Set(TOPIC_CATALOG.map((t) => t.partitions)).size).toBe(1);
  });
  it('maps every event type to a TopicRecordNameStrategy subject', () => {
    for (const c of Object.values(EVENT_CONTRACTS)) expect(c.subject).toBe(`${c.topic}-${c.fullName}`);
  });
});
