import { Hl7Message } from '@medplum/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type {
  Address,
  ClinicalEvent,
  Code,
  ContactPoint,
  Demographics,
  EventTypeMap,
  HumanName,
  Identifier,
  ObservationValue,
  ResultReported,
} from '../events/index.js';
import { DEFAULT_IDENTITY_POLICY, enterprisePatientId } from '../identity/index.js';
import { LOINC, SNOMED_CT, UCUM, V2_TABLE } from '../terminology/code-systems.js';
import { adtA01, ormO01, oruR01 } from '../../test/support/hl7-fixtures.js';
import { meta } from '../../test/support/fixtures.js';
import { decodeEscapes, decodeHl7Bytes } from './decode.js';
import { mapHl7Message } from './map.js';
import { controlIdFor, hasMessage, messageTypeOf, toHl7v2, type OutboundOptions } from './outbound.js';
import { resultIdFor } from './scope.js';

const CTX = {
  recordedAt: Date.UTC(2026, 0, 2),
  policy: DEFAULT_IDENTITY_POLICY,
  rawMessageRef: null,
  timeZone: 'UTC',
};
const OPTS: OutboundOptions = {
  version: '2.5.1',
  sendingApplication: 'HUB',
  sendingFacility: 'HUBFAC',
  receivingApplication: 'BILLING',
  now: Date.UTC(2026, 0, 2, 3, 4, 5),
  controlId: 'ctl-1',
};
const HUB_ID = (patientId: string): Identifier => ({
  system: 'urn:hl7:authority:HUB',
  value: patientId,
  type: 'PI',
});

function inbound(text: string): ClinicalEvent[] {
  const out = mapHl7Message(Buffer.from(text, 'utf8'), CTX);
  if (out.kind !== 'mapped') throw new Error(`refused: ${out.refusal.error.message}`);
  return out.events;
}
function only<T extends ClinicalEvent['type']>(
  events: ClinicalEvent[],
  type: T,
): Extract<ClinicalEvent, { type: T }> {
  const e = events.find((x) => x.type === type);
  if (!e) throw new Error(`no ${type}`);
  return e as Extract<ClinicalEvent, { type: T }>;
}
const sorted = (l: readonly string[]) => [...l].sort();

// Text with every delimiter, the escape character, quotes and non-ASCII, trimmed (the reader trims) and never the HL7 null.
const CHARS = ['a', 'Z', '1', ' ', '|', '^', '~', '\\', '&', 'é', 'ß', '"', '#', '/', 'F', 'X', '.'];
const text = fc
  .array(fc.constantFrom(...CHARS), { minLength: 1, maxLength: 12 })
  .map((cs) => cs.join('').trim())
  .filter((s) => s !== '' && s !== '""');
const word = fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,7}$/);
const idValue = fc.stringMatching(/^[A-Z0-9][A-Z0-9-]{0,9}$/);
const system = fc.constantFrom(
  LOINC,
  SNOMED_CT,
  V2_TABLE('0078'),
  'urn:hl7:codesystem:99LOC',
  'urn:oid:1.2.3.4',
);
const code: fc.Arbitrary<Code> = fc.record({
  system,
  code: idValue,
  display: fc.option(text, { nil: null }),
  version: fc.option(word, { nil: null }),
  alternates: fc.array(
    fc.record({ system, code: idValue, display: fc.option(text, { nil: null }), version: fc.constant(null) }),
    { maxLength: 1 },
  ),
  text: fc.option(text, { nil: null }),
});
const name: fc.Arbitrary<HumanName> = fc.record({
  family: text,
  given: fc.array(word, { minLength: 1, maxLength: 3 }),
  prefix: fc.option(text, { nil: null }),
  suffix: fc.option(text, { nil: null }),
  use: fc.constantFrom('official', 'usual', 'maiden', 'nickname', 'anonymous', 'old', null),
});
const address: fc.Arbitrary<Address> = fc
  .record({
    lines: fc.array(text, { minLength: 1, maxLength: 2 }),
    city: fc.option(text, { nil: null }),
    state: fc.option(text, { nil: null }),
    postalCode: fc.option(idValue, { nil: null }),
    country: fc.option(word, { nil: null }),
    useType: fc.constantFrom<[string | null, string | null]>(
      ['home', null],
      ['work', null],
      ['temp', null],
      ['old', null],
      ['billing', null],
      [null, 'postal'],
      [null, null],
    ),
  })
  .map(({ useType: [use, type], ...a }) => ({ ...a, use, type }));
