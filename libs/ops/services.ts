/**
 * Service readiness as `hub status` and the console's flow page show it:
 * each service's /ready and /health, bounded, never throwing.
 */
import { HubError } from '../errors/index.js';
import { SERVICES, localBaseUrl, probeReadiness, type Readiness } from '../stack/services.js';

export interface ServiceStatus {
  service: string;
  url: string;
  /** `not running`: nothing listens on its URL. */
  state: Readiness['state'];
  alive: boolean;
  ready: boolean;
  /** Failing readiness checks, with their detail (codes, not data). */
  failing: string;
}

/** `name=url,name=url` → pairs. Pure. */
export function parseServiceUrls(spec: string | undefined): { name: string; url: string }[] {
  if (!spec) return [];
  return spec
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      const eq = x.indexOf('=');
      if (eq <= 0 || !/^https?:\/\//.test(x.slice(eq + 1))) {
        throw new HubError('HUB_INPUT_INVALID', `HUB_SERVICE_URLS: expected name=http://host:port, got ${x}`);
      }
      return { name: x.slice(0, eq), url: x.slice(eq + 1).replace(/\/$/, '') };
    });
}

/** Which services `hub status` probes: HUB_SERVICE_URLS, else the ones `hub up` runs on their local ports. */
export function serviceTargets(spec: string | undefined): { name: string; url: string }[] {
  return spec ? parseServiceUrls(spec) : SERVICES.map((s) => ({ name: s.name, url: localBaseUrl(s) }));
}

/** /ready (and /health) of one service; bounded, never throws. */
export async function probeService(name: string, url: string): Promise<ServiceStatus> {
  const r = await probeReadiness(url);
  if (r.state === 'not running') {
    return { service: name, url, state: r.state, alive: false, ready: false, failing: '' };
  }
  const alive = await fetch(`${url}/health`, { signal: AbortSignal.timeout(3000) }).then(
    async (res) => {
      await res.body?.cancel();
      return res.status === 200;
    },
    () => false,
  );
  return { service: name, url, state: r.state, alive, ready: r.state === 'ready', failing: r.failing };
}

/**
 * Probes services side by side. Services named explicitly (HUB_SERVICE_URLS)
 * that are not ready are problems; of the default local ones, only those that
 * run but are not ready are: a stack without services is not a fault.
 */
export async function probeServices(
  targets: readonly { name: string; url: string }[],
  explicit: boolean,
): Promise<{ services: ServiceStatus[]; problems: string[] }> {
  const services = await Promise.all(targets.map((t) => probeService(t.name, t.url)));
  const problems: string[] = [];
  for (const s of services) {
    if (s.ready || (s.state === 'not running' && !explicit)) continue;
    problems.push(`service ${s.service} ${s.state}${s.failing ? `: ${s.failing}` : ''}`);
  }
  return { services, problems };
}
