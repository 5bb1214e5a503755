import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { dirname } from 'node:path';

/**
 * The security suite's runner: sends probes (plain data from
 * security-probes.ts / security-mllp.ts), asks each probe's judge whether
 * the answer refused, allowed harmlessly or leaked, and keeps the tally per
 * area with the exact probe of every leak.
 */
export const AREAS = ['bola', 'scopes', 'tokens', 'unauthenticated', 'input', 'mllp'] as const;
export type Area = (typeof AREAS)[number];

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as text, at most BODY_KEEP bytes. */
  body: string;
  /** Set when there was no HTTP answer (connection reset, timeout). */
  error?: string;
}

export type Verdict = { kind: 'refused' } | { kind: 'allowed' } | { kind: 'leaked'; why: string };
export const REFUSED: Verdict = { kind: 'refused' };
export const ALLOWED: Verdict = { kind: 'allowed' };
export const leaked = (why: string): Verdict => ({ kind: 'leaked', why });

export interface HttpProbe {
  area: Area;
  /** Service name (api, adapter-fhir, ...) and its base URL. */
  service: string;
  base: string;
  method: string;
  /** Path and query, sent exactly as given (percent-encoding kept). */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** What is being tried, for the report (no token values). */
  label: string;
  judge(a: HttpAnswer): Verdict;
}

export interface Leak {
  area: Area;
  probe: string;
  status: number | string;
  why: string;
  excerpt: string;
}

export interface AreaTally {
  tried: number;
  refused: number;
  allowed: number;
  leaked: number;
}

const BODY_KEEP = 512 * 1024;

/** Database driver, stack or runtime text on an answer: what the input-hardening area calls a leak. */
export const INTERNALS =
  /SQLSTATE|\b(22P05|22021|42P01|42703|23505|08P01)\b|invalid byte sequence|unsupported Unicode escape|syntax error at or near|relation "[^"]*" does not exist|duplicate key value|violates [a-z ]*constraint|node_modules|\bat [\w.$<>]+ \([^)]*:\d+:\d+\)|KafkaJS|pg-protocol|TypeError:|ReferenceError:|RangeError:/i;

export class SecurityReport {
  readonly tally = new Map<Area, AreaTally>(
    AREAS.map((a) => [a, { tried: 0, refused: 0, allowed: 0, leaked: 0 }]),
  );
  readonly leaks: Leak[] = [];
  /** Observations that are not leaks (e.g. a 401 without WWW-Authenticate). */
  readonly notes = new Map<string, number>();

  record(area: Area, probe: string, v: Verdict, status: number | string = '', body = ''): void {
    const t = this.tally.get(area);
    if (!t) return;
    t.tried++;
    if (v.kind === 'refused') t.refused++;
    else if (v.kind === 'allowed') t.allowed++;
    else {
      t.leaked++;
      this.leaks.push({ area, probe, status, why: v.why, excerpt: excerpt(body) });
    }
  }

  note(text: string): void {
    this.notes.set(text, (this.notes.get(text) ?? 0) + 1);
  }

  leaksOf(area: Area): Leak[] {
    return this.leaks.filter((l) => l.area === area);
  }

  table(): string {
    const rows = [['area', 'tried', 'refused', 'allowed', 'leaked']];
    for (const [a, t] of this.tally) rows.push([a, ...[t.tried, t.refused, t.allowed, t.leaked].map(String)]);
    const w = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
    return rows
      .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i] ?? 0) : c.padStart(w[i] ?? 0))).join(' | '))
      .join('\n');
  }

  write(path: string, target: string): void {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(
      path,
      JSON.stringify(
        {
          target,
          at: new Date().toISOString(),
          areas: Object.fromEntries(this.tally),
          leaks: this.leaks,
          notes: Object.fromEntries(this.notes),
        },
        null,
        2,
      ),
    );
  }
}

/** A short, single-line excerpt of a body for the report. */
function excerpt(body: string): string {
  // eslint-disable-next-line no-control-regex
  return body.slice(0, 240).replace(/[\u0000-\u001f\u007f]/g, ' ');
}

const agents = {
  http: new HttpAgent({ keepAlive: true, maxSockets: 16 }),
  https: new HttpsAgent({ keepAlive: true, maxSockets: 16 }),
};

/** Closes the kept-alive connections (at the end of a run). */
export function closeAgents(): void {
  agents.http.destroy();
  agents.https.destroy();
}

/** One HTTP exchange with full control of path and headers (no normalisation, Host as given). */
export function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
  timeoutMs = 15_000,
): Promise<HttpAnswer> {
  const url = new URL(base);
  const tls = url.protocol === 'https:';
  const basePath = url.pathname.replace(/\/+$/, '');
  const hdrs: Record<string, string | number> = { host: url.host, ...headers };
  if (body !== undefined) hdrs['content-length'] = Buffer.byteLength(body);
  return new Promise((resolve) => {
    const req = (tls ? httpsRequest : httpRequest)(
      {
        host: url.hostname,
        port: url.port || (tls ? 443 : 80),
        method,
        path: `${basePath}${path}`,
        headers: hdrs,
        setHost: false,
        agent: tls ? agents.https : agents.http,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (c: Buffer) => {
          if (kept < BODY_KEEP) chunks.push(c);
          kept += c.length;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', (err) => resolve({ status: 0, headers: {}, body: '', error: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ status: 0, headers: {}, body: '', error: err.message }));
    req.end(body);
  });
}

/** Runs the probes `concurrency` at a time; each answer is judged and recorded. */
export async function runHttpProbes(
  report: SecurityReport,
  probes: readonly HttpProbe[],
  concurrency = 6,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const p = probes[next++];
      if (!p) return;
      const a = await send(p.base, p.method, p.path, p.headers, p.body);
      const v: Verdict = a.error ? REFUSED : p.judge(a);
      if (a.status === 401 && !a.headers['www-authenticate'])
        report.note(`401 without WWW-Authenticate (${p.service})`);
      const shownPath = p.path.length > 300 ? `${p.path.slice(0, 300)}...(${p.path.length} chars)` : p.path;
      report.record(
        p.area,
        `${p.service} ${p.method} ${shownPath} [${p.label}]`,
        v,
        a.error ? `no answer: ${a.error}` : a.status,
        a.body,
      );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Whether `body` holds any of `markers` (returns the first found). */
export function markerIn(body: string, markers: readonly string[]): string | null {
  for (const m of markers) if (body.includes(m)) return m;
  return null;
}

export const is2xx = (a: HttpAnswer) => a.status >= 200 && a.status < 300;
