import {
  deterministicEventId,
  type Address,
  type Code,
  type Coding,
  type ContactPoint,
  type Demographics,
  type EventMeta,
  type EventType,
  type HumanName,
  type Identifier,
  type Location,
  type Practitioner,
  type SourceTime,
} from '../events/index.js';
import { enterprisePatientId, resolveHl7Authority, systemForHl7Authority } from '../identity/index.js';
import { checkIdentifier } from '../identity/hygiene.js';
import {
  addressTypeFor,
  addressUseFor,
  codingSystemFor,
  genderFor,
  nameUseFor,
  telecomSystemFor,
  telecomUseFor,
  V2_TABLE,
} from './codes.js';
import { fieldName, loc, refuse, type Msg, type Seg } from './message.js';
import { textCode } from '../terminology/code-systems.js';
import { parseHl7Date, parseHl7DateTime, type Hl7Time } from './time.js';
import type { MapContext, MessageHeader } from './types.js';

/** A deterministic id for the message itself: EventMeta.correlationId of all its events. */
export function messageCorrelationId(
  h: Pick<MessageHeader, 'sendingApplication' | 'sendingFacility' | 'controlId'>,
): string {
  return deterministicEventId([h.sendingApplication, h.sendingFacility, h.controlId, 'message']);
}

const nonEmpty = (s: string): string | null => (s === '' ? null : s);

/** The hub's text-only concept (see MapScope.codeOrText); null for no text. */
export function textConcept(text: string): Code | null {
  return text === '' ? null : textCode(text);
}

/** Component numbers of one CWE coding: code, text, system name, system version, system OID. */
interface CodingTriplet {
  code: number;
  text: number;
  system: number;
  version: number;
  oid?: number;
}
/** CWE primary (1-3, version 7, OID 14), alternate (4-6, 8, 17), second alternate (10-12, 13, 20). */
const CWE_TRIPLETS: readonly CodingTriplet[] = [
  { code: 1, text: 2, system: 3, version: 7, oid: 14 },
  { code: 4, text: 5, system: 6, version: 8, oid: 17 },
  { code: 10, text: 11, system: 12, version: 13, oid: 20 },
];

/** The UTC instant of a time read from the message; null stays null. */
export const instantOf = (t: Hl7Time | null): number | null => (t === null ? null : t.instant);

function sourceTime(field: string, t: Hl7Time): SourceTime {
  return { field, precision: t.precision, offsetMinutes: t.offsetMinutes, zoned: t.zoned };
}

/** Hub ids of visits, orders and reports: name-based, so they carry no identifier value (PHI-free keys). */
export function encounterIdFor(visit: Identifier): string {
  return `enc-${deterministicEventId(['encounter', visit.system, visit.value])}`;
}
export function orderIdFor(orderNumber: Identifier): string {
  return `ord-${deterministicEventId(['order', orderNumber.system, orderNumber.value])}`;
}
export function resultIdFor(orderNumber: Identifier, code: Code): string {
  return `res-${deterministicEventId(['result', orderNumber.system, orderNumber.value, code.system, code.code])}`;
}

/**
 * Everything one message's mappers share: the event envelope, field readers
 * that refuse with a location, and the HL7 data types (CX, XPN, XAD, XTN,
 * PL, XCN, CE/CWE, EI) turned into the schema's shared records.
 */
export class MapScope {
  private nextIndex = 0;
  readonly correlationId: string;
  readonly sourceSystem: string;
  readonly sourceFacility: string | null;

  constructor(
    readonly msg: Msg,
    readonly header: MessageHeader,
    readonly ctx: MapContext,
  ) {
    this.correlationId = messageCorrelationId(header);
    const msh = msg.msh;
    this.sourceSystem = msh.get(3, 1) || msh.get(3, 2) || 'unknown';
    this.sourceFacility = nonEmpty(msh.get(4, 1) || msh.get(4, 2));
  }

