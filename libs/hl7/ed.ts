import { createHash } from 'node:crypto';

/**
 * HL7 v2 ED (encapsulated data) in OBX-5, the way lab and imaging systems
 * send PDF reports and images:
 *
 *   OBX-5 = source application ^ type of data ^ data subtype ^ encoding ^ data
 *
 * (HL7 v2.5.1 chapter 2A.2.24; type of data: table 0191, subtype: table 0291,
 * encoding: table 0299 = A | Hex | Base64). The data component is decoded
 * for HL7 escape sequences by the message reader first (a sender must escape
 * its delimiters inside the data), then for its encoding here. Pure.
 */

export type EdEncoding = 'A' | 'Hex' | 'Base64';

export type EdDecodeResult =
  | { ok: true; bytes: Buffer }
  /** missing: ED.4 empty; unknown: not in table 0299; invalid: the data is not in its declared encoding. */
  | { ok: false; problem: 'missing-encoding' | 'unknown-encoding' | 'invalid-data' };

/** Table 0299, matched without regard to case (senders write BASE64, base64, HEX). */
export function edEncoding(raw: string): EdEncoding | null {
  switch (raw.trim().toUpperCase()) {
    case 'A':
      return 'A';
    case 'HEX':
      return 'Hex';
    case 'BASE64':
      return 'Base64';
    default:
      return null;
  }
}

// Line breaks and blanks inside encoded data are layout, not data (RFC 2045
// lets base64 be wrapped; senders wrap with \.br\ or \X0D0A\, which the
// escape decoding turned into newlines).
const LAYOUT = /[\r\n\t ]+/g;
const NOT_BASE64 = /[^A-Za-z0-9+/=]/;
const NOT_HEX = /[^0-9A-Fa-f]/;

/**
 * Strict base64 (RFC 4648 alphabet, padding only at the end): Node's decoder
 * skips characters it does not know, so without this a damaged PDF would be
 * stored as a different, silently truncated one. Unpadded input is accepted
 * when its length can only be unpadded base64.
 */
export function decodeBase64Strict(text: string): Buffer | null {
  const s = text.replace(LAYOUT, '');
  if (NOT_BASE64.test(s)) return null;
  const pad = s.indexOf('=');
  if (pad >= 0) {
    const tail = s.length - pad;
    if (tail > 2 || s.slice(pad) !== '='.repeat(tail) || s.length % 4 !== 0) return null;
  } else if (s.length % 4 === 1) {
    return null;
  }
  return Buffer.from(s, 'base64');
}

export function decodeHexStrict(text: string): Buffer | null {
  const s = text.replace(LAYOUT, '');
  if (s.length % 2 !== 0 || NOT_HEX.test(s)) return null;
  return Buffer.from(s, 'hex');
}

/** ED.5 (already escape-decoded) in the encoding ED.4 declares. */
export function decodeEdData(data: string, encodingRaw: string): EdDecodeResult {
  if (encodingRaw.trim() === '') return { ok: false, problem: 'missing-encoding' };
  const enc = edEncoding(encodingRaw);
  if (!enc) return { ok: false, problem: 'unknown-encoding' };
  const bytes =
    enc === 'Base64'
      ? decodeBase64Strict(data)
      : enc === 'Hex'
        ? decodeHexStrict(data)
        : // "A": displayable text, no encoding; kept as UTF-8.
          Buffer.from(data, 'utf8');
  return bytes ? { ok: true, bytes } : { ok: false, problem: 'invalid-data' };
}

const MIME_TOP = new Set(['application', 'audio', 'image', 'model', 'text', 'video', 'multipart']);
const TOKEN = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

/** Table 0291 subtypes (and the spellings senders use) with one obvious media type. */
const SUBTYPES: Readonly<Record<string, string>> = {
  pdf: 'application/pdf',
  jpeg: 'image/jpeg',
  jpg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  tiff: 'image/tiff',
  tif: 'image/tiff',
  bmp: 'image/bmp',
  pict: 'image/pict',
  html: 'text/html',
  xml: 'application/xml',
  sgml: 'text/sgml',
  rtf: 'application/rtf',
  postscript: 'application/postscript',
  'octet-stream': 'application/octet-stream',
  dicom: 'application/dicom',
  'x-hl7-cda-level-one': 'application/x-hl7-cda-level-one+xml',
  basic: 'audio/basic',
  plain: 'text/plain',
  msword: 'application/msword',
};

/**
 * The MIME type of ED data from ED.2 (type of data) and ED.3 (subtype).
 * HL7 v2.3+ allows MIME names there (`application` ^ `pdf`); older feeds
 * send table 0191 codes (`AP` ^ `PDF`, `IM` ^ `JPEG`). Falls back on the
 * bytes only for what is unmistakable (`%PDF-`), else octet-stream.
 */
export function edContentType(typeOfData: string, subtype: string, bytes: Buffer): string {
  const declared = declaredContentType(typeOfData, subtype);
  if (declared) return declared;
  if (bytes.subarray(0, 5).toString('latin1') === '%PDF-') return 'application/pdf';
  return 'application/octet-stream';
}

/** BCP 13 (MIME types), the code system FHIR binds Attachment.contentType to: an RP value's valueCode. */
export const MIME_TYPE_SYSTEM = 'urn:ietf:bcp:13';

/**
 * The MIME type that a type of data and subtype name (ED.2/ED.3, RP.3/RP.4: both table 0191 and
 * 0291, or MIME names), or null when they name none: an RP value points at content the hub does
 * not hold, so there are no bytes to look at and no type is guessed.
 */
export function declaredContentType(typeOfData: string, subtype: string): string | null {
  const type = typeOfData.trim().toLowerCase();
  const sub = subtype.trim().toLowerCase();
  if (MIME_TOP.has(type) && TOKEN.test(sub)) return `${type}/${sub}`;
  const known = SUBTYPES[sub];
  if (known) return known;
  if ((type === 'im' || type === 'si' || type === 'ns') && TOKEN.test(sub)) return `image/${sub}`;
  if (type === 'au' && TOKEN.test(sub)) return `audio/${sub}`;
  if (type === 'text' || type === 'tx' || type === 'ft') return 'text/plain';
  return null;
}

/** Content address: lower-case hex SHA-256 (AttachmentRef.sha256). */
export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** FHIR R4 Attachment.hash: base64 of the SHA-1 of the data. */
export function sha1Base64(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('base64');
}
