import type { Readable } from 'node:stream';
import { toHubError } from '../../errors/index.js';
import type { IHeaders } from 'kafkajs';
import type { EventProducer, RawRecord } from '../../kafka/producer.js';
import { readBundleEntries, readNdjson, type ImportItem } from '../stream.js';
import type { IdentityPolicy } from '../../identity/index.js';
import type { Logger } from '../../telemetry/logger.js';
import { Planner, type PlannedOk } from './ingest.js';
import { inlinePreparer, type Prepared, type Preparer } from './prepare-pool.js';
import type { FhirStore, StoredResource } from './store.js';

/**
 * Bulk import: streams NDJSON (one resource per line) or a Bundle document,
 * in chunks. Per chunk: validate and map every item, publish the events and
 * the dead letters (acks=all), then write the store rows, then the
 * checkpoint (last line of the chunk). A crash before the checkpoint replays
 * at most one chunk, with the same event ids (same versions and content):
 * downstream de-duplicates them, and the store makes most of them no-ops.
 */
export const OUTCOMES = ['created', 'updated', 'unchanged', 'invalid', 'skipped'] as const;
export type ImportOutcome = (typeof OUTCOMES)[number];
export type ImportCounts = Record<ImportOutcome, number>;

export interface ImportDeps {
  store: FhirStore;
  producer: Pick<EventProducer, 'publish' | 'publishRaw'>;
  policy: IdentityPolicy;
  sourceSystem: string;
  dlqTopic: string;
  logger: Logger;
  clock?: () => number;
  /** Where parsing and validation run; inline by default (worker threads for big files). */
  preparer?: Preparer;
}

export interface ImportRequest {
  /** Checkpoint key (file hash, or the client's import id); null = not resumable. */
  importKey: string | null;
  format: 'ndjson' | 'bundle';
  /** Goes into EventMeta.source.messageId as `<label>#<line>` (a file name, never content). */
  label: string;
  chunkSize?: number;
  maxLineLength?: number;
  onProgress?(line: number, counts: Readonly<ImportCounts>): void;
}

export interface ImportSummary {
  importKey: string | null;
  resumedAfterLine: number;
  lastLine: number;
  counts: ImportCounts;
  events: number;
  deadLetters: number;
}

/** What the pipeline caught, rethrown as an Error (kafkajs and pg throw Errors; anything else is wrapped). */
function asError(failure: unknown): Error {
  return failure instanceof Error ? failure : toHubError(failure);
}

export const DEFAULT_MAX_LINE_LENGTH = 16 * 1024 * 1024;

export function emptyCounts(): ImportCounts {
  return { created: 0, updated: 0, unchanged: 0, invalid: 0, skipped: 0 };
}

function deadLetter(p: Prepared, req: ImportRequest, topic: string): RawRecord {
  const bad = p.bad!;
  const headers: IHeaders = {
    'hub-dlq-reason-code': bad.reason,
    'hub-dlq-source': 'fhir-import',
    'hub-dlq-line': String(p.item.line),
    'hub-dlq-failed-at': new Date().toISOString(),
    ...(req.importKey ? { 'hub-dlq-import': req.importKey } : {}),
  };
  // The line's content stays out (it is PHI): its number and the file's hash find it.
  const value = {
    importKey: req.importKey,
    label: req.label,
    line: p.item.line,
    reasonCode: bad.reason,
    issues: bad.issues.map((i) => ({
      code: i.code,
      expression: i.expression ?? [],
      diagnostics: i.diagnostics,
    })),
  };
  return { topic, key: req.importKey ?? 'fhir-import', value: Buffer.from(JSON.stringify(value)), headers };
}