  /**
   * Envelope of the next event; the index makes ids distinct within a message and equal across resends.
   * `times` names the event's other instant fields (path in the event, e.g. `admittedAt`,
   * `observations[0].observedAt`) with the times read for them, so that `sourceTimes` keeps the
   * precision and offset the sender meant for each; null entries (field not sent) are skipped.
   */
  meta(eventType: EventType, occurredAt: Hl7Time, times: Record<string, Hl7Time | null> = {}): EventMeta {
    const h = this.header;
    const index = this.nextIndex++;
    return {
      eventId: deterministicEventId([
        h.sendingApplication,
        h.sendingFacility,
        h.controlId,
        eventType,
        String(index),
      ]),
      eventType,
      occurredAt: occurredAt.instant,
      recordedAt: this.ctx.recordedAt,
      source: { system: this.sourceSystem, facility: this.sourceFacility, messageId: h.controlId },
      correlationId: this.correlationId,
      causationId: null,
      rawMessageRef: this.ctx.rawMessageRef,
      sourceTimes: [
        sourceTime('meta.occurredAt', occurredAt),
        ...Object.entries(times)
          .filter((e): e is [string, Hl7Time] => e[1] !== null)
          .map(([field, t]) => sourceTime(field, t)),
      ],
    };
  }

  /** A segment the message type requires; AE 101 naming it when absent. */
  requireSegment(name: string): Seg {
    const s = this.msg.first(name);
    if (!s) {
      throw refuse('AE', '101', `required segment ${name} is missing`, { segment: name, segmentSequence: 1 });
    }
    return s;
  }

  requireField(seg: Seg, field: number, component = 1, what = ''): string {
    const v = seg.get(field, component);
    if (v === '') {
      throw refuse(
        'AE',
        '101',
        `required field ${fieldName(seg, field, component === 1 ? undefined : component)}${what ? ` (${what})` : ''} is missing`,
        loc(seg, field, component === 1 ? undefined : component),
      );
    }
    return v;
  }

  /**
   * A timestamp field read in the sender's zone (ctx.timeZone, unless the value has an offset):
   * null when empty, AE 102 when malformed. The result keeps precision and offset; events take
   * `.instant` (see {@link instantOf}) and pass the time itself to {@link meta}.
   */
  time(seg: Seg | undefined, field: number, rep = 0): Hl7Time | null {
    if (!seg) return null;
    const t = parseHl7DateTime(seg.get(field, 1, undefined, rep), this.ctx.timeZone);
    if (t === 'invalid') {
      throw refuse('AE', '102', `${fieldName(seg, field)} is not a valid HL7 date/time`, loc(seg, field));
    }
    return t;
  }

  /**
   * A timestamp in one component of a field (DR range start ^ end, e.g. SPM-17.1 / SPM-17.2), its
   * first subcomponent being the time (a TS inside a DR); read as {@link time} reads a field.
   */
  timeAt(seg: Seg | undefined, field: number, component: number): Hl7Time | null {
    if (!seg) return null;
    const t = parseHl7DateTime(seg.get(field, component, 1), this.ctx.timeZone);
    if (t === 'invalid') {
      throw refuse(
        'AE',
        '102',
        `${fieldName(seg, field, component)} is not a valid HL7 date/time`,
        loc(seg, field, component),
      );
    }
    return t;
  }

  /** MSH-7: required, the last fallback of every clinical time. */
  messageTime(): Hl7Time {
    const msh = this.msg.msh;
    const t = this.time(msh, 7);
    if (t === null)
      throw refuse('AE', '101', 'required field MSH-7 (message date/time) is missing', loc(msh, 7));
    return t;
  }

  /** When an ADT event happened: EVN-6 (event occurred), EVN-2 (recorded), MSH-7. */
  eventTime(): Hl7Time {
    const evn = this.msg.first('EVN');
    return this.time(evn, 6) ?? this.time(evn, 2) ?? this.messageTime();
  }

  /**
   * One identifying part of an id (its value, or its assigning authority's namespace or
   * universal id) through identifier hygiene (libs/identity/hygiene.ts): NFC and trimmed;
   * AE 102 naming the field when it holds invisible, bidi, control, compatibility or
   * mixed-script characters, which would otherwise make a second patient that looks the same.
   */
  private idPart(
    seg: Seg,
    field: number,
    component: number,
    sub: number | undefined,
    rep: number,
    what: 'identifier' | 'assigning authority',
  ): string {
    const raw = seg.get(field, component, sub, rep);
    if (raw === '') return '';
    const r = checkIdentifier(raw);
    if (r.ok) return r.value;
    const c = component === 1 ? undefined : component;
    throw refuse('AE', '102', `${fieldName(seg, field, c)} (${what}) ${r.message}`, loc(seg, field, c));
  }

