// A private certificate authority and the certificates it issues, made with
// the openssl command line (Debian's, always present where the stack runs):
// the local secure profile's Kafka listener, MLLP peers and tests use it. A
// hospital uses its own PKI instead; this is the same shape at small scale.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HubError } from '../errors/index.js';
import { run } from './process.js';

export interface CertificateAuthority {
  dir: string;
  /** PEM files. */
  certFile: string;
  keyFile: string;
}

export interface IssuedCertificate {
  /** Common name: the principal a server or client is known as (e.g. a Kafka user, an MLLP peer). */
  name: string;
  certFile: string;
  keyFile: string;
  /** The CA certificate the peer verifies this one against. */
  caFile: string;
}

export interface IssueOptions {
  /** Subject alternative names for a server certificate (DNS names and IP addresses). */
  hosts?: readonly string[];
  /** Client certificate (extendedKeyUsage clientAuth), server certificate, or both. */
  usage?: 'server' | 'client' | 'both';
  days?: number;
}

async function openssl(args: readonly string[]): Promise<void> {
  await run('openssl', [...args], { timeoutMs: 60_000 }).catch((err: unknown) => {
    throw new HubError('HUB_INFRA_FAILED', `openssl ${args[0] ?? ''} failed: ${(err as Error).message}`, {
      cause: err,
    });
  });
}

/** A new P-256 key in `keyFile` and, for subject `/CN=<cn>`, a request or (with -x509) a self-signed certificate in `out`. */
function newKeyAndRequest(keyFile: string, out: string, cn: string, extra: readonly string[]): Promise<void> {
  return openssl([
    'req',
    ...extra,
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    out,
    '-subj',
    `/CN=${cn}`,
  ]);
}

/** The CA in `dir`, created on first use (an existing one is kept: certificates it issued stay valid). */
export async function ensureCa(dir: string, name = 'clinical-hub local CA'): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = { dir, certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key') };
  if (existsSync(ca.certFile) && existsSync(ca.keyFile)) return ca;
  await newKeyAndRequest(ca.keyFile, ca.certFile, name, [
    '-x509',
    '-days',
    '3650',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return ca;
}

const isIp = (h: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || h.includes(':');

/** The extensions of a leaf certificate: its names and what it may be used for. */
export function leafExtensions(o: IssueOptions): string {
  const usage = o.usage ?? 'both';
  const eku = usage === 'server' ? 'serverAuth' : usage === 'client' ? 'clientAuth' : 'serverAuth,clientAuth';
  const lines = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${eku}`,
  ];
  const hosts = o.hosts ?? [];
  if (hosts.length > 0) {
    lines.push(`subjectAltName=${hosts.map((h) => (isIp(h) ? `IP:${h}` : `DNS:${h}`)).join(',')}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Issues `<name>.crt`/`<name>.key` in `outDir`, signed by the CA; an existing
 * pair is reused. The name must be a plain principal name (it becomes a file
 * name and the certificate's CN).
 */
export async function issueCertificate(
  ca: CertificateAuthority,
  outDir: string,
  name: string,
  opts: IssueOptions = {},
): Promise<IssuedCertificate> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new HubError('HUB_INPUT_INVALID', `certificate name must be a plain principal name: ${name}`);
  }
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  const cert = {
    name,
    certFile: join(outDir, `${name}.crt`),
    keyFile: join(outDir, `${name}.key`),
    caFile: ca.certFile,
  };
  if (existsSync(cert.certFile) && existsSync(cert.keyFile)) return cert;
  const csr = join(outDir, `${name}.csr`);
  const ext = join(outDir, `${name}.ext`);
  await writeFile(ext, leafExtensions(opts));
  await newKeyAndRequest(cert.keyFile, csr, name, ['-new']);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-out',
    cert.certFile,
    '-days',
    String(opts.days ?? 825),
    '-extfile',
    ext,
  ]);
  return cert;
}

/** The PEM contents of an issued certificate, as node:tls options take them. */
export async function readCertificate(
  c: IssuedCertificate,
): Promise<{ cert: Buffer; key: Buffer; ca: Buffer }> {
  const [cert, key, ca] = await Promise.all([readFile(c.certFile), readFile(c.keyFile), readFile(c.caFile)]);
  return { cert, key, ca };
}
