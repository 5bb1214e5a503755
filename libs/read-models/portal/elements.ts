import type {
  Address as FhirAddress,
  Annotation,
  ContactPoint as FhirContactPoint,
  HumanName as FhirHumanName,
  Practitioner as FhirPractitioner,
  Identifier as FhirIdentifier,
  Quantity,
  Reference,
  Specimen as FhirSpecimen,
} from '@medplum/fhirtypes';
import type {
  Address,
  Code,
  ContactPoint,
  HumanName,
  Identifier,
  Note,
  Practitioner,
  Specimen,
} from '../../events/index.js';
import { canonicalSystem, V2_TABLE } from '../../terminology/code-systems.js';
import { toFhirConcept, isValidV2Code } from '../../terminology/v2-fhir.js';

/**
 * FHIR R4 data types the portal's resources share, built from event records. Pure. Times are
 * rendered by the caller's `At` (the event's sourceTimes know how each instant was sent).
 */

/** Renders an event's instant field (path in the event, epoch ms) as the source sent it. */
export interface Times {
  /** A FHIR dateTime: the sender's precision and offset. */
  dateTime(field: string, ms: number): string;
  /** A FHIR instant: full precision, the sender's offset. */
  instant(field: string, ms: number): string;
}

/** An identifier with its v2-0203 type (Identifier.type as FHIR binds it); a code the table lacks as text. */
export function identifierOf(i: Identifier, type?: string | null): FhirIdentifier {
  const code = type ?? i.type;
  return {
    ...(code
      ? {
          type: isValidV2Code('0203', code)
            ? { coding: [{ system: V2_TABLE('0203'), code }] }
            : { text: code },
        }
      : {}),
    ...(i.system ? { system: i.system } : {}),
    value: i.value,
  };
}

const NAME_USES = new Set(['usual', 'official', 'temp', 'nickname', 'anonymous', 'old', 'maiden']);

export function humanNameOf(n: HumanName): FhirHumanName {
  return {
    ...(n.use && NAME_USES.has(n.use) ? { use: n.use as NonNullable<FhirHumanName['use']> } : {}),
    ...(n.family ? { family: n.family } : {}),
    given: n.given,
    ...(n.prefix ? { prefix: [n.prefix] } : {}),
    ...(n.suffix ? { suffix: [n.suffix] } : {}),
  };
}

/** A name as one line of text (Reference.display): given names, family name. */
export function nameText(n: HumanName | null | undefined): string | undefined {
  if (!n) return undefined;
  const parts = [n.prefix, ...n.given, n.family, n.suffix].filter((x): x is string => Boolean(x));
  return parts.length > 0 ? parts.join(' ') : undefined;
}

const ADDRESS_USES = new Set(['home', 'work', 'temp', 'old', 'billing']);
const ADDRESS_TYPES = new Set(['postal', 'physical', 'both']);

export function addressOf(a: Address): FhirAddress {
  return {
    ...(a.use && ADDRESS_USES.has(a.use) ? { use: a.use as NonNullable<FhirAddress['use']> } : {}),
    ...(a.type && ADDRESS_TYPES.has(a.type) ? { type: a.type as NonNullable<FhirAddress['type']> } : {}),
    line: a.lines,
    ...(a.city ? { city: a.city } : {}),
    ...(a.state ? { state: a.state } : {}),
    ...(a.postalCode ? { postalCode: a.postalCode } : {}),
    ...(a.country ? { country: a.country } : {}),
  };
}

const TELECOM_SYSTEMS = new Set(['phone', 'fax', 'email', 'pager', 'url', 'sms', 'other']);
const TELECOM_USES = new Set(['home', 'work', 'temp', 'old', 'mobile']);

export function contactPointOf(t: ContactPoint): FhirContactPoint {
  return {
    system: (TELECOM_SYSTEMS.has(t.system) ? t.system : 'other') as NonNullable<FhirContactPoint['system']>,
    value: t.value,
    ...(t.use && TELECOM_USES.has(t.use) ? { use: t.use as NonNullable<FhirContactPoint['use']> } : {}),
  };
}