  /** CX repetition → Identifier, or null when CX.1 is empty. */
  cx(seg: Seg, field: number, rep = 0): Identifier | null {
    const value = this.idPart(seg, field, 1, undefined, rep, 'identifier');
    if (value === '') return null;
    const { system, authority } = resolveHl7Authority(
      {
        namespaceId: this.idPart(seg, field, 4, 1, rep, 'assigning authority'),
        universalId: this.idPart(seg, field, 4, 2, rep, 'assigning authority'),
        universalIdType: seg.get(field, 4, 3, rep),
      },
      this.ctx.policy,
    );
    // CX-5 as sent; when empty, the type the site registered for the authority (site configuration).
    const type = nonEmpty(seg.get(field, 5, undefined, rep)) ?? authority?.identifierType ?? null;
    return { system, value, type };
  }

  /** Every non-empty CX repetition of a field, assigning authority kept. */
  cxList(seg: Seg, field: number): Identifier[] {
    const out: Identifier[] = [];
    for (let r = 0; r < seg.repetitionCount(field); r++) {
      const id = this.cx(seg, field, r);
      if (id) out.push(id);
    }
    return out;
  }

  /** EI (entity identifier: id ^ namespace ^ universal id ^ type) → Identifier, e.g. an order number. */
  ei(seg: Seg | undefined, field: number): Identifier | null {
    if (!seg) return null;
    const value = this.idPart(seg, field, 1, undefined, 0, 'identifier');
    if (value === '') return null;
    const system = systemForHl7Authority(
      {
        namespaceId: this.idPart(seg, field, 2, undefined, 0, 'assigning authority'),
        universalId: this.idPart(seg, field, 3, undefined, 0, 'assigning authority'),
        universalIdType: seg.get(field, 4),
      },
      this.ctx.policy,
    );
    return { system, value, type: null };
  }

  /** One EI packed as subcomponents of a component (EIP placer ^ filler parts, e.g. SPM-2.1 / SPM-2.2). */
  eiInComponent(seg: Seg | undefined, field: number, component: number): Identifier | null {
    if (!seg) return null;
    const part = (n: number) =>
      this.idPart(seg, field, component, n, 0, n === 1 ? 'identifier' : 'assigning authority');
    const value = part(1);
    if (value === '') return null;
    const system = systemForHl7Authority(
      { namespaceId: part(2), universalId: part(3), universalIdType: seg.get(field, component, 4) },
      this.ctx.policy,
    );
    return { system, value, type: null };
  }

  /** PID-3 identifiers and the enterprise patient id; AE 101 PID-3 when there is none. */
  patient(pid: Seg): { patientId: string; identifiers: Identifier[] } {
    const identifiers = this.cxList(pid, 3);
    const patientId = enterprisePatientId(identifiers, this.ctx.policy);
    if (patientId === undefined) {
      throw refuse('AE', '101', 'required field PID-3 (patient identifier list) is missing', loc(pid, 3));
    }
    return { patientId, identifiers };
  }

  /** Enterprise id of a retired record (MRG-1), derived exactly as for PID-3. */
  mergedPatientId(identifiers: Identifier[]): string {
    // The caller has checked the list is non-empty, and every entry has a value.
    return enterprisePatientId(identifiers, this.ctx.policy) ?? '';
  }

  name(seg: Seg, field: number, rep: number): HumanName | null {
    const family = seg.get(field, 1, 1, rep);
    const given = [
      seg.get(field, 2, undefined, rep),
      ...seg.get(field, 3, undefined, rep).split(/\s+/),
    ].filter((g) => g !== '');
    if (family === '' && given.length === 0) return null;
    return {
      family: nonEmpty(family),
      given,
      suffix: nonEmpty(seg.get(field, 4, undefined, rep)),
      prefix: nonEmpty(seg.get(field, 5, undefined, rep)),
      use: nameUseFor(seg.get(field, 7, undefined, rep)),
    };
  }

  /** XAD repetition → Address (XAD-7 gives both use and type: M mailing is type postal, H home is use home). */
  address(seg: Seg, field: number, rep: number): Address | null {
    const lines = [seg.get(field, 1, 1, rep), seg.get(field, 2, undefined, rep)].filter((l) => l !== '');
    const a: Address = {
      lines,
      city: nonEmpty(seg.get(field, 3, undefined, rep)),
      state: nonEmpty(seg.get(field, 4, undefined, rep)),
      postalCode: nonEmpty(seg.get(field, 5, undefined, rep)),
      country: nonEmpty(seg.get(field, 6, undefined, rep)),
      use: addressUseFor(seg.get(field, 7, undefined, rep)),
      type: addressTypeFor(seg.get(field, 7, undefined, rep)),
    };
    return lines.length === 0 && !a.city && !a.state && !a.postalCode && !a.country ? null : a;
  }

