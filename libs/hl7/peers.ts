import { BlockList, isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { HubError } from '../errors/index.js';
import type { SiteMllpPeer } from '../site-config/index.js';
import type { SniffedMsh } from './ack.js';

/**
 * Who may connect to the MLLP listener and what they may send as.
 *
 * - A client certificate (verified against MLLP_TLS_CA_FILE by node:tls) names
 *   a sending system by its subject CN or a DNS subject alternative name; the
 *   site configuration (`mllp.peers`) lists the MSH-3/MSH-4 senders each one
 *   may send as. A verified certificate that is not listed may not send at all.
 * - An address allow-list (MLLP_ALLOW_CIDRS) is checked before a byte is read.
 */

/** What one connection's certificate allows it to send as. */
export interface SenderGrant {
  /** The name in the site configuration the certificate matched (a system name, not PHI: fine in logs). */
  certificate: string;
  /** Whether a message with this MSH may come over this connection; a message without MSH may not. */
  allows(msh: SniffedMsh | null): boolean;
}

/** HD.1 of a raw MSH-3/MSH-4 value, as the site configuration matches senders (case-insensitively). */
function namespaceOf(raw: string, msh: SniffedMsh): string {
  return (raw.split(msh.encodingCharacters.charAt(0) || '^')[0] ?? '').trim().toLowerCase();
}

function grantFor(peer: SiteMllpPeer): SenderGrant {
  const rules = peer.senders.map((s) => ({
    application: s.application.toLowerCase(),
    facility: s.facility?.toLowerCase(),
  }));
  return {
    certificate: peer.certificate,
    allows(msh) {
      if (!msh) return false;
      const app = namespaceOf(msh.sendingApplication, msh);
      const fac = namespaceOf(msh.sendingFacility, msh);
      return rules.some((r) => r.application === app && (r.facility === undefined || r.facility === fac));
    },
  };
}

/** The names a certificate is known by: subject CN(s), then DNS subject alternative names. */
export function certificateNames(cert: PeerCertificate): string[] {
  const cn: unknown = (cert.subject as unknown as Record<string, unknown> | undefined)?.['CN'];
  const cns = Array.isArray(cn)
    ? cn.filter((x): x is string => typeof x === 'string')
    : typeof cn === 'string'
      ? [cn]
      : [];
  const sans = (cert.subjectaltname ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  return [...cns, ...sans];
}

/** The configured peers, looked up by certificate. */
export class PeerDirectory {
  private readonly byName = new Map<string, SenderGrant>();

  constructor(peers: readonly SiteMllpPeer[]) {
    for (const p of peers) this.byName.set(p.certificate.toLowerCase(), grantFor(p));
  }

  get size(): number {
    return this.byName.size;
  }

  /** The grant of a verified client certificate; null when the certificate is not configured. */
  identify(cert: PeerCertificate): SenderGrant | null {
    for (const name of certificateNames(cert)) {
      const g = this.byName.get(name.toLowerCase());
      if (g) return g;
    }
    return null;
  }
}

/** `::ffff:10.1.2.3` (an IPv4 client on a dual-stack listener) is checked as 10.1.2.3. */
function plainAddress(address: string): { address: string; family: 'ipv4' | 'ipv6' } | null {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  const a = mapped?.[1] ?? address;
  const v = isIP(a);
  return v === 4 ? { address: a, family: 'ipv4' } : v === 6 ? { address: a, family: 'ipv6' } : null;
}

/**
 * The address check for MLLP_ALLOW_CIDRS (comma-separated CIDRs or single
 * addresses, IPv4 or IPv6). An empty list allows every address. Invalid
 * entries refuse start-up (HUB_CONFIG_INVALID) rather than silently allowing less or more.
 */
export function addressAllowList(spec: string | readonly string[]): ((address: string) => boolean) | null {
  const entries = (typeof spec === 'string' ? spec.split(',') : [...spec])
    .map((e) => e.trim())
    .filter(Boolean);
  if (entries.length === 0) return null;
  const list = new BlockList();
  for (const entry of entries) {
    const [addr = '', prefix, extra] = entry.split('/');
    const ip = plainAddress(addr);
    const bits = prefix === undefined ? undefined : Number(prefix);
    const max = ip?.family === 'ipv4' ? 32 : 128;
    if (
      !ip ||
      extra !== undefined ||
      (bits !== undefined && !(Number.isInteger(bits) && bits >= 0 && bits <= max))
    ) {
      throw new HubError('HUB_CONFIG_INVALID', `MLLP_ALLOW_CIDRS: not an address or CIDR: ${entry}`, {
        details: { variable: 'MLLP_ALLOW_CIDRS', entry },
      });
    }
    if (bits === undefined) list.addAddress(ip.address, ip.family);
    else list.addSubnet(ip.address, bits, ip.family);
  }
  return (address) => {
    const ip = plainAddress(address);
    return ip !== null && list.check(ip.address, ip.family);
  };
}
