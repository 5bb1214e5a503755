/**
 * HL7 v2 message structures, required fields and coded-value tables the hub
 * validates against: data, not code (read by structure.ts).
 *
 * Source: the HL7 v2.3 to v2.8 standard (chapters 3 ADT, 4 orders, 7
 * observations, 2 control; HL7 table 0354 for the trigger → structure
 * choice). @medplum/core and @medplum/hl7 ship no message structure
 * definitions (only a segment/field parser), so the hub keeps this table.
 *
 * A structure is written in the standard's own abstract message syntax:
 * `[ x ]` optional, `{ x }` one or more, `[{ x }]` zero or more, segments by
 * their 3-character id. Each entry is a SKELETON of the standard structure:
 * it lists, in the standard's order and grouping, the segments the hub maps,
 * the segments the standard requires, and the segments that anchor a group
 * (SPM opens the specimen group whose OBX are not results of the order).
 * Every other segment (NTE, PD1, NK1, ROL, PV2, AL1, DG1, SFT, UAC, Z-segments,
 * ...) is not in the skeleton and is IGNORED wherever it appears: that is the
 * standard's rule for the recipient ("ignore segments ... that are present but
 * were not expected", chapter 2, message construction rules: §2.10 in v2.3,
 * §2.6.2 in v2.7), and it keeps the hub from refusing a message for the
 * position of a segment it never reads.
 *
 * ADT exception (issue #18): PD1, NK1, PV2, AL1, DG1 and IN2 ARE read, by name
 * and wherever they stand (map-adt-patient.ts, map-adt-clinical.ts; an IN2
 * belongs to the IN1 before it), yet stay out of the skeletons: the standard
 * orders them differently per structure and version (ADT_A03 in v2.3 has no
 * AL1/IN1, OBX moves between versions), and a misplaced next of kin is no
 * reason to refuse an admission. Their required fields the mapper needs (AL1-3,
 * DG1-3 or DG1-4) are checked by the mapper, with the same AE 101.
 */

export interface StructureDef {
  /** HL7 table 0354 message structure id. */
  id: string;
  /** MSH-9.1 message code. */
  code: string;
  /** MSH-9.2 trigger events using this structure (table 0354). */
  events: readonly string[];
  /** First and last MSH-12 versions this skeleton applies to (inclusive; 2.3 to 2.8.x). */
  from: string;
  to: string;
  /** Where the standard defines it (section numbers of v2.5.1 unless stated). */
  source: string;
  syntax: string;
}