const phone = (part: 'home' | 'work'): fc.Arbitrary<ContactPoint> =>
  fc.oneof(
    fc.record({
      system: fc.constant('phone'),
      value: fc.stringMatching(/^[0-9]{3,10}$/),
      use: fc.constant(part),
      part: fc.constant(part),
    }),
    fc.record({
      system: fc.constant('phone'),
      value: fc.stringMatching(/^[0-9]{3,10}$/),
      use: fc.constant(part === 'home' ? 'mobile' : 'work'),
      part: fc.constant(part),
    }),
    fc.record({
      system: fc.constant('email'),
      value: fc.stringMatching(/^[a-z]{1,6}@[a-z]{1,6}\.org$/),
      use: fc.constant(null),
      part: fc.constant(part),
    }),
  );

type Sent<T> = { kind: 'value'; value: T } | { kind: 'notSent' } | { kind: 'cleared' };
const sent = <T>(value: fc.Arbitrary<T>): fc.Arbitrary<Sent<T>> =>
  fc.oneof(
    value.map((v) => ({ kind: 'value' as const, value: v })),
    fc.constant({ kind: 'notSent' as const }),
    fc.constant({ kind: 'cleared' as const }),
  );

/** HL7-shaped demographics: every field sent with a value, not sent, or cleared. */
const demographics: fc.Arbitrary<Demographics> = fc
  .record({
    identifiers: fc
      .tuple(idValue, fc.option(idValue, { nil: null }))
      .map(([mrn, other]): Identifier[] => [
        { system: 'urn:hl7:authority:HOSP', value: mrn, type: 'MR' },
        ...(other ? [{ system: 'urn:oid:2.16.840.1.113883.3.1', value: other, type: null }] : []),
      ]),
    names: sent(fc.array(name, { minLength: 1, maxLength: 2 })),
    birthDate: sent(fc.constantFrom('1980', '1980-02', '1980-02-15', '2001-12-31')),
    administrativeGender: sent(fc.constantFrom('male', 'female', 'other', 'unknown')),
    addresses: sent(fc.array(address, { minLength: 1, maxLength: 2 })),
    'telecom.home': sent(fc.array(phone('home'), { minLength: 1, maxLength: 2 })),
    'telecom.work': sent(fc.array(phone('work'), { minLength: 1, maxLength: 1 })),
    language: sent(code),
    maritalStatus: sent(code),
    religion: sent(code),
    race: sent(fc.array(code, { minLength: 1, maxLength: 2 })),
    ethnicity: sent(fc.array(code, { minLength: 1, maxLength: 1 })),
    primaryCareProvider: sent(
      fc.record({
        id: fc.record({
          system: fc.constant('urn:hl7:authority:NPI'),
          value: idValue,
          type: fc.constant(null),
        }),
        name: fc.record({
          family: text,
          given: fc.array(word, { minLength: 1, maxLength: 2 }),
          prefix: fc.constant(null),
          suffix: fc.constant(null),
          use: fc.constant(null),
        }),
        telecom: fc.constant<ContactPoint[]>([]),
      }),
    ),
    contacts: sent(
      fc.array(
        fc.record({
          relationships: fc
            .tuple(idValue, fc.option(text, { nil: null }))
            .map(([c, d]): Code[] => [
              { system: V2_TABLE('0063'), code: c, display: d, version: null, alternates: [], text: null },
            ]),
          name: name.map((n) => ({ ...n, use: null })),
          telecom: fc.constant<ContactPoint[]>([]),
          address: fc.constant(null),
          organization: fc.constant(null),
          periodStart: fc.constant(null),
          periodEnd: fc.constant(null),
        }),
        { minLength: 1, maxLength: 2 },
      ),
    ),
  })
  .map((r): Demographics => {
    const notSent: string[] = ['deceased', 'deceasedAt'];
    const cleared: string[] = [];
    const pick = <T>(key: string, s: Sent<T>, empty: T): T => {
      if (s.kind === 'value') return s.value;
      (s.kind === 'notSent' ? notSent : cleared).push(key);
      return empty;
    };
    return {
      identifiers: r.identifiers,
      names: pick('names', r.names, []),
      birthDate: pick('birthDate', r.birthDate, null),
      administrativeGender: pick('administrativeGender', r.administrativeGender, null),
      deceased: null,
      deceasedAt: null,
      addresses: pick('addresses', r.addresses, []),
      telecom: [
        ...pick('telecom.home', r['telecom.home'], []),
        ...pick('telecom.work', r['telecom.work'], []),
      ],
      maritalStatus: pick('maritalStatus', r.maritalStatus, null),
      language: pick('language', r.language, null),
      notSent,
      cleared,
      race: pick('race', r.race, []),
      ethnicity: pick('ethnicity', r.ethnicity, []),
      religion: pick('religion', r.religion, null),
      contacts: pick('contacts', r.contacts, []),
      primaryCareProvider: pick('primaryCareProvider', r.primaryCareProvider, null),
    };
  })
  // PID-5 is required: a message without a name is refused by every reader, the hub's too.
  .filter((d) => d.names.length > 0);

