import type { Consumer } from 'kafkajs';

/**
 * How long the broker waits for a member that stopped heartbeating before it
 * takes the member's partitions away. A member that dies without leaving the
 * group (SIGKILL, OOM kill, a lost host) blocks every partition it held for
 * this long, and a restarted instance of the same group cannot join before it
 * is over: with kafkajs' 30 s a killed projector served again only after
 * ~28 s; kafkajs 2.2.4 has no static membership (group.instance.id) that
 * would let the restarted process take its predecessor's place. 6 s is the
 * shortest the broker accepts by default (group.min.session.timeout.ms): a
 * restart now waits about 6 s (the process itself starts in ~1 s).
 */
export const GROUP_SESSION_TIMEOUT_MS = 6_000;
/**
 * How often a member heartbeats. Five heartbeats fit in one session, so a
 * live member is only dropped when its event loop is stuck for about 5 s.
 */
export const GROUP_HEARTBEAT_INTERVAL_MS = 1_000;
/**
 * A member whose fetches are answered while none of its heartbeats has been
 * accepted for this long has lost its group without noticing: seen with
 * kafkajs 2.2.4 and a 6 s session after the broker hung for longer than the
 * client's 30 s request timeout (SIGSTOP for 45 s): the group was left Empty
 * while the consumer went on fetching, so no partition had an owner the group
 * knew of and nothing was committed. Three session timeouts.
 */
export const MEMBERSHIP_LOST_MS = 3 * GROUP_SESSION_TIMEOUT_MS;

/** The kafkajs consumer settings that go with the watch below. */
export const FAST_REJOIN = {
  sessionTimeout: GROUP_SESSION_TIMEOUT_MS,
  heartbeatInterval: GROUP_HEARTBEAT_INTERVAL_MS,
} as const;

/**
 * Calls `onLost` (once) when the broker answers this consumer's fetches but
 * has accepted none of its heartbeats for `lostAfterMs`: the caller then
 * reconnects the consumer, which joins its group again. `stop` ends the watch
 * (call it before disconnecting on purpose).
 */
export function watchGroupMembership(
  c: Consumer,
  onLost: (secondsWithoutHeartbeat: number) => void,
  lostAfterMs = MEMBERSHIP_LOST_MS,
): { stop(): void } {
  let fetchAt = Date.now();
  let heartbeatAt = Date.now();
  const off = [
    c.on(c.events.FETCH, () => {
      fetchAt = Date.now();
    }),
    c.on(c.events.HEARTBEAT, () => {
      heartbeatAt = Date.now();
    }),
    c.on(c.events.GROUP_JOIN, () => {
      heartbeatAt = Date.now();
    }),
  ];
  const stop = () => {
    clearInterval(timer);
    for (const remove of off) remove();
  };
  const timer = setInterval(() => {
    const now = Date.now();
    if (now - fetchAt > 5_000 || now - heartbeatAt < lostAfterMs) return;
    stop();
    onLost(Math.round((now - heartbeatAt) / 1000));
  }, 1_000);
  timer.unref();
  return { stop };
}