export const STRUCTURES: readonly StructureDef[] = [
  // ADT (chapter 3). EVN, PID and PV1 are required in every ADT structure the
  // hub maps, in every version from 2.3 to 2.8; A28/A31 (ADT_A05) too: the
  // standard asks for PV1 with PV1-2 = N (not applicable) when there is no visit.
  {
    id: 'ADT_A01',
    code: 'ADT',
    events: ['A01', 'A04', 'A08', 'A13'],
    from: '2.3',
    to: '2.8',
    source: 'ch. 3 §3.3.1, 3.3.4, 3.3.8, 3.3.13',
    syntax: 'MSH EVN PID PV1 [{ IN1 }]',
  },
  {
    id: 'ADT_A05',
    code: 'ADT',
    events: ['A05', 'A28', 'A31'],
    from: '2.3',
    to: '2.8',
    source: 'ch. 3 §3.3.5, 3.3.28, 3.3.31',
    syntax: 'MSH EVN PID PV1 [{ IN1 }]',
  },
  {
    id: 'ADT_A02',
    code: 'ADT',
    events: ['A02'],
    from: '2.3',
    to: '2.8',
    source: 'ch. 3 §3.3.2',
    syntax: 'MSH EVN PID PV1',
  },
  {
    id: 'ADT_A03',
    code: 'ADT',
    events: ['A03'],
    from: '2.3',
    to: '2.8',
    source: 'ch. 3 §3.3.3',
    syntax: 'MSH EVN PID PV1',
  },
  {
    id: 'ADT_A09',
    code: 'ADT',
    events: ['A11'],
    from: '2.3',
    to: '2.8',
    source: 'ch. 3 §3.3.11',
    syntax: 'MSH EVN PID PV1',
  },
  {
    id: 'ADT_A12',
    code: 'ADT',
    events: ['A12'],
    from: '2.3',
    to: '2.8',
    source: 'ch. 3 §3.3.12',
    syntax: 'MSH EVN PID PV1',
  },
  {
    id: 'ADT_A39',
    code: 'ADT',
    events: ['A40'],
    from: '2.3',
    to: '2.8',
    source: 'ch. 3 §3.3.40 (PATIENT group: PID [PD1] MRG [PV1])',
    syntax: 'MSH EVN { PID MRG [ PV1 ] }',
  },
  // ORM^O01 (chapter 4, §4.4.1; withdrawn in v2.7, the hub keeps reading it
  // with the v2.6 definition). PATIENT is optional in the standard (the
  // mapper still needs PID to know whose order it is). ORDER_DETAIL is a
  // choice of OBR/RQD/RQ1/RXO/ODS/ODT: only OBR is mapped.
  {
    id: 'ORM_O01',
    code: 'ORM',
    events: ['O01'],
    from: '2.3',
    to: '2.8',
    source: 'ch. 4 §4.4.1',
    syntax: 'MSH [ PID [ PV1 ] ] { ORC [ OBR [{ OBX }] ] }',
  },
  // OML^O21 (chapter 4, §4.4.6 in v2.5.1; first defined in v2.4). v2.4 wraps
  // the orders in ORDER_GENERAL with an optional container (SAC + OBX) first
  // and a container group after OBR; v2.5 adds TQ1 (timing) after ORC and the
  // specimen group (SPM + OBX). PRIOR_RESULT: [PID] [PV1] { [ORC] OBR [{TQ1}] { OBX } }.
  {
    id: 'OML_O21',
    code: 'OML',
    events: ['O21'],
    from: '2.3',
    to: '2.4',
    source: 'v2.4 ch. 4 §4.4.6',
    syntax:
      'MSH [ PID [ PV1 ] ] { [ SAC [{ OBX }] ] { ORC [ OBR [{ SAC [{ OBX }] }] [{ OBX }] [{ [ PID ] [ PV1 ] { [ ORC ] OBR { OBX } } }] ] } }',
  },
  {
    id: 'OML_O21',
    code: 'OML',
    events: ['O21'],
    from: '2.5',
    to: '2.8',
    source: 'ch. 4 §4.4.6',
    syntax:
      'MSH [ PID [ PV1 ] ] { ORC [{ TQ1 }] [ OBR [{ OBX }] [{ SPM [{ OBX }] }] [{ [ PID ] [ PV1 ] { [ ORC ] OBR [{ TQ1 }] { OBX } } }] ] }',
  },
  // ORU^R01 (chapter 7, §7.3.1). In v2.3/2.4 the OBSERVATION group is
  // { [OBX] [{NTE}] }, i.e. zero or more OBX; v2.5 adds TIMING_QTY (TQ1) and
  // SPECIMEN (SPM + its OBX); v2.6 allows patient-level OBX after PID.
  {
    id: 'ORU_R01',
    code: 'ORU',
    events: ['R01'],
    from: '2.3',
    to: '2.4',
    source: 'ch. 7 §7.3.1 (v2.3 §7.2.1)',
    syntax: 'MSH { [ PID [ PV1 ] ] { [ ORC ] OBR [{ OBX }] } }',
  },
  {
    id: 'ORU_R01',
    code: 'ORU',
    events: ['R01'],
    from: '2.5',
    to: '2.5.1',
    source: 'ch. 7 §7.3.1',
    syntax: 'MSH { [ PID [ PV1 ] ] { [ ORC ] OBR [{ TQ1 }] [{ OBX }] [{ SPM [{ OBX }] }] } }',
  },
  {
    id: 'ORU_R01',
    code: 'ORU',
    events: ['R01'],
    from: '2.6',
    to: '2.8',
    source: 'v2.6/2.7 ch. 7 §7.3.1',
    syntax: 'MSH { [ PID [{ OBX }] [ PV1 ] ] { [ ORC ] OBR [{ TQ1 }] [{ OBX }] [{ SPM [{ OBX }] }] } }',
  },
];

