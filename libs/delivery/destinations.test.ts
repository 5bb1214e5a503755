import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { destinationAllowed, parseDestinations } from './destinations.js';
import type { Channel } from './model.js';

const webhook = (endpoint: string): Channel => ({
  type: 'webhook',
  endpoint,
  secret: 'x'.repeat(32),
  timeoutMs: 1000,
});
const mllp = (host: string, port: number): Channel => ({
  type: 'mllp',
  host,
  port,
  version: '2.5.1',
  sendingApplication: 'HUB',
  sendingFacility: 'HUB',
  ackTimeoutMs: 1000,
  tls: false,
});

describe('destination allow-list (DELIVERY_ALLOWED_DESTINATIONS)', () => {
  it('given no list, when any destination is checked, then it is allowed', () => {
    expect(destinationAllowed(null, webhook('https://anywhere.example.org/hook'))).toBe(true);
  });

  it('given host, host:port and *.domain entries, when channels are checked, then only those destinations pass', () => {
    const rules = parseDestinations(' billing.partner.example , 10.1.2.3:2575, *.registry.example ');
    expect(destinationAllowed(rules, webhook('https://billing.partner.example/in'))).toBe(true);
    expect(destinationAllowed(rules, webhook('https://BILLING.partner.example:8443/in'))).toBe(true);
    expect(destinationAllowed(rules, mllp('10.1.2.3', 2575))).toBe(true);
    expect(destinationAllowed(rules, mllp('10.1.2.3', 2576))).toBe(false);
    expect(destinationAllowed(rules, webhook('https://eu.registry.example/hook'))).toBe(true);
    // The domain itself is not "under" it, and a look-alike is not either.
    expect(destinationAllowed(rules, webhook('https://registry.example/hook'))).toBe(false);
    expect(destinationAllowed(rules, webhook('https://evilregistry.example/hook'))).toBe(false);
    expect(destinationAllowed(rules, webhook('https://billing.partner.example.attacker.test/in'))).toBe(
      false,
    );
  });

  it('given a port-less https entry, when the URL has no port, then 443 is what it is checked as', () => {
    const rules = parseDestinations('hooks.example:443');
    expect(destinationAllowed(rules, webhook('https://hooks.example/x'))).toBe(true);
    expect(destinationAllowed(rules, webhook('https://hooks.example:8443/x'))).toBe(false);
  });

  it('given a bad entry, when parsed, then the configuration is refused naming its position, not its text', () => {
    expect(() => parseDestinations('ok.example, http://bad/path')).toThrow(/entry 2 is not host/);
    expect(() => parseDestinations('host:70000')).toThrow(/entry 1/);
  });

  it('property: an exact host:port entry allows that destination and no other port of it', () => {
    fc.assert(
      fc.property(
        fc.domain(),
        fc.integer({ min: 1, max: 65_535 }),
        fc.integer({ min: 1, max: 65_535 }),
        (host, port, other) => {
          const rules = parseDestinations(`${host}:${port}`);
          expect(destinationAllowed(rules, mllp(host, port))).toBe(true);
          expect(destinationAllowed(rules, mllp(host, other))).toBe(other === port);
        },
      ),
    );
  });
});
