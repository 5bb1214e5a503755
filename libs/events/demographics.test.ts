import { describe, expect, it } from 'vitest';
import { fieldState, mergeDemographics, telecomPartOf } from './demographics.js';
import type { ContactPoint, Demographics } from './generated.js';

const phone = (value: string, part: string | null, use: string | null = null): ContactPoint => ({
  system: 'phone',
  value,
  use,
  part,
});

function demo(over: Partial<Demographics> = {}): Demographics {
  return {
    identifiers: [{ system: 'urn:x', value: 'M1', type: 'MR' }],
    names: [{ family: 'Stored', given: ['Ann'], prefix: null, suffix: null, use: 'official' }],
    birthDate: '1970-01-02',
    administrativeGender: 'female',
    deceased: null,
    deceasedAt: null,
    addresses: [
      {
        lines: ['1 Old St'],
        city: 'Town',
        state: null,
        postalCode: null,
        country: null,
        use: null,
        type: null,
      },
    ],
    telecom: [phone('555-0001', 'home', 'home'), phone('555-0002', 'work', 'work')],
    maritalStatus: { system: 'v2-0002', code: 'M', display: null, version: null, alternates: [], text: null },
    language: {
      system: 'urn:ietf:bcp:47',
      code: 'en',
      display: null,
      version: null,
      alternates: [],
      text: null,
    },
    notSent: [],
    cleared: [],
    race: [],
    ethnicity: [],
    religion: null,
    contacts: [],
    primaryCareProvider: null,
    ...over,
  };
}

const EMPTY_UPDATE = {
  names: [],
  birthDate: null,
  administrativeGender: null,
  addresses: [],
  telecom: [],
  maritalStatus: null,
  language: null,
};

describe('mergeDemographics (HL7 v2 null semantics)', () => {
  it('given a full snapshot (no notSent, no cleared), when applied, then it replaces everything (old events)', () => {
    const incoming = demo({ ...EMPTY_UPDATE });
    expect(mergeDemographics(demo(), incoming)).toEqual(incoming);
  });

  it('given fields not sent, when applied, then the stored values stay', () => {
    const stored = demo();
    const incoming = demo({
      ...EMPTY_UPDATE,
      birthDate: '1970-01-03',
      notSent: ['names', 'administrativeGender', 'addresses', 'telecom.home', 'telecom.work', 'language'],
    });
    const out = mergeDemographics(stored, incoming);
    expect(out.names).toEqual(stored.names);
    expect(out.addresses).toEqual(stored.addresses);
    expect(out.telecom).toEqual(stored.telecom);
    expect(out.administrativeGender).toBe('female');
    expect(out.language).toEqual(stored.language);
    expect(out.birthDate).toBe('1970-01-03');
    // maritalStatus was sent (as nothing): a sent field replaces, even with null.
    expect(out.maritalStatus).toBeNull();
    expect(out.notSent).toEqual([]);
    expect(out.cleared).toEqual([]);
  });

  it('given fields cleared, when applied, then the stored values are deleted', () => {
    const incoming = demo({
      ...EMPTY_UPDATE,
      names: demo().names,
      cleared: ['addresses', 'birthDate', 'maritalStatus'],
      notSent: ['administrativeGender', 'telecom.home', 'telecom.work', 'language'],
    });
    const out = mergeDemographics(demo(), incoming);
    expect(out.addresses).toEqual([]);
    expect(out.birthDate).toBeNull();
    expect(out.maritalStatus).toBeNull();
    expect(out.telecom).toHaveLength(2);
  });

  it('given a sent repeating field, when applied, then it replaces the whole stored list', () => {
    const incoming = demo({
      ...EMPTY_UPDATE,
      addresses: [
        {
          lines: ['9 New Rd'],
          city: null,
          state: null,
          postalCode: null,
          country: null,
          use: null,
          type: null,
        },
      ],
      notSent: ['names', 'telecom.home', 'telecom.work'],
    });
    expect(mergeDemographics(demo(), incoming).addresses).toEqual(incoming.addresses);
  });

  it('given PID-13 not sent and PID-14 sent, when applied, then home numbers stay and work numbers are replaced', () => {
    const incoming = demo({
      ...EMPTY_UPDATE,
      telecom: [phone('555-0009', 'work', 'work')],
      notSent: ['telecom.home'],
    });
    expect(mergeDemographics(demo(), incoming).telecom).toEqual([
      phone('555-0001', 'home', 'home'),
      phone('555-0009', 'work', 'work'),
    ]);
  });

  it('given PID-13 sent and PID-14 not sent, when applied, then work numbers stay and home numbers are replaced', () => {
    const incoming = demo({
      ...EMPTY_UPDATE,
      telecom: [phone('555-0007', 'home', 'home'), phone('555-0008', 'home', 'mobile')],
      notSent: ['telecom.work'],
    });
    expect(mergeDemographics(demo(), incoming).telecom).toEqual([
      phone('555-0007', 'home', 'home'),
      phone('555-0008', 'home', 'mobile'),
      phone('555-0002', 'work', 'work'),
    ]);
  });

  it('given PID-14 cleared and PID-13 not sent, when applied, then only the work numbers go', () => {
    const incoming = demo({ ...EMPTY_UPDATE, notSent: ['telecom.home'], cleared: ['telecom.work'] });
    expect(mergeDemographics(demo(), incoming).telecom).toEqual([phone('555-0001', 'home', 'home')]);
  });

  it('given stored numbers without a part (FHIR), when one HL7 part is sent, then the stored ones split by use', () => {
    const stored = demo({ telecom: [phone('555-0001', null, 'mobile'), phone('555-0002', null, 'work')] });
    const incoming = demo({
      ...EMPTY_UPDATE,
      telecom: [phone('555-0003', 'home', 'home')],
      notSent: ['telecom.work'],
    });
    expect(mergeDemographics(stored, incoming).telecom).toEqual([
      phone('555-0003', 'home', 'home'),
      phone('555-0002', null, 'work'),
    ]);
  });

  it('given nothing stored, when fields are not sent, then they are empty', () => {
    const incoming = demo({ ...EMPTY_UPDATE, notSent: ['names', 'telecom.home', 'telecom.work'] });
    const out = mergeDemographics(null, incoming);
    expect(out.names).toEqual([]);
    expect(out.telecom).toEqual([]);
  });
});

describe('fieldState / telecomPartOf', () => {
  it('given both telecom parts not sent or both cleared, then telecom as a whole is so', () => {
    expect(fieldState(demo({ notSent: ['telecom.home', 'telecom.work'] }), 'telecom')).toBe('notSent');
    expect(fieldState(demo({ cleared: ['telecom.home', 'telecom.work'] }), 'telecom')).toBe('cleared');
    expect(fieldState(demo({ cleared: ['telecom.home'] }), 'telecom')).toBe('sent');
    expect(fieldState(demo({ notSent: ['telecom'] }), 'telecom')).toBe('notSent');
    expect(fieldState(demo(), 'names')).toBe('sent');
  });

  it('given a contact point without a part, then work use is the work part and the rest home', () => {
    expect(telecomPartOf(phone('1', null, 'work'))).toBe('work');
    expect(telecomPartOf(phone('1', null, 'mobile'))).toBe('home');
    expect(telecomPartOf(phone('1', 'work', 'home'))).toBe('work');
  });
});