  /**
   * XTN repetitions of a field that is not part of Demographics.telecom (ORC-14 call-back phone,
   * NK1-5/6): the same reading as PID-13/14, with no `part`.
   */
  contactPoints(seg: Seg | undefined, field: number, fallbackUse: string): ContactPoint[] {
    return seg ? this.telecom(seg, field, fallbackUse, null) : [];
  }

  /** XTN repetitions of one field; `part` says which telecom part (PID-13 home / PID-14 work) they are. */
  private telecom(seg: Seg, field: number, fallbackUse: string, part: string | null): ContactPoint[] {
    const out: ContactPoint[] = [];
    for (let r = 0; r < seg.repetitionCount(field); r++) {
      const use2 = seg.get(field, 2, undefined, r);
      const equip = seg.get(field, 3, undefined, r);
      const email = seg.get(field, 4, undefined, r);
      const composed = [
        seg.get(field, 5, undefined, r) && `+${seg.get(field, 5, undefined, r)}`,
        seg.get(field, 6, undefined, r),
        seg.get(field, 7, undefined, r),
        seg.get(field, 8, undefined, r) && `x${seg.get(field, 8, undefined, r)}`,
      ]
        .filter((p) => p !== '')
        .join(' ');
      const system = email !== '' ? 'email' : telecomSystemFor(use2, equip);
      const value =
        (system === 'email' ? email || seg.get(field, 1, undefined, r) : '') ||
        seg.get(field, 1, undefined, r) ||
        composed;
      if (value === '') continue;
      out.push({ system, value, use: telecomUseFor(use2, equip, fallbackUse), part });
    }
    return out;
  }

  /**
   * One coding triplet of a CWE (code ^ text ^ system, with its version and system OID
   * components), or null when it has no code. A triplet with a code but no system name takes the
   * system OID (CWE-14/17/20, v2.7+) as `urn:oid:`, else `defaultSystem` (first triplet of a
   * table-bound field only), else the sender's local system.
   */
  private coding(read: (n: number) => string, t: CodingTriplet, defaultSystem?: string): Coding | null {
    const code = read(t.code);
    if (code === '') return null;
    const name = read(t.system);
    const oid = t.oid === undefined ? '' : read(t.oid);
    const system =
      name !== ''
        ? codingSystemFor(name, this.sourceSystem)
        : oid !== ''
          ? `urn:oid:${oid}`
          : (defaultSystem ?? codingSystemFor('', this.sourceSystem));
    return { system, code, display: nonEmpty(read(t.text)), version: nonEmpty(read(t.version)) };
  }

  /** A CWE whose components `read` returns (1-based) → Code; see {@link code}. */
  private cwe(read: (n: number) => string, defaultSystem?: string): Code | null {
    const codings = CWE_TRIPLETS.map((t, i) =>
      this.coding(read, t, i === 0 ? defaultSystem : undefined),
    ).filter((c): c is Coding => c !== null);
    const [primary, ...alternates] = codings;
    if (!primary) return null;
    return { ...primary, alternates, text: nonEmpty(read(9)) };
  }

  /**
   * CE/CWE/CNE → Code, every coding kept: components 1-3 the primary coding (7 its version),
   * 4-6 the alternate (8 its version), 10-12 the second alternate (v2.7+, 13 its version), 9 the
   * original text. When the primary triplet is empty the first coded triplet is primary, so a
   * value sent only as a local alternate keeps its code. `defaultSystem` names the HL7 table of a
   * table-bound field (ID/IS sent bare). Null when no triplet has a code: see {@link codeOrText}
   * for fields where text alone is a value.
   */
  code(seg: Seg | undefined, field: number, rep = 0, defaultSystem?: string): Code | null {
    if (!seg) return null;
    return this.cwe((n) => seg.get(field, n, undefined, rep), defaultSystem);
  }

  /**
   * A CWE packed as subcomponents of one component (OBR-15.1 specimen source, OBR-15.4 body
   * site in the SPS type), read as {@link codeOrText} reads a field.
   */
  codeInComponent(
    seg: Seg | undefined,
    field: number,
    component: number,
    defaultSystem?: string,
  ): Code | null {
    if (!seg) return null;
    const read = (n: number): string => seg.get(field, component, n);
    return this.cwe(read, defaultSystem) ?? textConcept(read(9) || read(2));
  }