export interface RequiredField {
  field: number;
  /** Field name for refusal messages (never a value). */
  name: string;
  /** Versions in which the standard marks it R (inclusive; default: 2.3 to 2.8). */
  from?: string;
  to?: string;
}

/**
 * Fields the standard marks R (required) in the segments the hub reads, per
 * version (segment attribute tables of chapters 2, 3, 4, 6, 7). Conditional
 * (C) fields are not listed: the mapper checks the conditions it depends on
 * (OBX-2 when OBX-5 is valued, OBR-25 derivable from OBX-11, ...).
 */
export const REQUIRED_FIELDS: Readonly<Record<string, readonly RequiredField[]>> = {
  MSH: [
    // MSH-1/2 are checked by the parser, MSH-10/12 before this table is read.
    { field: 7, name: 'date/time of message', from: '2.4' },
    { field: 9, name: 'message type' },
    { field: 11, name: 'processing id' },
  ],
  EVN: [
    { field: 1, name: 'event type code', to: '2.3' },
    { field: 2, name: 'recorded date/time', from: '2.3.1' },
  ],
  PID: [
    { field: 3, name: 'patient identifier list' },
    { field: 5, name: 'patient name' },
  ],
  PV1: [{ field: 2, name: 'patient class' }],
  MRG: [{ field: 1, name: 'prior patient identifier list' }],
  IN1: [
    { field: 1, name: 'set id' },
    { field: 2, name: 'insurance plan id', from: '2.3.1' },
    { field: 3, name: 'insurance company id' },
  ],
  ORC: [{ field: 1, name: 'order control' }],
  OBR: [{ field: 4, name: 'universal service identifier' }],
  OBX: [
    { field: 3, name: 'observation identifier' },
    { field: 11, name: 'observation result status' },
  ],
};

export interface CodedField {
  segment: string;
  field: number;
  name: string;
  /** HL7 table number. */
  table: string;
  /** Every value the table has in any version 2.3 to 2.8 (HL7-defined tables, not user-defined). */
  values: readonly string[];
}

/**
 * HL7-defined (not user-defined) tables of fields whose value the hub turns
 * into a fact: a value outside the table would be published as a wrong fact
 * (a typo in OBX-2 read as text, an unknown OBX-11 status replaced by the
 * report's), so it is refused with 103.
 */
export const CODED_FIELDS: readonly CodedField[] = [
  {
    segment: 'OBX',
    field: 2,
    name: 'value type',
    table: '0125',
    values: [
      'AD',
      'CE',
      'CF',
      'CK',
      'CN',
      'CNE',
      'CP',
      'CWE',
      'CX',
      'DR',
      'DT',
      'DTM',
      'ED',
      'FT',
      'ID',
      'IS',
      'MA',
      'MO',
      'NA',
      'NM',
      'PN',
      'RP',
      'SN',
      'ST',
      'TM',
      'TN',
      'TS',
      'TX',
      'XAD',
      'XCN',
      'XON',
      'XPN',
      'XTN',
    ],
  },
  {
    segment: 'OBX',
    field: 11,
    name: 'observation result status',
    table: '0085',
    values: ['C', 'D', 'F', 'I', 'N', 'O', 'P', 'R', 'S', 'U', 'W', 'X'],
  },
  {
    segment: 'OBR',
    field: 25,
    name: 'result status',
    table: '0123',
    values: ['A', 'C', 'F', 'I', 'O', 'P', 'R', 'S', 'X', 'Y', 'Z'],
  },
];
