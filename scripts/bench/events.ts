// A realistic, made-up event mix for benchmarks: per patient a registration,
// an admission, two lab orders, a preliminary and a final five-line result
// for each and a discharge. Deterministic, so runs compare.
import {
  assertValidEvent,
  avroTypeOf,
  deterministicEventId,
  type ClinicalEvent,
  type EventType,
} from '../../libs/events/index.js';

const T0 = Date.UTC(2026, 0, 1);

/** Fills Avro defaults (optional fields) and checks the result against the contract. */
function ev(type: EventType, msg: string, at: number, data: Record<string, unknown>): ClinicalEvent {
  const meta = {
    eventId: deterministicEventId(['BENCH-EHR', 'FAC', msg, type]),
    eventType: type,
    occurredAt: at,
    recordedAt: at + 250,
    source: { system: 'BENCH-EHR', facility: 'FAC', messageId: msg },
    correlationId: msg,
  };
  const filled = avroTypeOf(type).clone({ meta, ...data }) as unknown;
  assertValidEvent(type, filled);
  return { type, data: filled } as ClinicalEvent;
}

const LABS = [
  { system: 'http://loinc.org', code: '24323-8', display: 'Comprehensive metabolic panel' },
  { system: 'http://loinc.org', code: '58410-2', display: 'CBC panel' },
];

function observations(n: number, status: string, at: number) {
  return Array.from({ length: n }, (_, i) => ({
    sequence: i + 1,
    code: { system: 'http://loinc.org', code: `2345-${i}`, display: `Analyte ${i + 1}` },
    valueType: 'NM',
    valueNumber: 4.2 + i,
    unit: 'mmol/L',
    referenceRange: '3.5-5.1',
    interpretation: i === 0 ? { system: 'HL70078', code: 'H', display: 'High' } : null,
    status,
    observedAt: at,
  }));
}

/** The events of one patient's stay, in log order. */
export function patientStay(i: number): ClinicalEvent[] {
  const patientId = `pat-bench-${i.toString(36)}`;
  const at = T0 + i * 60_000;
  const encounterId = `enc-${i}`;
  const events: ClinicalEvent[] = [
    ev('PatientRegistered', `m${i}-1`, at, {
      patientId,
      demographics: {
        identifiers: [{ system: 'urn:oid:1.2.3.4', value: `MRN${100000 + i}`, type: 'MR' }],
        names: [{ family: `Family${i}`, given: ['Given'], use: 'official' }],
        birthDate: '1970-01-01',
        administrativeGender: i % 2 ? 'female' : 'male',
      },
    }),
    ev('EncounterStarted', `m${i}-2`, at + 1000, {
      patientId,
      encounterId,
      visitNumber: { system: 'urn:oid:1.2.3.5', value: `V${i}`, type: 'VN' },
      encounterClass: {
        system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
        code: 'IMP',
        display: 'inpatient',
      },
      admittedAt: at + 1000,
      payer: 'ACME Health',
    }),
  ];
  LABS.forEach((code, k) => {
    const orderId = `ord-${i}-${k}`;
    events.push(
      ev('OrderPlaced', `m${i}-o${k}`, at + 2000, {
        patientId,
        orderId,
        placerOrderNumber: { system: 'urn:oid:1.2.3.6', value: orderId, type: 'PLAC' },
        encounterId,
        code,
        category: 'laboratory',
        priority: k === 0 ? 'stat' : 'routine',
        orderedAt: at + 2000,
      }),
    );
    for (const status of ['preliminary', 'final']) {
      events.push(
        ev('ResultReported', `m${i}-r${k}-${status}`, at + 3_600_000, {
          patientId,
          resultId: `res-${i}-${k}`,
          orderId,
          encounterId,
          code,
          category: 'laboratory',
          status,
          effectiveAt: at + 3_000_000,
          issuedAt: at + 3_600_000,
          observations: observations(5, status, at + 3_500_000),
        }),
      );
    }
  });
  events.push(
    ev('EncounterEnded', `m${i}-9`, at + 86_400_000, { patientId, encounterId, endedAt: at + 86_400_000 }),
  );
  return events;
}

/** At least `n` events, whole stays only. */
export function eventMix(n: number): ClinicalEvent[] {
  const out: ClinicalEvent[] = [];
  for (let i = 0; out.length < n; i++) out.push(...patientStay(i));
  return out;
}

/**
 * A registration of made-up patient `i` of a run `tag`: the delivery
 * benchmark's event, which every channel sends (webhook JSON, FHIR
 * notification, HL7 ADT^A04), so the channels compare on the same facts.
 */
export function registration(i: number, tag: string): ClinicalEvent {
  const at = T0 + i * 1000;
  return ev('PatientRegistered', `${tag}-${i}`, at, {
    patientId: `pat-${tag}-${i.toString(36)}`,
    demographics: {
      identifiers: [{ system: 'urn:oid:1.2.3.4', value: `MRN${100000 + i}`, type: 'MR' }],
      names: [{ family: `Family${i}`, given: ['Given'], use: 'official' }],
      birthDate: '1970-01-01',
      administrativeGender: i % 2 ? 'female' : 'male',
    },
  });
}
