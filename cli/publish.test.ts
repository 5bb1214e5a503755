import { describe, expect, it } from 'vitest';
import { HubError } from '../libs/errors/index.js';
import { completeEvent } from './publish.js';

describe('hub publish: completeEvent', () => {
  const input = {
    type: 'PatientRegistered',
    data: {
      meta: { occurredAt: 1, source: { system: 'S', messageId: 'M1' } },
      patientId: 'P1',
      demographics: { identifiers: [] },
    },
  };
  it('fills recordedAt, eventType, Avro defaults and a deterministic eventId', () => {
    const a = completeEvent(input, 1, 42);
    const b = completeEvent(input, 1, 43);
    expect(a.data.meta).toMatchObject({
      eventType: 'PatientRegistered',
      recordedAt: 42,
      correlationId: null,
    });
    expect(a.data.meta.eventId).toBe(b.data.meta.eventId);
  });
  it('refuses an event that could not be de-duplicated on resend', () => {
    const noId = { ...input, data: { ...input.data, meta: { occurredAt: 1, source: { system: 'S' } } } };
    expect(() => completeEvent(noId, 3, 0)).toThrow(/item 3: give meta.eventId/);
  });
  it('refuses unknown types with the item number', () => {
    expect(() => completeEvent({ type: 'PatientDanced', data: {} }, 2, 0)).toThrow(HubError);
  });
});
