import { telecomPartOf } from '../events/demographics.js';
import type {
  Code,
  ContactPoint,
  Demographics,
  HumanName,
  Identifier,
  PatientContact,
} from '../events/index.js';
import { V2_TABLE } from './codes.js';
import { dateOf } from './map-adt-clinical.js';
import type { Seg } from './message.js';
import type { MapScope } from './scope.js';

/**
 * The patient facts of an ADT message beyond PID's core (scope.demographics): PID-10 race,
 * PID-17 religion, PID-22 ethnicity, NK1 contacts and PD1-4 primary care provider, with the
 * same HL7 v2 chapter 2 null semantics: a field left empty is named in `notSent` (readers keep
 * their value), a field sent as `""` in `cleared` (readers delete it). Segments count as fields
 * of the patient here: no NK1 at all is "contacts not sent" (an A08 that only fixes a name must
 * not delete the next of kin), and an NK1 whose only content is `""` clears them.
 */
export function patientDemographics(scope: MapScope, pid: Seg, identifiers: Identifier[]): Demographics {
  const d = scope.demographics(pid, identifiers);
  const notSent = [...d.notSent];
  const cleared = [...d.cleared];
  const sent = (seg: Seg | undefined, n: number, name: string): seg is Seg => {
    if (seg?.isNull(n)) cleared.push(name);
    else if (!seg?.isSent(n)) notSent.push(name);
    else return true;
    return false;
  };
  // Bare codes take the HL7 table as their system (PID-10 table 0005, PID-22 0189, PID-17 0006);
  // CDC race/ethnicity codes arrive with their own system name (CDCREC) and keep it.
  const race = sent(pid, 10, 'race') ? scope.codeList(pid, 10, V2_TABLE('0005')) : [];
  const religion = sent(pid, 17, 'religion') ? scope.codeOrText(pid, 17, 0, V2_TABLE('0006')) : null;
  const ethnicity = sent(pid, 22, 'ethnicity') ? scope.codeList(pid, 22, V2_TABLE('0189')) : [];
  const pd1 = scope.msg.first('PD1');
  const primaryCareProvider = sent(pd1, 4, 'primaryCareProvider') ? scope.practitioner(pd1, 4) : null;
  const nk1s = scope.msg.all('NK1');
  let contacts: PatientContact[] = [];
  if (nk1s.length === 0) notSent.push('contacts');
  else if (nk1s.every(isNullOnly)) cleared.push('contacts');
  else contacts = nk1s.map((s) => contactOf(scope, s)).filter((c): c is PatientContact => c !== null);
  const telecom = withPid40(scope, pid, d.telecom, notSent, cleared);
  return { ...d, telecom, notSent, cleared, race, ethnicity, religion, contacts, primaryCareProvider };
}

/**
 * PID-40 patient telecommunication information (v2.7+, which keeps PID-13/14 only for backward
 * compatibility) is the patient's whole list of numbers: when sent, each number takes the part
 * its use names (work, else home) and both parts count as sent; sent as `""` it deletes the parts
 * PID-13/14 did not send. Mutates the notSent / cleared lists it is given.
 */
function withPid40(
  scope: MapScope,
  pid: Seg,
  telecom: ContactPoint[],
  notSent: string[],
  cleared: string[],
): ContactPoint[] {
  const parts = ['telecom.home', 'telecom.work'];
  const unsent = () => parts.filter((p) => notSent.includes(p));
  if (pid.isNull(40)) {
    for (const p of unsent()) {
      notSent.splice(notSent.indexOf(p), 1);
      cleared.push(p);
    }
    return telecom;
  }
  if (!pid.isSent(40)) return telecom;
  for (const p of unsent()) notSent.splice(notSent.indexOf(p), 1);
  const more = scope.contactPoints(pid, 40, 'home').map((c) => ({ ...c, part: telecomPartOf(c) }));
  return [...telecom, ...more];
}

/** An NK1 that carries nothing but `""` (after its set id): the sender deletes the contacts. */
function isNullOnly(nk1: Seg): boolean {
  let sawNull = false;
  for (let n = 2; n <= 41; n++) {
    if (nk1.isNull(n)) sawNull = true;
    else if (nk1.isSent(n)) return false;
  }
  return sawNull;
}

/**
 * NK1 → PatientContact (HL7 v2-to-FHIR NK1 → Patient.contact): NK1-2 name (NK1-30 contact
 * person when NK1-2 is empty, as for an organisation contact), NK1-3 relationship and NK1-7
 * contact role (every repetition), NK1-5/6 phones (NK1-40 in v2.7+; the contact person's NK1-31,
 * NK1-41 in v2.7+),
 * NK1-4 address (else NK1-32), NK1-13 organisation, NK1-8/9 period. Null when it names nobody.
 */
function contactOf(scope: MapScope, nk1: Seg): PatientContact | null {
  const firstName = (field: number): HumanName | null => {
    for (let r = 0; r < nk1.repetitionCount(field); r++) {
      const n = scope.name(nk1, field, r);
      if (n) return n;
    }
    return null;
  };
  const firstAddress = (field: number) => {
    for (let r = 0; r < nk1.repetitionCount(field); r++) {
      const a = scope.address(nk1, field, r);
      if (a) return a;
    }
    return null;
  };
  const relationships: Code[] = [
    ...scope.codeList(nk1, 3, V2_TABLE('0063')),
    ...scope.codeList(nk1, 7, V2_TABLE('0131')),
  ];
  const contact: PatientContact = {
    relationships,
    name: firstName(2) ?? firstName(30),
    telecom: [
      ...scope.contactPoints(nk1, 5, 'home'),
      ...scope.contactPoints(nk1, 6, 'work'),
      ...scope.contactPoints(nk1, 40, 'home'),
      ...scope.contactPoints(nk1, 31, 'home'),
      ...scope.contactPoints(nk1, 41, 'home'),
    ],
    address: firstAddress(4) ?? firstAddress(32),
    organization: nk1.get(13, 1) || null,
    periodStart: dateOf(nk1, 8),
    periodEnd: dateOf(nk1, 9),
  };
  const empty =
    contact.relationships.length === 0 &&
    !contact.name &&
    contact.telecom.length === 0 &&
    !contact.address &&
    !contact.organization;
  return empty ? null : contact;
}
