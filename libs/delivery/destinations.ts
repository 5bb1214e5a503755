/**
 * Where a site lets the hub send PHI (DELIVERY_ALLOWED_DESTINATIONS): a
 * subscription is an instruction to copy patients' data to a host, so a
 * site can pin the hosts it has agreements with, and a token or an operator
 * that can create subscriptions still cannot point one anywhere else. Pure;
 * the delivery service applies it where the data leaves.
 */
import { HubError } from '../errors/index.js';
import type { Channel } from './model.js';

/** `host`, `host:port` or `*.domain` (any host under it), lower case. */
export interface DestinationRule {
  host: string;
  /** `*.domain`: any host ending in `.domain`. */
  suffix: boolean;
  port: number | null;
}

const RULE = /^(\*\.)?([a-z0-9.-]+|\[[0-9a-f:]+\])(?::(\d{1,5}))?$/;

/** A comma-separated list; HUB_CONFIG_INVALID naming the bad entry's position (never echoing it whole). */
export function parseDestinations(text: string): DestinationRule[] {
  return text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0)
    .map((s, i) => {
      const m = RULE.exec(s);
      const port = m?.[3] === undefined ? null : Number(m[3]);
      if (!m?.[2] || (port !== null && (port < 1 || port > 65_535))) {
        throw new HubError(
          'HUB_CONFIG_INVALID',
          `DELIVERY_ALLOWED_DESTINATIONS: entry ${i + 1} is not host, host:port or *.domain`,
        );
      }
      return { host: m[2], suffix: m[1] !== undefined, port };
    });
}

/** The host and port a channel sends to. */
export function destinationOfChannel(c: Channel): { host: string; port: number } {
  if (c.type === 'mllp') return { host: c.host.toLowerCase(), port: c.port };
  const u = new URL(c.endpoint);
  return {
    host: u.hostname.toLowerCase(),
    port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80,
  };
}

/** Whether the rules let the channel's destination receive deliveries (no rules: any destination). */
export function destinationAllowed(rules: readonly DestinationRule[] | null, c: Channel): boolean {
  if (!rules) return true;
  const d = destinationOfChannel(c);
  return rules.some(
    (r) =>
      (r.port === null || r.port === d.port) &&
      (r.suffix ? d.host.endsWith(`.${r.host}`) : d.host === r.host),
  );
}
