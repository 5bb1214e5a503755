import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import './idle-timer-fix.js';

interface Queue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  scheduleCheckPendingRequests(): void;
  destroy(): void;
}
// kafkajs's own request queue (one per broker connection), patched by importing the fix.
const RequestQueue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as new (o: {
  logger: { debug(): void };
  requestTimeout: number;
}) => Queue;
const queue = () => new RequestQueue({ logger: { debug: () => undefined }, requestTimeout: 30_000 });

describe('kafkajs request queue timer (idle-timer-fix)', () => {
  it('given an idle connection (nothing pending, not throttled), when checked, then no timer is armed', () => {
    const q = queue();
    q.scheduleCheckPendingRequests();
    expect(q.throttleCheckTimeoutId).toBeNull();
  });

  it('given a pending request or a throttle, when checked, then a check is still scheduled', () => {
    const waiting = queue();
    waiting.pending.push({});
    waiting.scheduleCheckPendingRequests();
    const throttled = queue();
    throttled.throttledUntil = Date.now() + 60_000;
    throttled.scheduleCheckPendingRequests();
    try {
      expect(waiting.throttleCheckTimeoutId).not.toBeNull();
      expect(throttled.throttleCheckTimeoutId).not.toBeNull();
    } finally {
      waiting.destroy();
      throttled.destroy();
    }
  });
});
