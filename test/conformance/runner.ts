import type { Consumer } from 'kafkajs';
import { expect } from 'vitest';
import type { EventCodec } from '../../libs/events/codec.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import { headerText } from '../../libs/kafka/scan.js';
import { uniqueId } from '../support/harness.js';
import { sha256 } from './payloads.js';
import type { AckExpectation, EventExpectation, LocalDateTime, Probe } from './spec.js';

/**
 * The machinery behind conformance.e2e.test.ts: a subscription that keeps
 * every record of the topics under test (indexed by MSH-10), ACK parsing,
 * alias binding and read-model probes. No expectations live here.
 */

export interface LoggedEvent {
  topic: string;
  event: ClinicalEvent;
  /** Encoded record size in bytes (Avro). */
  bytes: number;
}

export interface LoggedRecord {
  topic: string;
  headers: Record<string, string>;
  bytes: number;
}

/** Follows the given topics from the beginning and indexes what arrives by message control id. */
export class TopicLog {
  readonly events = new Map<string, LoggedEvent[]>();
  readonly records = new Map<string, LoggedRecord[]>();
  readonly undecodable: string[] = [];
  private consumer: Consumer | null = null;
  readonly groupId = uniqueId('hub-conformance-log');

  constructor(
    private readonly kafka: KafkaClient,
    private readonly codec: EventCodec,
    private readonly eventTopics: readonly string[],
    private readonly otherTopics: readonly string[],
  ) {}

  async start(): Promise<void> {
    const c = this.kafka.consumer({
      groupId: this.groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
      // Room for the 5 MB message's records (raw message, attachment).
      maxBytesPerPartition: 32 * 1024 * 1024,
      maxBytes: 64 * 1024 * 1024,
    });
    await c.connect();
    await c.subscribe({ topics: [...this.eventTopics, ...this.otherTopics], fromBeginning: true });
    const events = new Set(this.eventTopics);
    await c.run({
      eachMessage: async ({ topic, message }) => {
        const value = message.value ?? Buffer.alloc(0);
        if (events.has(topic)) {
          try {
            const event = await this.codec.decode(value);
            const id = event.data.meta.source.messageId ?? '';
            const list = this.events.get(id) ?? [];
            list.push({ topic, event, bytes: value.length });
            this.events.set(id, list);
          } catch {
            this.undecodable.push(`${topic}@${message.offset}`);
          }
          return;
        }
        const headers = headerText(message.headers);
        const id = headers['hl7-control-id'] ?? '';
        const list = this.records.get(id) ?? [];
        list.push({ topic, headers, bytes: value.length });
        this.records.set(id, list);
      },
    });
    this.consumer = c;
  }

  eventsOf(controlId: string): LoggedEvent[] {
    return this.events.get(controlId) ?? [];
  }