function patientEvent(type: 'PatientRegistered' | 'PatientUpdated', d: Demographics): ClinicalEvent {
  const patientId = enterprisePatientId(d.identifiers) ?? 'pat-x';
  return { type, data: { meta: meta(type, 'M1'), patientId, demographics: d } };
}

/** Every way of reading the message back: the hub's decoder and mapper, and @medplum/core's parser. */
function readBack(msg: string): ClinicalEvent[] {
  const decoded = decodeHl7Bytes(Buffer.from(msg, 'utf8'));
  expect(decoded.text).toBe(msg);
  expect(decoded.supported).toBe(true);
  const medplum = Hl7Message.parse(msg);
  expect(medplum.segments.map((s) => s.name)).toEqual(msg.split('\r').map((s) => s.slice(0, 3)));
  expect(medplum.getSegment('MSH')?.getField(10)?.toString()).toBe(OPTS.controlId);
  return inbound(msg);
}

describe('toHl7v2: patient events → ADT A28 / A31', () => {
  it('given HL7-shaped demographics with any text, when sent and read back by the hub and by Medplum, then the same facts come back', () => {
    fc.assert(
      fc.property(demographics, fc.constantFrom('PatientRegistered', 'PatientUpdated'), (d, type) => {
        const ev = patientEvent(type, d);
        const msg = toHl7v2(ev, OPTS);
        if (msg === null) throw new Error('no message');
        const back = only(readBack(msg), type);
        expect(back.data.patientId).toBe(ev.data.patientId);
        const got = back.data.demographics;
        expect({ ...got, notSent: sorted(got.notSent), cleared: sorted(got.cleared) }).toEqual({
          ...d,
          identifiers: [...d.identifiers, HUB_ID(ev.data.patientId)],
          notSent: sorted(d.notSent),
          cleared: sorted(d.cleared),
        });
        // Medplum sees the same family name once its escapes are decoded.
        const family = d.names[0]?.family ?? '';
        const raw = Hl7Message.parse(msg).getSegment('PID')?.getField(5)?.getComponent(1) ?? '';
        expect(decodeEscapes(raw)).toBe(family);
      }),
      { numRuns: 150 },
    );
  });

  it('given a cleared field and a not-sent field, then the one is "" and the other empty', () => {
    const ev = patientEvent('PatientUpdated', {
      ...(fc.sample(demographics, { numRuns: 1, seed: 7 })[0] as Demographics),
      birthDate: null,
      administrativeGender: null,
      notSent: ['administrativeGender'],
      cleared: ['birthDate'],
    });
    const pid =
      toHl7v2(ev, OPTS)
        ?.split('\r')
        .find((s) => s.startsWith('PID|')) ?? '';
    expect(pid.split('|')[7]).toBe('""');
    expect(pid.split('|')[8] ?? '').toBe('');
  });

  it('given a full snapshot update with no address, then PID-11 is "" (none), while a registration leaves it empty', () => {
    const d = patientEvent('PatientUpdated', {
      ...(fc.sample(demographics, { numRuns: 1, seed: 3 })[0] as Demographics),
      addresses: [],
      notSent: [],
      cleared: [],
    });
    const field = (e: ClinicalEvent) => toHl7v2(e, OPTS)?.split('\r')[2]?.split('|')[11] ?? '';
    expect(field(d)).toBe('""');
    expect(field({ ...d, type: 'PatientRegistered' } as ClinicalEvent)).toBe('');
  });
});