  /**
   * Like {@link code}, but a repetition that carries only text (CWE-9, else CWE-2; no code in any
   * triplet) is kept as the hub's text-only concept, as the FHIR adapter keeps a CodeableConcept
   * with only text: system `urn:hub:text` (TEXT_SYSTEM), the text as code and display, and in
   * `text`. Used where the text is the value itself (an OBX-5 coded answer, a reason, a comment
   * type), never for codes that identify something (OBX-3, OBR-4), which stay refusable.
   */
  codeOrText(seg: Seg | undefined, field: number, rep = 0, defaultSystem?: string): Code | null {
    if (!seg) return null;
    const coded = this.code(seg, field, rep, defaultSystem);
    if (coded) return coded;
    return textConcept(seg.get(field, 9, undefined, rep) || seg.get(field, 2, undefined, rep));
  }

  /** Every non-empty repetition of a coded field, in order (text-only repetitions kept). */
  codeList(seg: Seg | undefined, field: number, defaultSystem?: string): Code[] {
    if (!seg) return [];
    const out: Code[] = [];
    for (let r = 0; r < seg.repetitionCount(field); r++) {
      const c = this.codeOrText(seg, field, r, defaultSystem);
      if (c) out.push(c);
    }
    return out;
  }

  /** A coded value from an HL7 table given as a bare ID/IS (or CE/CWE) field. */
  tableCode(seg: Seg | undefined, field: number, table: string): Code | null {
    return this.code(seg, field, 0, V2_TABLE(table));
  }

  /**
   * PID → Demographics with HL7 v2 chapter 2 null semantics: a field not sent (empty) is named in
   * `notSent` (readers keep their stored value), a field sent as `""` in `cleared` (readers delete
   * it), and a sent field is the new value (a repeating field replaces the whole stored list).
   * PID-13 and PID-14 are the separate parts telecom.home / telecom.work (ContactPoint.part).
   */
  demographics(pid: Seg, identifiers: Identifier[]): Demographics {
    const notSent: string[] = [];
    const cleared: string[] = [];
    /** Whether field n carries a value to read; otherwise records it as not sent or cleared. */
    const sent = (n: number, name: string): boolean => {
      if (pid.isNull(n)) cleared.push(name);
      else if (!pid.isSent(n)) notSent.push(name);
      else return true;
      return false;
    };
    const names: HumanName[] = [];
    if (sent(5, 'names')) {
      for (let r = 0; r < pid.repetitionCount(5); r++) {
        const n = this.name(pid, 5, r);
        if (n) names.push(n);
      }
    }
    let birthDate: string | null = null;
    if (sent(7, 'birthDate')) {
      const birth = parseHl7Date(pid.get(7));
      if (birth === 'invalid') {
        throw refuse('AE', '102', 'PID-7 (date of birth) is not a valid HL7 date', loc(pid, 7));
      }
      birthDate = birth.date;
    }
    const administrativeGender = sent(8, 'administrativeGender') ? genderFor(pid.get(8)) : null;
    const addresses: Address[] = [];
    if (sent(11, 'addresses')) {
      for (let r = 0; r < pid.repetitionCount(11); r++) {
        const a = this.address(pid, 11, r);
        if (a) addresses.push(a);
      }
    }
    const telecom = [
      ...(sent(13, 'telecom.home') ? this.telecom(pid, 13, 'home', 'home') : []),
      ...(sent(14, 'telecom.work') ? this.telecom(pid, 14, 'work', 'work') : []),
    ];
    const language = sent(15, 'language') ? this.code(pid, 15, 0, V2_TABLE('0296')) : null;
    const maritalStatus = sent(16, 'maritalStatus') ? this.tableCode(pid, 16, '0002') : null;
    // PID-29 (death time) and PID-30 (death indicator) are two fields; a death time also says
    // "deceased", and an explicit N deletes a stored death time that would contradict it.
    const deceasedAt = pid.isSent(29) && !pid.isNull(29) ? instantOf(this.time(pid, 29)) : null;
    const flag = pid.isNull(30) ? '' : pid.get(30).toUpperCase();
    let deceased: boolean | null = null;
    if (deceasedAt !== null || flag === 'Y') deceased = true;
    else if (flag === 'N') deceased = false;
    else if (pid.isNull(30)) cleared.push('deceased');
    else if (!pid.isSent(30)) notSent.push('deceased');
    if (pid.isNull(29)) cleared.push('deceasedAt');
    else if (!pid.isSent(29)) (deceased === false ? cleared : notSent).push('deceasedAt');
    return {
      identifiers,
      names,
      birthDate,
      administrativeGender,
      deceased,
      deceasedAt,
      addresses,
      telecom,
      maritalStatus,
      language,
      notSent,
      cleared,
      race: [],
      ethnicity: [],
      religion: null,
      contacts: [],
      primaryCareProvider: null,
    };
  }

