import type { DiagnosticReport, Observation } from '@medplum/fhirtypes';
import {
  deterministicEventId,
  noObservationDetail,
  type ClinicalEvent,
  type Code,
  type Identifier,
  type ObservationValue,
  type Specimen,
} from '../events/index.js';
import { MIME_TYPE_SYSTEM } from '../hl7/ed.js';
import { decodeAttachment, type DecodedAttachment, type LinkedAttachment } from './attachments.js';
import {
  concept,
  fhirCode,
  hubIdOfResource,
  identifiers,
  instant,
  metaFor,
  needSubject,
  practitioner,
  specimensOf,
  uniqueSpecimens,
  toHubIdentifier,
  type MapContext,
  type MapInput,
  type MapResult,
} from './map-common.js';
import { observationValue, observationValues, observedTime, resultStatus } from './map-observation.js';
import { categoryOf, orderNumbers } from './map-order.js';
import { errorIssue } from './outcome.js';
import { invalid, type Invalid } from './validate.js';

function attachmentRef(a: DecodedAttachment, fallbackTitle: string | null): ObservationValue['attachment'] {
  return { sha256: a.sha256, size: a.size, contentType: a.contentType, title: a.title ?? fallbackTitle };
}

/** An observation line that carries a document (ED content or an RP link) rather than a value. */
function documentValue(
  sequence: number,
  code: Code,
  status: string,
  doc: Pick<ObservationValue, 'valueType' | 'valueString' | 'valueCode' | 'attachment'>,
): ObservationValue {
  return {
    sequence,
    code,
    valueNumber: null,
    valueComparator: null,
    unit: null,
    referenceRange: null,
    interpretation: null,
    status,
    observedAt: null,
    ...doc,
    ...noObservationDetail(),
  };
}

/**
 * A presentedForm without data, as HL7 v2 carries a link to a document held elsewhere: an `RP`
 * (reference pointer) value, the same shape libs/hl7 map-result.ts gives OBX-2 = RP. The pointer
 * is valueString, the MIME type valueCode (BCP 13), the title the code's display (an ED value's
 * title falls back on the same display). Nothing is fetched: the content stays where it is.
 */
function linkValue(a: LinkedAttachment, sequence: number, c: Code, status: string): ObservationValue {
  return documentValue(sequence, { ...c, display: a.title ?? c.display }, status, {
    valueType: 'RP',
    valueString: a.url,
    valueCode: a.contentType ? fhirCode(MIME_TYPE_SYSTEM, a.contentType) : null,
    attachment: null,
  });
}

/**
 * A report's presentedForm entries follow its result Observations, one ED value each (code: the
 * report's code), the way an HL7 ORU carries its PDF in an OBX of type ED, so every reader finds
 * report attachments in one place: ObservationValue.attachment (the portal renders them back as
 * presentedForm → Binary). A form without data (a url) is an RP value instead, as HL7 sends a link.
 * (FHIR R4 Observation has no valueAttachment: the validator refuses it as an unknown element.)
 */
function presentedForms(
  r: DiagnosticReport,
  observations: ObservationValue[],
  c: Code,
  status: string,
): DecodedAttachment[] | Invalid {
  const lifted: DecodedAttachment[] = [];
  const seen = new Set<string>();
  const linked = new Set<string>();
  for (const [i, form] of (r.presentedForm ?? []).entries()) {
    const a = decodeAttachment(form, `DiagnosticReport.presentedForm[${i}]`);
    if (!a.ok) return invalid('attachment-invalid', a.status, [a.issue]);
    if (a.kind === 'link') {
      // The same link twice is one form, as the same content is.
      if (a.value.url !== null && linked.has(a.value.url)) continue;
      if (a.value.url !== null) linked.add(a.value.url);
      observations.push(linkValue(a.value, observations.length + 1, c, status));
      continue;
    }
    // The same content twice is one form (the portal shows each sha256 once).
    if (seen.has(a.value.sha256)) continue;
    seen.add(a.value.sha256);
    lifted.push(a.value);
    observations.push(
      documentValue(observations.length + 1, c, status, {
        valueType: 'ED',
        // The sender's own link to the same content (url and data both sent): kept, not served.
        valueString: a.value.url,
        valueCode: null,
        attachment: attachmentRef(a.value, c.display),
      }),
    );
  }
  return lifted;
}

/**
 * One AttachmentStored per content, ahead of the result that refers to it (one publish, before
 * the 201). Its event id is derived from patient and sha256 alone, exactly as for HL7 (libs/hl7
 * map-result.ts), so the same PDF sent by either route, again or in a correction, is one fact.
 */
function attachmentEvents(
  lifted: readonly DecodedAttachment[],
  patientId: string,
  input: MapInput,
  ctx: MapContext,
  occurredAt: number,
): ClinicalEvent[] {
  const seen = new Set<string>();
  const out: ClinicalEvent[] = [];
  for (const a of lifted) {
    if (seen.has(a.sha256)) continue;
    seen.add(a.sha256);
    out.push({
      type: 'AttachmentStored',
      data: {
        meta: {
          ...metaFor('AttachmentStored', out.length + 1, input, ctx, occurredAt),
          eventId: deterministicEventId(['attachment', patientId, a.sha256]),
        },
        patientId,
        sha256: a.sha256,
        size: a.size,
        contentType: a.contentType,
        data: a.data,
      },
    });
  }
  return out;
}

/**
 * Order numbers of a result, as HL7 OBR-2 / OBR-3 carry them: from basedOn[0] (its identifier,
 * else the ServiceRequest the adapter holds), the filler's also from the report's own FILL identifier.
 */