/**
 * A clinician as a Reference by identifier and display only: the hub serves no Practitioner
 * resources, and a Reference without `reference` has nothing to resolve (every served reference
 * resolves). Undefined when neither is known (ref-1).
 */
export function practitionerRef(p: Practitioner | null | undefined): Reference<FhirPractitioner> | undefined {
  if (!p) return undefined;
  const display = nameText(p.name) ?? undefined;
  const id = p.id;
  if (!display && !id) return undefined;
  return {
    ...(id ? { identifier: { ...(id.system ? { system: id.system } : {}), value: id.value } } : {}),
    ...(display ? { display } : {}),
  };
}

/** NTE-2 source of comment (table 0105) as the author of the note. */
const NOTE_SOURCES: Readonly<Record<string, string>> = {
  L: 'Ancillary (filler) department',
  P: 'Orderer (placer)',
  O: 'Other system',
};

/**
 * Notes as FHIR Annotations: the text, the source of comment as `authorString` (HL7 NTE-2 in
 * words; a FHIR sender's authorString as sent), the time where sent. `field` is the path of the
 * notes list in the event (for the time's rendering).
 */
export function annotationsOf(notes: readonly Note[], field: string, at: Times): Annotation[] {
  return notes.map((n, i) => ({
    ...(n.source ? { authorString: NOTE_SOURCES[n.source.toUpperCase()] ?? n.source } : {}),
    ...(n.authoredAt !== null ? { time: at.dateTime(`${field}[${i}].authoredAt`, n.authoredAt) } : {}),
    text: n.text,
  }));
}

/**
 * A quantity with its unit: `unit` as the sender wrote it, `system`/`code` from the unit coding
 * (UCUM where the sender said so; qty-3: a code only with its system).
 */
export function quantityOf(
  value: number,
  unit: string | null,
  unitCode: Code | null,
  comparator?: string | null,
): Quantity {
  const system = unitCode ? canonicalSystem(unitCode.system) : '';
  const shown = unit ?? unitCode?.display ?? unitCode?.code;
  return {
    value,
    ...(comparator && ['<', '<=', '>=', '>'].includes(comparator)
      ? { comparator: comparator as NonNullable<Quantity['comparator']> }
      : {}),
    ...(shown ? { unit: shown } : {}),
    ...(unitCode && system !== '' ? { system, code: unitCode.code } : {}),
  };
}

/**
 * Specimens as resources contained in the one that references them (`#spec-n`): the hub keeps
 * specimens inside orders and reports, not as resources of their own, so a contained copy is
 * what makes `specimen` resolve. No subject inside: merges rewrite the container's subject only.
 * `field` is the path of the specimens list in the event.
 */
export function containedSpecimens(
  specimens: readonly Specimen[],
  field: string,
  at: Times,
): { contained: FhirSpecimen[]; refs: Reference<FhirSpecimen>[] } {
  const contained = specimens.map((s, i): FhirSpecimen => {
    const collection = {
      ...(s.collectedAt !== null && s.collectedUntil !== null
        ? {
            collectedPeriod: {
              start: at.dateTime(`${field}[${i}].collectedAt`, s.collectedAt),
              end: at.dateTime(`${field}[${i}].collectedUntil`, s.collectedUntil),
            },
          }
        : s.collectedAt !== null
          ? { collectedDateTime: at.dateTime(`${field}[${i}].collectedAt`, s.collectedAt) }
          : {}),
      ...(s.collectionMethod ? { method: toFhirConcept(s.collectionMethod) } : {}),
      ...(s.sourceSite ? { bodySite: toFhirConcept(s.sourceSite) } : {}),
    };
    return {
      resourceType: 'Specimen',
      id: `spec-${i + 1}`,
      ...(s.identifier ? { identifier: [identifierOf(s.identifier)] } : {}),
      ...(s.type ? { type: toFhirConcept(s.type) } : {}),
      ...(s.receivedAt !== null
        ? { receivedTime: at.instant(`${field}[${i}].receivedAt`, s.receivedAt) }
        : {}),
      ...(Object.keys(collection).length > 0 ? { collection } : {}),
    };
  });
  return { contained, refs: contained.map((c) => ({ reference: `#${c.id ?? ''}` })) };
}
