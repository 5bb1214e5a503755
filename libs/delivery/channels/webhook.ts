/**
 * The plain signed webhook: one POST per event, the body the Avro event as
 * JSON in an envelope, signed per Standard Webhooks (webhook-id,
 * webhook-timestamp, webhook-signature: HMAC-SHA256 over id.timestamp.body)
 * so a receiver can check origin and integrity with any of that spec's
 * libraries, and drop a resend by webhook-id (the delivery's idempotency key).
 */
import { Webhook } from 'standardwebhooks';
import type { ChannelSender, Delivery, WebhookChannel } from '../model.js';
import { post } from './http.js';

export interface WebhookEnvelope {
  /** The delivery's idempotency key, also webhook-id. */
  id: string;
  subscriptionId: string;
  eventNumber: number;
  eventType: string;
  topic: string;
  partition: number;
  offset: string;
  event: unknown;
}

/** JSON of a decoded event: bytes as base64 (AttachmentStored.data), bigints as text. */
export function eventJson(value: unknown): string {
  return JSON.stringify(value, (_k, x: unknown) => {
    if (typeof x === 'bigint') return x.toString();
    if (
      x &&
      typeof x === 'object' &&
      (x as { type?: unknown }).type === 'Buffer' &&
      Array.isArray((x as { data?: unknown }).data)
    )
      return Buffer.from((x as { data: number[] }).data).toString('base64');
    return x;
  });
}

export function webhookBody(d: Delivery): string {
  const envelope: WebhookEnvelope = {
    id: d.idempotencyKey,
    subscriptionId: d.subscription.id,
    eventNumber: d.eventNumber,
    eventType: d.record.event.type,
    topic: d.record.topic,
    partition: d.record.partition,
    offset: d.record.offset.toString(),
    event: d.record.event.data,
  };
  return eventJson(envelope);
}

export function createWebhookSender(channel: WebhookChannel, opts: { now(): number }): ChannelSender {
  if (!channel.secret) throw new Error('webhook subscription without a signing secret');
  const signer = new Webhook(channel.secret);
  return {
    async deliver(d) {
      const body = webhookBody(d);
      const at = new Date(opts.now());
      return post(
        channel.endpoint,
        body,
        {
          'content-type': 'application/json',
          'webhook-id': d.idempotencyKey,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': signer.sign(d.idempotencyKey, at, body),
          'idempotency-key': d.idempotencyKey,
        },
        channel.timeoutMs,
      );
    },
    close: () => Promise.resolve(),
  };
}
