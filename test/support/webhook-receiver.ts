/**
 * A local receiver of the hub's signed webhooks, written against the
 * Standard Webhooks library (not the hub's code): it checks every
 * signature, records what arrived in order, and can be told to refuse one
 * event (400), to be down (503), or to close its port.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { WebhookEnvelope } from '../../libs/delivery/channels/webhook.js';

export interface ReceivedWebhook {
  /** When it arrived (Date.now()). */
  at: number;
  webhookId: string;
  envelope: WebhookEnvelope;
  /** The event's data as sent (JSON of the Avro record). */
  event: { meta: { eventId: string }; patientId: string } & Record<string, unknown>;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  badSignatures: number;
  /** Answer 503 to everything while true. */
  down: boolean;
  /** Event ids answered 400 (refused). */
  refuse: Set<string>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(secret: string, port = 0): Promise<WebhookReceiver> {
  const verifier = new Webhook(secret);
  const r: WebhookReceiver = {
    url: '',
    received: [],
    badSignatures: 0,
    down: false,
    refuse: new Set(),
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (r.down) {
        res.writeHead(503).end('down for maintenance');
        return;
      }
      let envelope: WebhookEnvelope;
      try {
        envelope = verifier.verify(body, req.headers as Record<string, string>) as WebhookEnvelope;
      } catch {
        r.badSignatures++;
        res.writeHead(401).end('bad signature');
        return;
      }
      const event = envelope.event as ReceivedWebhook['event'];
      if (r.refuse.has(event.meta.eventId)) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('ERR: unknown patient class');
        return;
      }
      r.received.push({ at: Date.now(), webhookId: String(req.headers['webhook-id']), envelope, event });
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((res) => server.listen(port, '127.0.0.1', () => res()));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/hub`;
  return r;
}
