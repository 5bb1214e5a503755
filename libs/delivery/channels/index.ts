import type { ChannelSender, Subscription } from '../model.js';
import type { Logger } from '../../telemetry/logger.js';
import { createWebhookSender } from './webhook.js';

/** The sender of a subscription's channel. */
export function senderFor(sub: Subscription, opts: { now(): number; logger: Logger }): ChannelSender {
  const c = sub.channel;
  switch (c.type) {
    case 'webhook':
      return createWebhookSender(c, opts);
    case 'rest-hook':
    case 'mllp':
      throw new Error(`channel ${c.type} not wired yet`);
  }
}