describe('toHl7v2: the inbound fixtures go back out as what they came in as', () => {
  it('given ADT^A01, then A28 (patient), A01 (inpatient visit) with the visit number in PV1-19 and the hub id in PV1-50', () => {
    const events = inbound(adtA01('C1'));
    const reg = only(events, 'PatientRegistered');
    const a28 = toHl7v2(reg, OPTS) ?? '';
    expect(only(readBack(a28), 'PatientRegistered').data.demographics.names).toEqual(
      reg.data.demographics.names,
    );
    const started = only(events, 'EncounterStarted');
    const a01 = toHl7v2(started, { ...OPTS, patient: reg.data.demographics }) ?? '';
    expect(a01.split('\r')[0]).toContain('|ADT^A01^ADT_A01|ctl-1|P|2.5.1');
    const back = only(readBack(a01), 'EncounterStarted').data;
    expect(back.encounterId).toBe(started.data.encounterId);
    expect({ ...back, meta: null }).toEqual({ ...started.data, meta: null });
    expect(a01).toContain(`|${started.data.encounterId}^^^HUB^VN`);
  });

  it('given ORU^R01 and the stored demographics, then ORU^R01 reads back as the same result', () => {
    const events = inbound(oruR01('C2'));
    const r = only(events, 'ResultReported');
    const reg = only(inbound(adtA01('C1')), 'PatientRegistered');
    const oru = toHl7v2(r, { ...OPTS, patient: reg.data.demographics }) ?? '';
    const back = only(readBack(oru), 'ResultReported').data;
    // A unit sent with no coding system is local to its sender, which is now the hub.
    const local = JSON.stringify(r.data).replaceAll('urn:hl7:local:LAB', 'urn:hl7:local:HUB');
    expect({ ...back, meta: null }).toEqual({ ...(JSON.parse(local) as ResultReported), meta: null });
  });

  it('given a result with no stored demographics, then PID carries the hub id alone', () => {
    const r = only(inbound(oruR01('C3')), 'ResultReported');
    const pid = toHl7v2(r, OPTS)?.split('\r')[1];
    expect(pid).toBe(`PID|1||${r.data.patientId}^^^HUB^PI`);
  });
});

