import { HubError } from '../errors/index.js';
import { checkForEncode } from '../events/codec.js';
import type { ClinicalEvent } from '../events/index.js';
import { decodeHl7Bytes } from './decode.js';
import { mapAdt, ADT_TRIGGERS } from './map-adt.js';
import { mapOrder, ORDER_TRIGGERS } from './map-order.js';
import { mapResult, RESULT_TRIGGERS } from './map-result.js';
import { MapScope } from './scope.js';
import { validateStructure } from './structure.js';
import { checkMessageText } from './text.js';
import { Msg, RefusalSignal, loc, refuse } from './message.js';
import type { MapContext, MapOutcome, MessageHeader } from './types.js';

/**
 * HL7 v2 → hub events: the pure half of the HL7 adapter. Bytes of one MLLP
 * frame in; events or a refusal (AE/AR) out. No I/O, no clock, no randomness:
 * the same bytes and context always give the same outcome, which is what
 * makes a resend or a replay through a fixed mapper produce the same event ids.
 */

/** MSH-12 versions mapped. 2.6+ keep the 2.5.1 positions of every field read here. */
const SUPPORTED_VERSIONS = /^2\.(3(\.1)?|4|5(\.1)?|6|7(\.1)?|8(\.[12])?)$/;

function headerOf(msg: Msg): MessageHeader {
  const msh = msg.msh;
  return {
    fieldSeparator: msg.delimiters.field,
    encodingCharacters: msg.encodingCharacters,
    // As sent (components and escapes kept), so an ACK can echo them exactly.
    sendingApplication: msh.rawField(3),
    sendingFacility: msh.rawField(4),
    receivingApplication: msh.rawField(5),
    receivingFacility: msh.rawField(6),
    controlId: msh.get(10),
    messageCode: msh.get(9, 1).toUpperCase(),
    triggerEvent: msh.get(9, 2).toUpperCase(),
    messageStructure: msh.get(9, 3).toUpperCase(),
    processingId: msh.get(11, 1),
    version: msh.get(12, 1),
    acceptAckType: msh.get(15).toUpperCase(),
    applicationAckType: msh.get(16).toUpperCase(),
    charset: msg.charset,
  };
}

/** The MSH of a message, or null when there is no parseable MSH. Never throws. */
export function parseHeader(bytes: Buffer): MessageHeader | null {
  try {
    const decoded = decodeHl7Bytes(bytes);
    return headerOf(Msg.parse(decoded.text, decoded.charset));
  } catch {
    return null;
  }
}

/**
 * Maps one message. Never throws: anything unexpected becomes an AR refusal
 * with HL7 error 207, and the header is returned whenever MSH parsed so the
 * edge can always build a proper ACK.
 */
export function mapHl7Message(bytes: Buffer, ctx: MapContext): MapOutcome {
  let header: MessageHeader | null = null;
  try {
    const decoded = decodeHl7Bytes(bytes);
    const msg = Msg.parse(decoded.text, decoded.charset);
    header = headerOf(msg);
    const msh = msg.msh;
    if (!decoded.supported) {
      throw refuse('AR', '102', 'MSH-18 names a character set the hub does not decode', loc(msh, 18));
    }
    if (header.controlId === '') {
      throw refuse('AR', '101', 'MSH-10 (message control id) is missing', loc(msh, 10));
    }
    if (!SUPPORTED_VERSIONS.test(header.version)) {
      throw refuse('AR', '203', 'MSH-12 version is not supported (2.3 to 2.8)', loc(msh, 12));
    }
    // Bytes that are not the declared charset, NUL, \X escapes that are no character: AE 102.
    checkMessageText(msg, decoded.text, decoded.invalidUtf8Prefix);
    // Segments, required fields and coded values against the standard, before
    // any event exists: a truncated or malformed message publishes nothing.
    validateStructure(msg, header, { terminated: decoded.terminated });
    const scope = new MapScope(msg, header, ctx);
    const events = dispatch(header, scope);
    for (const e of events) {
      // A mapper bug must become a refusal here, not a poison record on a topic.
      // The codec does not check these events again (checkForEncode marks them).
      const paths = checkForEncode(e.type, e.data);
      if (paths.length > 0) {
        return {
          kind: 'refused',
          header,
          refusal: {
            ack: 'AR',
            hl7ErrorCode: '207',
            error: new HubError(
              'HUB_EVENT_INVALID',
              `mapped ${e.type} does not match its schema at: ${paths.join(', ')}`,
              {
                details: { hl7ErrorCode: '207', eventType: e.type, paths },
              },
            ),
          },
        };
      }
    }
    return { kind: 'mapped', header, events };
  } catch (err) {
    if (err instanceof RefusalSignal) return { kind: 'refused', header, refusal: err.refusal };
    // The cause is not attached: an exception message may quote message content (PHI).
    const kind = err instanceof Error ? err.name : typeof err;
    return {
      kind: 'refused',
      header,
      refusal: {
        ack: 'AR',
        hl7ErrorCode: '207',
        error: new HubError('HUB_INTERNAL', 'the HL7 mapper failed on this message', {
          details: { hl7ErrorCode: '207', exception: kind },
        }),
      },
    };
  }
}

function dispatch(h: MessageHeader, scope: MapScope): ClinicalEvent[] {
  const msh = scope.msg.msh;
  const known = (list: readonly string[]) => {
    if (!list.includes(h.triggerEvent)) {
      throw refuse(
        'AR',
        '201',
        `MSH-9.2 trigger event is not supported for ${h.messageCode}`,
        loc(msh, 9, 2),
      );
    }
  };
  switch (h.messageCode) {
    case 'ADT':
      known(ADT_TRIGGERS);
      return mapAdt(scope, h.triggerEvent);
    case 'ORM':
    case 'OML':
      known(ORDER_TRIGGERS[h.messageCode]);
      return mapOrder(scope);
    case 'ORU':
      known(RESULT_TRIGGERS);
      return mapResult(scope);
    default:
      throw refuse('AR', '200', 'MSH-9.1 message type is not supported', loc(msh, 9, 1));
  }
}

export { messageCorrelationId } from './scope.js';