  recordsOf(controlId: string, topic: string): LoggedRecord[] {
    return (this.records.get(controlId) ?? []).filter((r) => r.topic === topic);
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
    const admin = this.kafka.admin();
    await admin.connect();
    await admin.deleteGroups([this.groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries an assertion until it passes or the deadline passes (then its last failure is thrown). */
export async function until(check: () => Promise<void> | void, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await sleep(200);
  }
}

// ───────────────────────────── ACKs ─────────────────────────────

export interface ParsedAck {
  text: string;
  msa1: string;
  msa2: string;
  errors: { location: string; code: string }[];
}

export function parseAck(text: string): ParsedAck {
  const fs = text.charAt(3) || '|';
  const comp = text.charAt(4) || '^';
  const segs = text.split('\r').map((s) => s.split(fs));
  const msa = segs.find((s) => s[0] === 'MSA') ?? [];
  return {
    text,
    msa1: msa[1] ?? '',
    msa2: msa[2] ?? '',
    errors: segs
      .filter((s) => s[0] === 'ERR')
      .map((s) => ({ location: s[2] ?? '', code: (s[3] ?? '').split(comp)[0] ?? '' })),
  };
}

export function assertAck(ack: ParsedAck, want: AckExpectation, controlId: string): void {
  const codes = Array.isArray(want.code) ? want.code : [want.code];
  expect(codes, `MSA-1 of ${ack.text.replace(/\r/g, '\\r')}`).toContain(ack.msa1);
  expect(ack.msa2, 'MSA-2 echoes MSH-10').toBe(controlId);
  if (!want.err) {
    if (ack.msa1 === 'AA') expect(ack.errors, 'no ERR on AA').toEqual([]);
    return;
  }
  const wantCodes = want.err.code === undefined ? null : [want.err.code].flat();
  const wantLocs = want.err.location === undefined ? null : [want.err.location].flat();
  const comp = ack.text.charAt(4) || '^';
  const locOk = (l: string) =>
    wantLocs === null || wantLocs.some((w) => l === w || l.startsWith(`${w}${comp}`));
  const hit = ack.errors.find((e) => (wantCodes === null || wantCodes.includes(e.code)) && locOk(e.location));
  expect(
    hit,
    `an ERR with ERR-3 ${wantCodes?.join('|') ?? '*'} at ERR-2 ${wantLocs?.join('|') ?? '*'}; got ${JSON.stringify(ack.errors)}`,
  ).toBeDefined();
}

// ─────────────────────────── aliases ───────────────────────────

export type AliasKind = 'patient' | 'encounter' | 'order' | 'result';

export class Aliases {
  private readonly ids = new Map<string, string>();

  bind(kind: AliasKind, alias: string, id: unknown, where: string): void {
    expect(typeof id, `${where}: ${kind} id`).toBe('string');
    const key = `${kind}:${alias}`;
    const known = this.ids.get(key);
    if (known === undefined) this.ids.set(key, id as string);
    else expect(id, `${where}: ${kind} ${alias} must be the same id as before`).toBe(known);
  }

  preset(kind: AliasKind, alias: string, id: string): void {
    this.ids.set(`${kind}:${alias}`, id);
  }

  get(kind: AliasKind, alias: string): string {
    const v = this.ids.get(`${kind}:${alias}`);
    if (v === undefined)
      throw new Error(`${kind} alias ${alias} is not bound (an earlier case did not produce it)`);
    return v;
  }

  /** `{patient:X}`, `{portal}` ... in every string of a value. */
  fill<T>(value: T, schemas: Record<string, string>): T {
    const sub = (s: string) =>
      s.replace(
        /\{(patient|encounter|order|result):([A-Za-z0-9-]+)\}|\{(portal|billing|analytics)\}/g,
        (_m, k, a, sch) => (sch ? (schemas[sch as string] ?? '') : this.get(k as AliasKind, a as string)),
      );
    const walk = (v: unknown): unknown => {
      if (typeof v === 'string') return sub(v);
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
      }
      return v;
    };
    return walk(value) as T;
  }
}

// ─────────────────────────── events ───────────────────────────

/** JSON-like view of decoded Avro: bigint → number, bytes → {bytes: n}. */
export function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { bytes: v.length };
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const isLocal = (v: unknown): v is LocalDateTime =>
  Boolean(v) && typeof v === 'object' && typeof (v as LocalDateTime).localDateTime === 'string';

/** Replaces local() markers by matchers: the same wall time and offset, optional zero fraction. */
export function withMatchers(v: unknown): unknown {
  if (isLocal(v)) {
    const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})([+-]\d{2}:\d{2})$/.exec(v.localDateTime);
    if (!m) throw new Error(`local(): expected YYYY-MM-DDThh:mm:ss±hh:mm, got ${v.localDateTime}`);
    return expect.stringMatching(new RegExp(`^${m[1]}(\\.0+)?${m[2]!.replace('+', '\\+')}$`));
  }
  if (Array.isArray(v)) return v.map(withMatchers);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withMatchers(x)]));
  }
  return v;
}

type Data = Record<string, unknown>;

/** Asserts one event against its expectation and binds its aliases. */
export function assertEvent(e: LoggedEvent, want: EventExpectation, aliases: Aliases, where: string): void {
  const data = plain(e.event.data) as Data;
  const raw = e.event.data as unknown as Data;
  const links: [AliasKind, string | undefined, string][] = [
    ['patient', want.patient, 'patientId'],
    ['encounter', want.encounter, 'encounterId'],
    ['order', want.order, 'orderId'],
    ['result', want.result, 'resultId'],
  ];
  for (const [kind, alias, field] of links) if (alias) aliases.bind(kind, alias, data[field], where);
  if (want.data) expect(data, `${where} data`).toMatchObject(withMatchers(want.data) as Data);
  const meta = data['meta'] as Data;
  for (const st of want.sourceTimes ?? []) {
    expect(meta['sourceTimes'], `${where} meta.sourceTimes`).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          field: typeof st.field === 'string' ? st.field : (expect.stringMatching(st.field) as unknown),
          precision: st.precision,
          offsetMinutes: Array.isArray(st.offsetMinutes)
            ? (expect.toSatisfy((o: unknown) =>
                (st.offsetMinutes as number[]).includes(o as number),
              ) as unknown)
            : st.offsetMinutes,
          zoned: st.zoned,
        }),
      ]),
    );
  }
  const demo = (data['demographics'] ?? {}) as Data;
  const list = (k: string) => demo[k];
  const entry = (x: string | RegExp): unknown => (typeof x === 'string' ? x : expect.stringMatching(x));
  for (const [k, xs] of [
    ['cleared', want.cleared],
    ['notSent', want.notSent],
  ] as const) {
    for (const x of xs ?? [])
      expect(list(k), `${where} demographics.${k}`).toEqual(expect.arrayContaining([entry(x)]));
  }
  for (const [k, xs] of [
    ['cleared', want.notCleared],
    ['notSent', want.notNotSent],
  ] as const) {
    const have = (list(k) as string[] | undefined) ?? [];
    for (const x of xs ?? []) expect(have, `${where} demographics.${k} must not list ${x}`).not.toContain(x);
  }
  const json = JSON.stringify(data);
  for (const x of want.jsonExcludes ?? []) expect(json, `${where}: event JSON`).not.toContain(x);
  if (want.maxJsonBytes !== undefined)
    expect(e.bytes, `${where}: encoded record size`).toBeLessThanOrEqual(want.maxJsonBytes);
  // Invariant of every AttachmentStored: the bytes are what the reference says.
  if (e.event.type === ('AttachmentStored' as ClinicalEvent['type'])) {
    const bytes = raw['data'];
    expect(Buffer.isBuffer(bytes), `${where}: data is bytes`).toBe(true);
    if (Buffer.isBuffer(bytes)) {
      expect(sha256(bytes), `${where}: sha256 of data`).toBe(raw['sha256']);
      expect(bytes.length, `${where}: size of data`).toBe(Number(raw['size']));
    }
  }
}