const obsText = fc.array(text, { minLength: 1, maxLength: 3 }).map((l) => l.join('\n'));
const observation = (i: number): fc.Arbitrary<ObservationValue> =>
  fc
    .record({
      code: code.map((c) => ({ ...c, system: LOINC })),
      value: fc.oneof(
        fc
          .double({ min: -1e6, max: 1e6, noNaN: true })
          .filter((n) => !Object.is(n, -0))
          .map((n) => ({ valueType: 'NM', valueNumber: n })),
        text.map((s) => ({ valueType: 'ST', valueString: s })),
        obsText.map((s) => ({ valueType: 'TX', valueString: s })),
        code.map((c) => ({ valueType: 'CWE', valueCode: c, valueString: c.display })),
        fc.tuple(fc.constantFrom('<', '>', '<=', '>='), fc.integer({ min: 0, max: 999 })).map(([cmp, n]) => ({
          valueType: 'SN',
          valueComparator: cmp,
          valueNumber: n,
        })),
      ),
      unit: fc.option(fc.constantFrom('mg/dL', 'mmol/L', '%'), { nil: null }),
      range: fc.constantFrom<[string | null, number | null, number | null]>(
        [null, null, null],
        ['3.5-5.0', 3.5, 5],
        ['<200', null, 200],
        ['negative', null, null],
      ),
      flags: fc.array(fc.constantFrom('H', 'L', 'N', 'A'), { maxLength: 2 }),
      status: fc.constantFrom('final', 'preliminary'),
      observedAt: fc.option(
        fc.integer({ min: 1.6e12, max: 1.9e12 }).map((n) => n - (n % 1000)),
        { nil: null },
      ),
      notes: fc.array(fc.record({ text: obsText, source: fc.constantFrom('L', 'P', null) }), {
        maxLength: 2,
      }),
      subId: fc.option(fc.stringMatching(/^[1-9]$/), { nil: null }),
    })
    .map((r) => ({
      sequence: i + 1,
      code: r.code,
      valueType: r.value.valueType,
      valueNumber: 'valueNumber' in r.value ? r.value.valueNumber : null,
      valueString: 'valueString' in r.value ? (r.value.valueString ?? null) : null,
      valueCode: 'valueCode' in r.value ? r.value.valueCode : null,
      valueComparator: 'valueComparator' in r.value ? r.value.valueComparator : null,
      unit: r.unit,
      unitCode: r.unit
        ? { system: UCUM, code: r.unit, display: r.unit, version: null, alternates: [], text: null }
        : null,
      referenceRange: r.range[0],
      referenceLow: r.range[1],
      referenceHigh: r.range[2],
      interpretation: null,
      interpretations: r.flags.map((f) => ({
        system: V2_TABLE('0078'),
        code: f,
        display: null,
        version: null,
        alternates: [],
        text: null,
      })),
      status: r.status,
      observedAt: r.observedAt,
      attachment: null,
      observationId: null,
      subId: r.subId,
      notes: r.notes.map((n) => ({ ...n, type: null, authoredAt: null })),
      components: [],
      method: null,
      bodySite: null,
    }))
    .map((v) => ({ ...v, interpretation: v.interpretations[0] ?? null }));