function resultOrderNumbers(r: Observation | DiagnosticReport, input: MapInput, ctx: MapContext) {
  const ref = r.basedOn?.[0];
  const fromRef = ref?.identifier ? toHubIdentifier(ref.identifier, ctx.policy) : null;
  const fromOrder = orderNumbers(identifiers(input.order?.identifier, ctx.policy));
  const own = identifiers(r.identifier, ctx.policy);
  const refIsFiller = fromRef?.type === 'FILL';
  const placer: Identifier | null =
    (!refIsFiller ? fromRef : null) ??
    fromOrder.placerOrderNumber ??
    own.find((i) => i.type === 'PLAC') ??
    null;
  const filler: Identifier | null =
    own.find((i) => i.type === 'FILL') ?? (refIsFiller ? fromRef : null) ?? fromOrder.fillerOrderNumber;
  return { placerOrderNumber: placer, fillerOrderNumber: filler };
}

/** The report's lines, the specimens they and it name, and the attachment content lifted out. */
function reportContent(
  r: Observation | DiagnosticReport,
  input: MapInput,
  ctx: MapContext,
  resultId: string,
  c: Code,
  status: string,
): { observations: ObservationValue[]; specimens: Specimen[]; lifted: DecodedAttachment[] } | Invalid {
  if (r.resourceType === 'Observation') {
    const refs = r.specimen ? [r.specimen] : [];
    return {
      observations: [observationValue(r, 1, resultId)],
      specimens: specimensOf(refs, r, input, ctx.policy),
      lifted: [],
    };
  }
  const members = input.resultObservations ?? [];
  const observations = observationValues(members, resultId);
  const lifted = presentedForms(r, observations, c, status);
  if (!Array.isArray(lifted)) return lifted;
  // The report's specimens, then any its observations name (contained in them, or resolved).
  const specimens = uniqueSpecimens([
    ...specimensOf(r.specimen, r, input, ctx.policy),
    ...members.flatMap((o) => specimensOf(o.specimen ? [o.specimen] : [], o, input, ctx.policy)),
  ]);
  return { observations, specimens, lifted };
}

function unmappableStatus(type: string, status: string | undefined): Invalid {
  return invalid('unmappable', 422, [
    errorIssue(
      'code-invalid',
      `${type}.status ${status ?? '(none)'} cannot be mapped to a result`,
      `${type}.status`,
    ),
  ]);
}

export function mapResult(r: Observation | DiagnosticReport, input: MapInput, ctx: MapContext): MapResult {
  const type = r.resourceType;
  const subject = needSubject(input, type);
  if (typeof subject !== 'string') return subject;
  const st = resultStatus(r.status);
  if (!st) return unmappableStatus(type, r.status);
  const c = concept(r.code);
  if (!c) {
    return invalid('unmappable', 422, [
      errorIssue('required', `${type}.code needs a coding or text`, `${type}.code`),
    ]);
  }
  const resultId = input.previous?.hubId ?? hubIdOfResource(r, input.id, ctx.policy);
  const state = { hubId: resultId, patientKey: subject, status: r.status, location: null };
  // Carried inside the report of the same request: no result of its own (mapping.md).
  if (r.resourceType === 'Observation' && input.partOfReport) return { ok: true, events: [], state };
  const content = reportContent(r, input, ctx, resultId, c, st.status);
  if ('ok' in content) return content;
  const effectiveSent =
    r.effectiveDateTime ??
    r.effectivePeriod?.start ??
    (r.resourceType === 'Observation' ? r.effectiveInstant : undefined);
  const effectiveAt = instant(effectiveSent);
  const issuedAt = instant(r.issued);
  const orderCode = concept(input.order?.code);
  const common = {
    patientId: subject,
    resultId,
    orderId: input.orderId ?? null,
    encounterId: input.encounterId ?? null,
    code: c,
    category: categoryOf(r.category),
    status: st.status,
    effectiveAt,
    issuedAt,
    observations: content.observations,
    reportText: r.resourceType === 'DiagnosticReport' ? (r.conclusion ?? null) : null,
    performer: practitioner(r.performer?.[0], ctx.policy),
    // R4 DiagnosticReport has no note; an Observation's notes are on its line.
    notes: [],
    specimens: content.specimens,
    ...resultOrderNumbers(r, input, ctx),
    orderCode: orderCode && (orderCode.system !== c.system || orderCode.code !== c.code) ? orderCode : null,
  };
  const occurredAt = issuedAt ?? effectiveAt ?? ctx.recordedAt;
  const observationSources = r.resourceType === 'Observation' ? [r] : (input.resultObservations ?? []);
  const times: Record<string, string | undefined> = {
    'meta.occurredAt': r.issued ?? effectiveSent,
    effectiveAt: effectiveSent,
    issuedAt: r.issued,
    ...Object.fromEntries(
      observationSources.map((o, i) => [`observations[${i}].observedAt`, observedTime(o)]),
    ),
  };
  // A result first seen as amended is still a correction of something the source reported before.
  const result: ClinicalEvent =
    st.kind === 'corrected'
      ? {
          type: 'ResultCorrected',
          data: {
            ...common,
            meta: metaFor('ResultCorrected', 0, input, ctx, occurredAt, times),
            correctionReason: st.reason,
          },
        }
      : {
          type: 'ResultReported',
          data: { ...common, meta: metaFor('ResultReported', 0, input, ctx, occurredAt, times) },
        };
  return {
    ok: true,
    events: [...attachmentEvents(content.lifted, subject, input, ctx, occurredAt), result],
    state,
  };
}
