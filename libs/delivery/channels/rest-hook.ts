/**
 * The FHIR rest-hook channel (Subscriptions R5 Backport IG, R4): one POST of
 * a notification Bundle (fhir.ts) per event to the subscriber's endpoint,
 * `Content-Type: application/fhir+json`, and a heartbeat Bundle when the
 * worker has sent nothing for the subscription's heartbeat period.
 *
 * Authentication is the subscriber's choice: the bearer token it gave
 * (`Authorization: Bearer`, the IG's channel.header), or an HMAC-SHA256
 * signature of every body per Standard Webhooks (webhook-id,
 * webhook-timestamp, webhook-signature over id.timestamp.body), which also
 * proves the body was not changed on the way. Every request carries the
 * delivery's idempotency key (`Idempotency-Key`, and webhook-id when
 * signed): the same for each attempt of one event, so that a receiver drops
 * what it already has (the Bundle's id is the same key).
 *
 * Answers are classified by channels/http.ts: 2xx delivered; 408, 429, 5xx,
 * a refused connection or a timeout unreachable (retried); any other 4xx
 * rejected with `http <status>: <first 500 characters of the body>`.
 */
import { Webhook } from 'standardwebhooks';
import { heartbeatBundle, notificationBundle, type BundleContext } from '../fhir.js';
import type { ChannelSender, Outcome, RestHookChannel, Subscription } from '../model.js';
import { post } from './http.js';

export interface RestHookOptions {
  /** The clock (ms): Bundle.timestamp and the signature's timestamp. */
  now(): number;
  /** The hub's FHIR base (`https://hub.example.org/fhir`): references when the channel names no fhirBase. */
  fhirBase: string;
}

export const FHIR_JSON_UTF8 = 'application/fhir+json; charset=utf-8';

export function createRestHookSender(channel: RestHookChannel, opts: RestHookOptions): ChannelSender {
  // Built once: a secret the signer cannot read fails here, at start-up, not on every event.
  const signer = channel.auth.type === 'hmac' ? new Webhook(channel.auth.secret) : null;
  const auth = channel.auth;

  function headersFor(key: string, body: string, at: Date): Record<string, string> {
    const common = {
      'content-type': FHIR_JSON_UTF8,
      accept: 'application/fhir+json',
      'idempotency-key': key,
    };
    if (auth.type === 'bearer') return { ...common, authorization: `Bearer ${auth.token}` };
    return {
      ...common,
      'webhook-id': key,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': signer?.sign(key, at, body) ?? '',
    };
  }

  function send(key: string, body: string, at: Date): Promise<Outcome> {
    return post(channel.endpoint, body, headersFor(key, body, at), channel.timeoutMs);
  }

  const context = (at: Date): BundleContext => ({ fhirBase: opts.fhirBase, at });

  return {
    deliver(d) {
      const at = new Date(opts.now());
      return send(d.idempotencyKey, JSON.stringify(notificationBundle(d, context(at))), at);
    },
    heartbeat(sub: Subscription, eventsSinceStart: number) {
      const at = new Date(opts.now());
      const bundle = heartbeatBundle(sub, eventsSinceStart, context(at));
      // The heartbeat's own id (from the subscription and the time) is its idempotency key.
      return send(bundle.id ?? sub.id, JSON.stringify(bundle), at);
    },
    close: () => Promise.resolve(),
  };
}
