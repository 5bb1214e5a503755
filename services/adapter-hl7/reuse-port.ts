/**
 * Whether this runtime can put several adapter processes on one MLLP address
 * with SO_REUSEPORT (MLLP_REUSE_PORT). Node reads `reusePort` in
 * `server.listen()` from 22.12 / 23.1 (nodejs/node#55408); older versions
 * ignore the option, so a second instance would fail with EADDRINUSE, or,
 * worse, look like a scale-out that is not one. The kernel must offer the
 * option too (Node's docs: Linux 3.9+, FreeBSD 12+, Solaris 11.4, AIX 7.2.5+).
 */
export function reusePortUnsupported(
  version: string = process.versions.node,
  platform: NodeJS.Platform = process.platform,
): string | null {
  if (!REUSE_PORT_PLATFORMS.has(platform)) return `SO_REUSEPORT is not available on ${platform}`;
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const ok = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  return ok ? null : `Node ${version} ignores reusePort (needs 22.12+, 23.1+ or 24)`;
}

const REUSE_PORT_PLATFORMS: ReadonlySet<NodeJS.Platform> = new Set(['linux', 'freebsd', 'sunos', 'aix']);
