import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import { parseSiteConfig } from '../site-config/index.js';
import { sniffMsh } from './ack.js';
import { addressAllowList, certificateNames, PeerDirectory } from './peers.js';

const cert = (cn: string | string[], sans = ''): PeerCertificate =>
  ({ subject: { CN: cn }, subjectaltname: sans }) as unknown as PeerCertificate;

const msh = (app: string, fac: string) =>
  sniffMsh(Buffer.from(`MSH|^~\\&|${app}|${fac}|HUB|HUBFAC|20260101||ADT^A01|C1|P|2.5.1`));

describe('PeerDirectory', () => {
  const dir = new PeerDirectory([
    { certificate: 'lab-engine', senders: [{ application: 'LAB', facility: 'GENHOSP' }] },
    { certificate: 'ehr.mercy.example', senders: [{ application: 'EHR' }] },
  ]);

  it('given a certificate whose CN is listed, when identified, then its grant allows exactly its senders', () => {
    const g = dir.identify(cert('LAB-ENGINE'));
    expect(g?.certificate).toBe('lab-engine');
    expect(g?.allows(msh('LAB', 'GENHOSP'))).toBe(true);
    // HD.1 is compared, case-insensitively: universal ids and case do not matter.
    expect(g?.allows(msh('lab^1.2.3^ISO', 'genhosp'))).toBe(true);
    expect(g?.allows(msh('EHR', 'GENHOSP'))).toBe(false);
    expect(g?.allows(msh('LAB', 'OTHERHOSP'))).toBe(false);
    expect(g?.allows(null)).toBe(false);
  });

  it('given a rule without facility, then any facility of that application is allowed', () => {
    const g = dir.identify(cert('something-else', 'DNS:ehr.mercy.example, IP Address:10.0.0.1'));
    expect(g?.allows(msh('EHR', 'GENHOSP'))).toBe(true);
    expect(g?.allows(msh('EHR', 'ANYWHERE'))).toBe(true);
    expect(g?.allows(msh('LAB', 'GENHOSP'))).toBe(false);
  });

  it('given a certificate that is not listed, when identified, then null', () => {
    expect(dir.identify(cert('stranger'))).toBeNull();
    expect(certificateNames(cert(['a', 'b'], 'DNS:c'))).toEqual(['a', 'b', 'c']);
  });

  it('given the site configuration mllp.peers, then it parses, and a certificate listed twice is refused', () => {
    const site = parseSiteConfig(
      'mllp:\n  peers:\n    - certificate: lab-engine\n      senders:\n        - application: LAB\n          facility: GENHOSP\n',
    );
    expect(new PeerDirectory(site.mllp?.peers ?? []).size).toBe(1);
    expect(() =>
      parseSiteConfig(
        'mllp:\n  peers:\n    - certificate: a\n      senders: [{ application: X }]\n    - certificate: A\n      senders: [{ application: Y }]\n',
      ),
    ).toThrow(/mllp\.peers\[1\]\.certificate: the same certificate as peers\[0\]/);
    expect(() => parseSiteConfig('mllp:\n  peers:\n    - certificate: a\n      senders: []\n')).toThrow(
      /senders/,
    );
  });
});

describe('addressAllowList', () => {
  it('given an empty list, then there is no check', () => {
    expect(addressAllowList('')).toBeNull();
    expect(addressAllowList(' , ')).toBeNull();
  });

  it('given CIDRs and addresses, then IPv4, IPv4-mapped IPv6 and IPv6 addresses are checked', () => {
    const allowed = addressAllowList('10.0.0.0/8, 192.168.1.5, fd00::/8');
    expect(allowed?.('10.20.30.40')).toBe(true);
    expect(allowed?.('::ffff:10.20.30.40')).toBe(true);
    expect(allowed?.('192.168.1.5')).toBe(true);
    expect(allowed?.('192.168.1.6')).toBe(false);
    expect(allowed?.('127.0.0.1')).toBe(false);
    expect(allowed?.('fd12::1')).toBe(true);
    expect(allowed?.('::1')).toBe(false);
    expect(allowed?.('')).toBe(false);
  });

  it('given an invalid entry, then start-up is refused naming it', () => {
    for (const bad of ['10.0.0.0/33', 'example.org', '10.0.0.0/8/1', '10.0.0.0/x']) {
      const err = (() => {
        try {
          addressAllowList(bad);
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toBeInstanceOf(HubError);
      expect((err as HubError).code).toBe('HUB_CONFIG_INVALID');
      expect((err as HubError).message).toContain(bad);
    }
  });
});
