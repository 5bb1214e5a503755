import { createRequire } from 'node:module';

/**
 * kafkajs 2.2.4 (the last release) re-arms a timer after every check of a broker connection's
 * request queue, even when nothing is queued and nothing is throttled: its delay is then
 * `-1 - Date.now()`, which Node clamps to 1 ms, so each idle connection polls every millisecond
 * (measured: ~650 checks/s per connection on Node 20 and 24), and Node ≥ 23 prints a
 * `TimeoutNegativeWarning` on stderr (tulios/kafkajs#1751, unfixed upstream). Skipping the
 * timer in exactly that case is the fix proposed there: a request that has to wait is pushed
 * on `pending` and schedules its own check, and a throttle still schedules one for its end.
 */
interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests(): void;
}

const require = createRequire(import.meta.url);
// The same module instance kafkajs uses (its package has no exports map, so the path resolves
// to the very file its client requires).
const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as {
  prototype: RequestQueueInternals;
};
const original = RequestQueue.prototype.scheduleCheckPendingRequests;

function isIdle(queue: RequestQueueInternals, now = Date.now()): boolean {
  return queue.pending.length === 0 && queue.throttledUntil <= now;
}

RequestQueue.prototype.scheduleCheckPendingRequests = function (this: RequestQueueInternals) {
  if (!isIdle(this)) original.call(this);
};