export async function runImport(
  deps: ImportDeps,
  input: Readable,
  req: ImportRequest,
): Promise<ImportSummary> {
  const clock = deps.clock ?? Date.now;
  const preparer = deps.preparer ?? inlinePreparer();
  const chunkSize = req.chunkSize ?? 1000;
  const cp = req.importKey ? await deps.store.getCheckpoint(req.importKey) : undefined;
  const resumedAfterLine = cp?.lastLine ?? 0;
  const counts: ImportCounts = { ...emptyCounts(), ...(cp?.counts ?? {}) };
  const fullUrls = new Map<string, string>();
  let events = 0;
  let deadLetters = 0;
  let lastLine = resumedAfterLine;
  const log = deps.logger.child({ component: 'fhir-import', importKey: req.importKey });
  if (resumedAfterLine > 0) log.info({ resumedAfterLine }, 'resuming import from checkpoint');

  /** Plans against the store (which holds every earlier chunk), publishes, saves, checkpoints. */
  async function commit(items: readonly ImportItem[], prepared: Prepared[]): Promise<void> {
    const planner = new Planner(
      {
        store: deps.store,
        policy: deps.policy,
        sourceSystem: deps.sourceSystem,
        recordedAt: clock(),
        correlationId: req.importKey,
      },
      fullUrls,
    );
    await planner.prefetch(prepared.flatMap((p) => (p.entry ? [p.entry] : [])));
    const plans: PlannedOk[] = [];
    const dlq: RawRecord[] = [];
    for (const p of prepared) {
      if (p.entry) {
        const planned = await planner.plan(p.entry);
        if ('ok' in planned) p.bad = planned;
        else plans.push(planned);
      }
      if (p.bad) dlq.push(deadLetter(p, req, deps.dlqTopic));
    }
    const writes = plans.flatMap((p) => (p.kind === 'write' ? [p] : []));
    const evts = writes.flatMap((w) => w.events);
    await Promise.all([
      evts.length > 0 ? deps.producer.publish(evts) : undefined,
      dlq.length > 0 ? deps.producer.publishRaw(dlq) : undefined,
    ]);
    const rows: StoredResource[] = writes.map((w) => w.row);
    await deps.store.save(rows);
    for (const p of plans) {
      if (p.kind === 'noop') counts.unchanged++;
      else if (p.created) counts.created++;
      else counts.updated++;
    }
    counts.invalid += dlq.length;
    events += evts.length;
    deadLetters += dlq.length;
    lastLine = items[items.length - 1]!.line;
    if (req.importKey) await deps.store.saveCheckpoint({ importKey: req.importKey, lastLine, counts });
    req.onProgress?.(lastLine, counts);
  }

  // Two-stage pipeline: parsing and validating chunk n+1 (CPU) overlaps the
  // Kafka and Postgres round trips of chunk n. Planning waits for chunk n's
  // store writes, so references across chunks resolve, and checkpoints stay in order.
  let inFlight: Promise<unknown> = Promise.resolve(null);
  async function submit(items: ImportItem[]): Promise<void> {
    if (items.length === 0) return;
    const prepared = await preparer.prepare(items, req.label);
    const failure = await inFlight;
    if (failure) throw asError(failure);
    inFlight = commit(items, prepared).then(
      () => null,
      (err: unknown) => err,
    );
  }

  // A line (or entry) this long is dead-lettered as too large rather than parsed.
  const maxLength = req.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
  const source =
    req.format === 'ndjson'
      ? readNdjson(input, { maxLineLength: maxLength })
      : readBundleEntries(input, { maxEntryLength: maxLength });
  let chunk: ImportItem[] = [];
  let skippedNow = 0;
  for await (const item of source) {
    if (item.line <= resumedAfterLine) {
      skippedNow++;
      continue;
    }
    chunk.push(item);
    if (chunk.length >= chunkSize) {
      await submit(chunk);
      chunk = [];
    }
  }
  await submit(chunk);
  const failure = await inFlight;
  if (failure) throw asError(failure);
  counts.skipped = skippedNow;
  log.info({ lastLine, events, deadLetters, skipped: skippedNow }, 'import finished');
  return { importKey: req.importKey, resumedAfterLine, lastLine, counts, events, deadLetters };
}
