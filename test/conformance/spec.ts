/**
 * The vocabulary of the conformance expectations (cases.ts). Plain data, so a
 * case reads as a specification: what is sent, what the sender gets back,
 * what the log holds afterwards and what the read models show.
 *
 * Aliases: events name patients, encounters, orders and results by alias
 * (`patient: 'AVERY'`). The first event that names an alias binds it to the
 * id the hub chose; every later mention must carry the same id. Patients
 * whose MRN is from a registered authority are bound up front to the key the
 * hub documents for (configured system, MRN) — see PATIENTS in cases.ts.
 * Read-model probes refer to bound ids as `{patient:AVERY}`,
 * `{encounter:AVERY-V1}`, `{order:PO30001}`, `{result:AVERY-CMP}`, and to the
 * read-model schemas as `{portal}`, `{billing}`, `{analytics}`.
 */

export type Rule = 'R0' | 'R1' | 'R2' | 'R3' | 'R4' | 'R5' | 'R6';

export const RULES: Record<Rule, string> = {
  R0: 'baseline: a good message of each kind is accepted, a bad envelope refused',
  R1: 'one assigning authority, one identifier system',
  R2: 'a time without an offset is the sender’s local time',
  R3: 'not sent ≠ deleted (""); a repeating field replaces the list',
  R4: 'a truncated or malformed message is not a result',
  R5: 'real reports are big (ED attachments)',
  R6: 'an identifier is what it looks like',
};

export type AckCode = 'AA' | 'AE' | 'AR';

export interface AckExpectation {
  /** MSA-1; a list when the standard allows either. */
  code: AckCode | AckCode[];
  /**
   * For refusals: some ERR segment has ERR-3.1 = `code` (HL7 table 0357) and
   * ERR-2 (ERL) starting with `location` (`OBX^2^11` also accepts
   * `OBX^2^11^1^1`; `PV1` accepts any PV1 location). A list: any of them.
   */
  err?: { code?: string | string[]; location?: string | string[] };
}

/** One entry of EventMeta.sourceTimes. */
export interface SourceTimeExpectation {
  field: string | RegExp;
  precision: 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second' | 'millisecond';
  /** A list where the corpus accepts either (the DST gap: the offset used to read it or the one in force). */
  offsetMinutes: number | number[];
  zoned: boolean;
}

export interface EventExpectation {
  type: string;
  patient?: string;
  encounter?: string;
  order?: string;
  result?: string;
  /** Partial match of the event's data (instants as epoch ms: use `utc()`). */
  data?: Record<string, unknown>;
  /** Each must be present in data.meta.sourceTimes. */
  sourceTimes?: SourceTimeExpectation[];
  /** Demographics.cleared / notSent must contain these (a RegExp matches one entry). */
  cleared?: (string | RegExp)[];
  notSent?: (string | RegExp)[];
  /** Must not be in these lists. */
  notCleared?: string[];
  notNotSent?: string[];
  /** Substrings that must not occur in the event's JSON (e.g. the HL7 delete marker `""`). */
  jsonExcludes?: string[];
  /** Upper bound of the event's JSON size: a large attachment travels once, not inside the result. */
  maxJsonBytes?: number;
}

export interface Probe {
  what: string;
  /** GET through the query API (staff token), e.g. `/fhir/Patient/{patient:AVERY}`. */
  fhir?: string;
  /** SQL against the read-model database; Date values in rows are compared as ISO strings. */
  sql?: string;
  /** toMatchObject on the FHIR resource (or first row). */
  match?: Record<string, unknown>;
  /** Exact rows (after Date → ISO). */
  rows?: Record<string, unknown>[];
  /** For a searchset Bundle: total, and resources that must be among the entries (partial match). */
  total?: number;
  contains?: Record<string, unknown>[];
  /** Keys of the resource that must be absent or an empty list. */
  empty?: string[];
  /** Keys of the resource whose array length is exactly this. */
  lengths?: Record<string, number>;
  /** Substrings that must not occur in the JSON answer. */
  excludes?: string[];
  /** The bytes of DiagnosticReport.presentedForm[0] (inline data or its url, read through the API). */
  presentedForm?: { contentType: string; sha256: string; size: number };
}

export interface Case {
  id: string;
  rule: Rule;
  /** What the case shows, for the test name. */
  what: string;
  /** File under messages/ (a resend names the file it resends). */
  file: string;
  /** MSH-10 (also MSA-2 of the ACK). */
  controlId: string;
  /** Message templates: `@@NAME@@` → base64 of the named payload (payloads.ts). */
  fill?: Record<string, 'PDF_5MB' | 'PDF_40KB' | 'PDF_17MIB'>;
  ack: AckExpectation;
  /**
   * The events this message adds to the log (any order; each type at most
   * once per message in this corpus). `[]`: nothing at all, on any topic.
   */
  events: EventExpectation[];
  /** The message is on the HL7 dead-letter topic with the ACK and error code as headers. */
  deadLettered?: boolean;
  /** Read-model facts after the projectors have caught up. */
  readModel?: Probe[];
}

/** An instant as epoch ms, written as the UTC ISO string it is. */
export const utc = (iso: string): number => {
  const t = Date.parse(iso);
  if (!iso.endsWith('Z') || Number.isNaN(t)) throw new Error(`utc(): not a UTC ISO instant: ${iso}`);
  return t;
};

/**
 * A FHIR dateTime that must be shown in the sender's local time with its
 * offset, e.g. `2026-02-10T08:00:00-05:00` (fractional zero seconds allowed).
 */
export interface LocalDateTime {
  localDateTime: string;
}
export const local = (s: string): LocalDateTime => ({ localDateTime: s });