describe('toHl7v2: results → ORU^R01', () => {
  it('given any observations (NM, ST, TX, CWE, SN) and notes with delimiters in their text, then the hub reads back the same values', () => {
    const reg = only(inbound(adtA01('C1')), 'PatientRegistered');
    const obs = fc
      .integer({ min: 1, max: 4 })
      .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => observation(i))));
    fc.assert(
      fc.property(
        obs,
        code,
        fc.array(fc.record({ text: obsText }), { maxLength: 2 }),
        (observations, c, notes) => {
          const filler = { system: 'urn:hl7:authority:LAB', value: 'F1', type: null };
          const reportCode = { ...c, system: LOINC };
          const r: ResultReported = {
            meta: meta('ResultReported', 'R1'),
            patientId: reg.data.patientId,
            resultId: resultIdFor(filler, reportCode),
            orderId: null,
            encounterId: null,
            code: reportCode,
            category: 'laboratory',
            status: 'final',
            effectiveAt: Date.UTC(2026, 0, 1, 10),
            issuedAt: Date.UTC(2026, 0, 1, 11),
            observations,
            reportText: null,
            performer: null,
            notes: notes.map((n) => ({ text: n.text, source: null, type: null, authoredAt: null })),
            specimens: [],
            placerOrderNumber: null,
            fillerOrderNumber: filler,
            orderCode: null,
          };
          const msg = toHl7v2(
            { type: 'ResultReported', data: r },
            { ...OPTS, patient: reg.data.demographics },
          );
          if (msg === null) throw new Error('no message');
          const back = only(readBack(msg), 'ResultReported').data;
          expect(back.resultId).toBe(r.resultId);
          expect(back.notes).toEqual(r.notes);
          const strip = (o: ObservationValue) => ({ ...o, observationId: null });
          expect(back.observations.map(strip)).toEqual(observations);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('given a corrected result, then OBR-25 is C and the hub reads a ResultCorrected', () => {
    const r = only(inbound(oruR01('C4')), 'ResultReported');
    const corrected: ClinicalEvent = {
      type: 'ResultCorrected',
      data: { ...r.data, status: 'corrected', correctionReason: null },
    };
    const reg = only(inbound(adtA01('C1')), 'PatientRegistered');
    const msg = toHl7v2(corrected, { ...OPTS, patient: reg.data.demographics }) ?? '';
    expect(
      msg
        .split('\r')
        .find((s) => s.startsWith('OBR'))
        ?.split('|')[25],
    ).toBe('C');
    expect(only(readBack(msg), 'ResultCorrected').data.status).toBe('corrected');
  });

  it('given an attachment line, then it goes out as RP with a pointer to the content', () => {
    const r = only(inbound(oruR01('C5')), 'ResultReported');
    const first = r.data.observations[0] as ObservationValue;
    const withPdf = {
      ...r.data,
      observations: [
        {
          ...first,
          valueType: 'ED',
          valueNumber: null,
          attachment: { sha256: 'ab'.repeat(32), size: 10, contentType: 'application/pdf', title: null },
        },
      ],
    };
    const obx = toHl7v2({ type: 'ResultReported', data: withPdf }, OPTS)
      ?.split('\r')
      .find((s) => s.startsWith('OBX'));
    expect(obx).toContain(`|RP|`);
    expect(obx).toContain(`|urn:hub:attachment:sha256:${'ab'.repeat(32)}^HUB^application^pdf|`);
  });
});

describe('toHl7v2: visit and merge events → ADT, read back by the hub', () => {
  const events = inbound(adtA01('C1'));
  const reg = only(events, 'PatientRegistered');
  const started = only(events, 'EncounterStarted').data;
  const opts = { ...OPTS, patient: reg.data.demographics };
  const base = { meta: started.meta, patientId: started.patientId, encounterId: started.encounterId };
  const ward = { facility: 'GENHOSP', unit: 'W2', room: '2&3', bed: 'B|1' };
  const at = Date.UTC(2026, 0, 3, 4, 5, 6);
  const back = <T extends ClinicalEvent['type']>(
    ev: ClinicalEvent,
    type: T,
    trigger: string,
  ): EventTypeMap[T] => {
    const msg = toHl7v2(ev, opts) ?? '';
    expect(msg.split('\r')[0]).toContain(`|ADT^${trigger}^`);
    const got = only(readBack(msg), type);
    expect(got.data.patientId).toBe(started.patientId);
    return got.data as EventTypeMap[T];
  };

  it('A02 carries the new and the prior location and the transfer time', () => {
    const ev: ClinicalEvent = {
      type: 'EncounterTransferred',
      data: {
        ...base,
        fromLocation: started.location,
        toLocation: ward,
        transferredAt: at,
        encounterClass: started.encounterClass,
        hospitalService: started.hospitalService,
        attendingPractitioner: started.attendingPractitioner,
      },
    };
    const d = back(ev, 'EncounterTransferred', 'A02');
    expect([d.toLocation, d.fromLocation, d.transferredAt, d.encounterClass]).toEqual([
      ward,
      started.location,
      at,
      started.encounterClass,
    ]);
  });

  it('A03 carries the discharge time (PV1-45) and disposition', () => {
    const disposition = {
      system: V2_TABLE('0112'),
      code: '01',
      display: null,
      version: null,
      alternates: [],
      text: null,
    };
    const ev: ClinicalEvent = {
      type: 'EncounterEnded',
      data: {
        ...base,
        endedAt: at,
        dischargeDisposition: disposition,
        encounterClass: started.encounterClass,
        hospitalService: started.hospitalService,
        attendingPractitioner: null,
        location: ward,
      },
    };
    const d = back(ev, 'EncounterEnded', 'A03');
    expect([d.endedAt, d.dischargeDisposition, d.location]).toEqual([at, disposition, ward]);
  });

  it('A11, A12 and A13 undo an admit, a transfer and a discharge', () => {
    const cancel = (what: string | null): ClinicalEvent => ({
      type: 'EncounterCancelled',
      data: { ...base, reason: null, cancelledEventType: what, encounterClass: started.encounterClass },
    });
    expect(back(cancel('admit'), 'EncounterCancelled', 'A11').cancelledEventType).toBe('admit');
    expect(messageTypeOf(cancel('transfer'))?.trigger).toBe('A12');
    expect(messageTypeOf(cancel('discharge'))?.trigger).toBe('A13');
    const a12 = back(
      {
        type: 'EncounterTransferCancelled',
        data: { ...base, location: started.location, cancelledLocation: ward, cancelledAt: at },
      },
      'EncounterTransferCancelled',
      'A12',
    );
    expect([a12.location, a12.cancelledLocation, a12.cancelledAt]).toEqual([started.location, ward, at]);
    const a13 = back(
      { type: 'EncounterDischargeCancelled', data: { ...base, location: ward, cancelledAt: at } },
      'EncounterDischargeCancelled',
      'A13',
    );
    expect([a13.location, a13.cancelledAt]).toEqual([ward, at]);
  });

  it('A40 names the survivor in PID and the retired record in MRG', () => {
    const retired: Identifier[] = [{ system: 'urn:hl7:authority:HOSP', value: 'OLD-1', type: 'MR' }];
    const mergedPatientId = enterprisePatientId(retired) ?? '';
    const ev: ClinicalEvent = {
      type: 'PatientsMerged',
      data: {
        meta: started.meta,
        patientId: started.patientId,
        mergedPatientId,
        mergedIdentifiers: retired,
        mergedNames: reg.data.demographics.names,
        mergedAccountNumber: null,
        mergedVisitNumber: null,
        mergedDemographics: null,
      },
    };
    const d = back(ev, 'PatientsMerged', 'A40');
    expect(d.mergedPatientId).toBe(mergedPatientId);
    expect(d.mergedIdentifiers).toEqual([...retired, HUB_ID(mergedPatientId)]);
    expect(d.mergedNames).toEqual(reg.data.demographics.names);
  });

  it('without stored demographics, visit messages carry PID-3 alone and PV1-19 / PV1-50 the hub encounter id', () => {
    const ev: ClinicalEvent = {
      type: 'EncounterDischargeCancelled',
      data: { ...base, location: null, cancelledAt: at },
    };
    const segs = (toHl7v2(ev, OPTS) ?? '').split('\r');
    expect(segs[2]).toBe(`PID|1||${base.patientId}^^^HUB^PI`);
    const pv1 = segs[3]?.split('|') ?? [];
    expect([pv1[2], pv1[19], pv1[50]]).toEqual([
      'U',
      `${base.encounterId}^^^HUB^VN`,
      `${base.encounterId}^^^HUB^VN`,
    ]);
  });
});

describe('toHl7v2: orders → ORM^O01', () => {
  const reg = only(inbound(adtA01('C1')), 'PatientRegistered');
  const opts = { ...OPTS, patient: reg.data.demographics };
  const placed = only(inbound(ormO01('O1')), 'OrderPlaced');
  const roundTrip = (ev: ClinicalEvent): ClinicalEvent => {
    const msg = toHl7v2(ev, opts) ?? '';
    expect(msg.split('\r')[0]).toContain('|ORM^O01^ORM_O01|');
    const [back] = readBack(msg);
    if (!back) throw new Error('no event');
    return back;
  };

  it('given a placed order (NW), then the hub reads back the same order', () => {
    const back = roundTrip(placed);
    expect(back.type).toBe('OrderPlaced');
    expect({ ...back.data, meta: null }).toEqual({ ...placed.data, meta: null });
  });

  it('given a cancellation (CA) and a status change (SC), then the hub reads back the same facts', () => {
    const base = {
      meta: placed.data.meta,
      patientId: placed.data.patientId,
      orderId: placed.data.orderId,
      placerOrderNumber: placed.data.placerOrderNumber,
      fillerOrderNumber: null,
    };
    const at = Date.UTC(2026, 0, 4, 5, 6, 7);
    const reason = {
      system: V2_TABLE('0119'),
      code: 'X1',
      display: 'Patient left',
      version: null,
      alternates: [],
      text: null,
    };
    const cancelled: ClinicalEvent = { type: 'OrderCancelled', data: { ...base, reason, cancelledAt: at } };
    expect({ ...roundTrip(cancelled).data, meta: null }).toEqual({ ...cancelled.data, meta: null });
    const changed: ClinicalEvent = {
      type: 'OrderStatusChanged',
      data: {
        ...base,
        status: 'on-hold',
        fillerStatus: 'HD',
        changedAt: at,
        resultStatus: null,
        notes: [{ text: 'a|b\nc', source: 'L', type: null, authoredAt: null }],
      },
    };
    expect({ ...roundTrip(changed).data, meta: null }).toEqual({ ...changed.data, meta: null });
  });
});

describe('which events have a message', () => {
  it('maps visits by class and status: A01 inpatient, A04 outpatient, A05 pre-admit', () => {
    const started = only(inbound(adtA01('C1')), 'EncounterStarted');
    const amb = {
      ...started.data,
      encounterClass: { ...started.data.encounterClass, code: 'AMB', alternates: [] },
    };
    expect(messageTypeOf(started)?.trigger).toBe('A01');
    expect(messageTypeOf({ type: 'EncounterStarted', data: amb })?.trigger).toBe('A04');
    expect(messageTypeOf({ type: 'EncounterStarted', data: { ...amb, status: 'planned' } })?.trigger).toBe(
      'A05',
    );
  });

  it('has none for allergies, coverage, diagnoses and attachments', () => {
    for (const t of [
      'AllergyRecorded',
      'CoverageRecorded',
      'DiagnosisRecorded',
      'AttachmentStored',
    ] as const) {
      expect(hasMessage(t)).toBe(false);
    }
    expect(hasMessage('ResultCorrected')).toBe(true);
    expect(hasMessage('OrderPlaced')).toBe(true);
  });

  it('sends identifiers with the HD the site registered for their authority', () => {
    const policy = {
      ...DEFAULT_IDENTITY_POLICY,
      authorities: [
        {
          namespaceId: 'MAIN',
          universalId: '1.2.3',
          universalIdType: 'ISO',
          system: 'https://hospital.example/mrn',
        },
      ],
    };
    const ev = patientEvent('PatientRegistered', {
      ...(fc.sample(demographics, { numRuns: 1, seed: 5 })[0] as Demographics),
      identifiers: [{ system: 'https://hospital.example/mrn', value: 'M1', type: 'MR' }],
    });
    const pid3 = toHl7v2(ev, { ...OPTS, policy })
      ?.split('\r')[2]
      ?.split('|')[3];
    expect(pid3).toBe(`M1^^^MAIN&1.2.3&ISO^MR~${ev.data.patientId}^^^HUB^PI`);
  });

  it('derives MSH-10 from the idempotency key: deterministic, at most 20 characters', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.string(), (u, s) => {
        expect(controlIdFor(u)).toBe(u.replaceAll('-', '').slice(0, 20));
        expect(controlIdFor(s)).toMatch(/^[0-9a-f]{20}$/);
        expect(controlIdFor(s)).toBe(controlIdFor(s));
      }),
    );
  });
});