// ─────────────────────────── read models ───────────────────────────

export interface ProbeEnv {
  aliases: Aliases;
  schemas: Record<string, string>;
  fhirGet(path: string, accept?: string): Promise<{ status: number; type: string; body: Buffer }>;
  sql(text: string): Promise<Data[]>;
}

const isoRows = (rows: Data[]): Data[] =>
  rows.map((r) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v])),
  );

function matchesPartial(actual: unknown, want: unknown): boolean {
  try {
    expect(actual).toMatchObject(want as Data);
    return true;
  } catch {
    return false;
  }
}

async function presentedBytes(env: ProbeEnv, form: Data): Promise<Buffer> {
  if (typeof form['data'] === 'string') return Buffer.from(form['data'], 'base64');
  const url = form['url'];
  expect(typeof url, 'presentedForm has data or url').toBe('string');
  let path = String(url);
  const abs = /^https?:\/\/[^/]+(\/.*)$/.exec(path);
  if (abs) path = abs[1]!;
  if (!path.startsWith('/')) path = `/fhir/${path}`;
  const ct = form['contentType'];
  const res = await env.fhirGet(path, typeof ct === 'string' ? ct : 'application/octet-stream');
  expect(res.status, `GET ${path}`).toBe(200);
  if (/json/.test(res.type)) {
    const bin = JSON.parse(res.body.toString('utf8')) as Data;
    return Buffer.from(typeof bin['data'] === 'string' ? bin['data'] : '', 'base64');
  }
  return res.body;
}

export async function runProbe(env: ProbeEnv, probe: Probe): Promise<void> {
  const p = env.aliases.fill(probe, env.schemas);
  if (p.sql !== undefined) {
    const rows = isoRows(await env.sql(p.sql));
    if (p.rows) expect(rows, p.what).toEqual(p.rows);
    if (p.match) expect(rows[0], p.what).toMatchObject(withMatchers(p.match) as Data);
    return;
  }
  if (p.fhir === undefined) throw new Error(`probe ${p.what}: neither sql nor fhir`);
  const res = await env.fhirGet(p.fhir);
  expect(res.status, `${p.what}: GET ${p.fhir}`).toBe(200);
  const text = res.body.toString('utf8');
  const body = JSON.parse(text) as Data;
  for (const x of p.excludes ?? []) expect(text, `${p.what}: answer`).not.toContain(x);
  const resources: Data[] =
    body['resourceType'] === 'Bundle'
      ? ((body['entry'] as { resource: Data }[] | undefined) ?? []).map((e) => e.resource)
      : [body];
  if (p.total !== undefined) expect(body['total'], `${p.what}: Bundle.total`).toBe(p.total);
  for (const c of p.contains ?? []) {
    const want = withMatchers(c);
    expect(
      resources.some((r) => matchesPartial(r, want)),
      `${p.what}: an entry matching ${JSON.stringify(c)} among ${JSON.stringify(resources).slice(0, 2000)}`,
    ).toBe(true);
  }
  const one = resources[0] ?? {};
  if (p.match) expect(one, p.what).toMatchObject(withMatchers(p.match) as Data);
  for (const k of p.empty ?? []) {
    const v = one[k];
    expect(
      v === undefined || v === null || (Array.isArray(v) && v.length === 0),
      `${p.what}: ${k} empty, got ${JSON.stringify(v)}`,
    ).toBe(true);
  }
  for (const [k, n] of Object.entries(p.lengths ?? {})) {
    expect(one[k], `${p.what}: ${k}`).toHaveLength(n);
  }
  if (p.presentedForm) {
    const want = p.presentedForm;
    const forms = resources.flatMap((r) => (r['presentedForm'] as Data[] | undefined) ?? []);
    expect(forms.length, `${p.what}: presentedForm`).toBeGreaterThan(0);
    const got: string[] = [];
    for (const f of forms) {
      const bytes = await presentedBytes(env, f);
      got.push(`${sha256(bytes)}/${bytes.length}`);
      if (sha256(bytes) === want.sha256) {
        expect(bytes.length).toBe(want.size);
        expect(f['contentType']).toBe(want.contentType);
        return;
      }
    }
    expect(got, `${p.what}: bytes read back (sha256/size)`).toContain(`${want.sha256}/${want.size}`);
  }
}