  /** PL (point of care ^ room ^ bed ^ facility) → Location; null when empty. */
  location(seg: Seg | undefined, field: number): Location | null {
    if (!seg) return null;
    const l: Location = {
      facility: nonEmpty(seg.get(field, 4, 1) || seg.get(field, 4, 2)),
      unit: nonEmpty(seg.get(field, 1)),
      room: nonEmpty(seg.get(field, 2)),
      bed: nonEmpty(seg.get(field, 3)),
    };
    return l.facility || l.unit || l.room || l.bed ? l : null;
  }

  /**
   * XCN (id ^ family ^ given ^ middle ^ suffix ^ prefix ^ degree ^ source table ^ authority(9) ^
   * name type(10) ^ ... ^ identifier type(13)) → Practitioner; null when empty. XCN has no
   * telecom: the caller passes the field that carries the person's numbers (ORC-14 for the
   * ordering provider).
   */
  practitioner(
    seg: Seg | undefined,
    field: number,
    rep = 0,
    telecom: ContactPoint[] = [],
  ): Practitioner | null {
    if (!seg) return null;
    const idValue = this.idPart(seg, field, 1, undefined, rep, 'identifier');
    const family = seg.get(field, 2, 1, rep);
    const given = [seg.get(field, 3, undefined, rep), seg.get(field, 4, undefined, rep)].filter(
      (g) => g !== '',
    );
    if (idValue === '' && family === '' && given.length === 0) return null;
    const id: Identifier | null =
      idValue === ''
        ? null
        : {
            system: systemForHl7Authority(
              {
                namespaceId: this.idPart(seg, field, 9, 1, rep, 'assigning authority'),
                universalId: this.idPart(seg, field, 9, 2, rep, 'assigning authority'),
                universalIdType: seg.get(field, 9, 3, rep),
              },
              this.ctx.policy,
            ),
            value: idValue,
            type: nonEmpty(seg.get(field, 13, undefined, rep)),
          };
    const name: HumanName | null =
      family === '' && given.length === 0
        ? null
        : {
            family: nonEmpty(family),
            given,
            suffix: nonEmpty(seg.get(field, 5, undefined, rep)),
            prefix: nonEmpty(seg.get(field, 6, undefined, rep)),
            use: nameUseFor(seg.get(field, 10, undefined, rep)),
          };
    return { id, name, telecom };
  }

  /** NDL/CM (OBR-32 interpreter): a CNN packed as subcomponents of component 1. */
  practitionerNdl(seg: Seg | undefined, field: number): Practitioner | null {
    if (!seg) return null;
    const sub = (n: number) => seg.get(field, 1, n);
    const idValue = this.idPart(seg, field, 1, 1, 0, 'identifier');
    const family = sub(2);
    const given = [sub(3), sub(4)].filter((g) => g !== '');
    if (idValue === '' && family === '' && given.length === 0) return null;
    return {
      id:
        idValue === ''
          ? null
          : {
              system: systemForHl7Authority(
                {
                  namespaceId: this.idPart(seg, field, 1, 9, 0, 'assigning authority'),
                  universalId: this.idPart(seg, field, 1, 10, 0, 'assigning authority'),
                  universalIdType: sub(11),
                },
                this.ctx.policy,
              ),
              value: idValue,
              type: null,
            },
      name:
        family === '' && given.length === 0
          ? null
          : {
              family: nonEmpty(family),
              given,
              suffix: nonEmpty(sub(5)),
              prefix: nonEmpty(sub(6)),
              use: null,
            },
      telecom: [],
    };
  }

  /**
   * The visit an ADT/order/result message is about: PV1-19 visit number,
   * else PID-18 account number (outpatient feeds often have only that).
   */
  visitNumber(pv1: Seg | undefined, pid: Seg | undefined): Identifier | null {
    return (pv1 && this.cx(pv1, 19)) ?? (pid && this.cx(pid, 18)) ?? null;
  }

  requireVisit(pv1: Seg, pid: Seg | undefined): { visit: Identifier; encounterId: string } {
    const visit = this.visitNumber(pv1, pid);
    if (!visit) {
      throw refuse(
        'AE',
        '101',
        'required field PV1-19 (visit number) is missing and PID-18 is empty',
        loc(pv1, 19),
      );
    }
    return { visit, encounterId: encounterIdFor(visit) };
  }
}
