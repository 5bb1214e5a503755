import type { Attachment } from '@medplum/fhirtypes';
import { decodeBase64Strict, edContentType, sha1Base64, sha256Hex } from '../hl7/ed.js';
import { errorIssue, type FhirIssue } from './outcome.js';

/**
 * FHIR Attachment content (DiagnosticReport.presentedForm) under the
 * same policy as HL7 ED values (docs/large-messages.md): the base64 `data` is decoded strictly,
 * checked against the `size` and `hash` the sender declared, and lifted out of the result event
 * into an AttachmentStored event; the result keeps a reference (sha256, size, content type).
 * An Attachment without data (a `url` to a document held elsewhere, e.g. a PACS or document store)
 * is a link, carried as an HL7 `RP` (reference pointer) value, never refused. Pure.
 */

export interface DecodedAttachment {
  /** Lower-case hex SHA-256 of the bytes: the content's address. */
  sha256: string;
  size: number;
  contentType: string;
  title: string | null;
  /** The sender's own link to the same content, when it sent one beside the data. */
  url: string | null;
  data: Buffer;
}

/**
 * An Attachment without data: where the document is (`url`), what it is and its title, as sent.
 * (`size`, `hash`, `language` and `creation` describe content the hub does not hold: not carried.)
 */
export interface LinkedAttachment {
  url: string | null;
  contentType: string | null;
  title: string | null;
}

/** 400: the data is not base64, or does not match its declared size or hash. */
export interface AttachmentProblem {
  status: 400;
  issue: FhirIssue;
}

export type AttachmentResult =
  | { ok: true; kind: 'content'; value: DecodedAttachment }
  | { ok: true; kind: 'link'; value: LinkedAttachment }
  | ({ ok: false } & AttachmentProblem);

// FHIR R4 base64Binary (datatypes): groups of four base64 characters, whitespace allowed between
// them. Node's decoder would skip any other character and store a different, shorter file.
const WHITESPACE = /[\r\n\t ]+/g;

/** Strict FHIR base64Binary: the RFC 4648 alphabet, padded to a multiple of 4, blanks ignored. */
export function decodeFhirBase64(text: string): Buffer | null {
  if (text.replace(WHITESPACE, '').length % 4 !== 0) return null;
  return decodeBase64Strict(text);
}

/**
 * Decodes and checks one Attachment found at `path` (e.g. `DiagnosticReport.presentedForm[0]`).
 * Issues name the element (`….data`, `….size`, `….hash`), never its value. An Attachment with
 * only a `url` is valid FHIR R4 (documents in a PACS or document store are linked, not copied) and
 * is accepted as a link: the hub carries the pointer as the sender gave it (the content stays with
 * the system that holds it, as for an HL7 RP value), it does not fetch it.
 */
export function decodeAttachment(a: Attachment, path: string): AttachmentResult {
  if (a.data === undefined) {
    return {
      ok: true,
      kind: 'link',
      value: { url: a.url ?? null, contentType: a.contentType ?? null, title: a.title ?? null },
    };
  }
  const bytes = decodeFhirBase64(a.data);
  if (!bytes) {
    return {
      ok: false,
      status: 400,
      issue: errorIssue('value', 'Attachment.data is not valid base64 (FHIR base64Binary)', `${path}.data`),
    };
  }
  if (a.size !== undefined && a.size !== bytes.length) {
    return {
      ok: false,
      status: 400,
      issue: errorIssue(
        'value',
        'Attachment.size does not match the length of the decoded data',
        `${path}.size`,
      ),
    };
  }
  if (a.hash !== undefined) {
    const declared = decodeFhirBase64(a.hash);
    if (!declared || !declared.equals(Buffer.from(sha1Base64(bytes), 'base64'))) {
      return {
        ok: false,
        status: 400,
        issue: errorIssue(
          'value',
          'Attachment.hash is not the base64 SHA-1 of the decoded data',
          `${path}.hash`,
        ),
      };
    }
  }
  return {
    ok: true,
    kind: 'content',
    value: {
      sha256: sha256Hex(bytes),
      size: bytes.length,
      // FHIR att-1 wants a contentType with data, which the base validator does not enforce.
      // Without it: only what the bytes make unmistakable (%PDF-), else octet-stream, as for ED.
      contentType: a.contentType ?? edContentType('', '', bytes),
      title: a.title ?? null,
      url: a.url ?? null,
      data: bytes,
    },
  };
}

interface Located {
  path: string;
  attachment: Attachment;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isAttachmentLike(v: unknown): v is Attachment {
  return isObject(v) && (v['data'] === undefined || typeof v['data'] === 'string');
}

/**
 * The Attachments whose content the mapping lifts, with their element paths: a report's
 * presentedForm. (FHIR R4 Observation has no valueAttachment, R5 added it: the validator refuses
 * it as an unknown element.) Tolerates a malformed tree (the validator reports it).
 */
export function liftedAttachments(resource: unknown): Located[] {
  if (!isObject(resource) || resource['resourceType'] !== 'DiagnosticReport') return [];
  const forms = resource['presentedForm'];
  if (!Array.isArray(forms)) return [];
  const out: Located[] = [];
  forms.forEach((f, i) => {
    if (isAttachmentLike(f)) out.push({ path: `DiagnosticReport.presentedForm[${i}]`, attachment: f });
  });
  return out;
}

/** Every problem with the lifted Attachments of a resource (empty when there is none). */
export function attachmentProblems(resource: unknown): AttachmentProblem[] {
  const out: AttachmentProblem[] = [];
  for (const { path, attachment } of liftedAttachments(resource)) {
    const r = decodeAttachment(attachment, path);
    if (!r.ok) out.push({ status: r.status, issue: r.issue });
  }
  return out;
}

/** Stand-in for checked data: valid base64, so the base validator sees the element as sent. */
const CHECKED_DATA = 'AAAA';

/**
 * A copy of the resource in which checked Attachment data is replaced by a few bytes, for the
 * base validator: it refuses any string over 1 MB, and the hub's own check (strict base64,
 * size, hash) has already read the data. The original is not changed.
 */
export function withCheckedDataElided(resource: unknown): unknown {
  const located = liftedAttachments(resource);
  if (located.every((l) => l.attachment.data === undefined)) return resource;
  const node = resource as Record<string, unknown>;
  return {
    ...node,
    presentedForm: (node['presentedForm'] as unknown[]).map((a) =>
      isAttachmentLike(a) && a.data !== undefined ? { ...a, data: CHECKED_DATA } : a,
    ),
  };
}
