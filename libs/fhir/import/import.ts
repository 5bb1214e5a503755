import type { Readable } from 'node:stream';
import { toHubError } from '../../errors/index.js';
import type { IHeaders } from 'kafkajs';
import type { EventProducer, RawRecord } from '../../kafka/producer.js';
import { DEFAULT_MAX_ITEM_BYTES, readBundleEntries, readNdjson, type ImportItem } from '../stream.js';
import type { IdentityPolicy } from '../../identity/index.js';
import type { Logger } from '../../telemetry/logger.js';
import { Planner, type PlannedOk } from './ingest.js';
import { inlinePreparer, type Prepared, type Preparer } from './prepare-pool.js';
import type { FhirStore, ImportCheckpoint, StoredResource } from './store.js';
import type { Invalid } from '../validate.js';

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
  /** A line (or Bundle entry) longer than this, in bytes, is dead-lettered as too large (default 16 MiB). */
  maxLineBytes?: number;
  /**
   * The most bytes read from the input (default: no limit). Past it, reading
   * stops: chunks already committed stay (and their checkpoint), the chunk
   * being gathered is dropped, and the summary says `bodyLimitExceeded`.
   */
  maxBytes?: number;
  onProgress?(line: number, counts: Readonly<ImportCounts>): void;
}

export interface ImportSummary {
  importKey: string | null;
  resumedAfterLine: number;
  lastLine: number;
  counts: ImportCounts;
  events: number;
  deadLetters: number;
  /** Reading stopped at `maxBytes`: lines after `lastLine` were not imported. */
  bodyLimitExceeded: boolean;
}

/** What the pipeline caught, rethrown as an Error (kafkajs and pg throw Errors; anything else is wrapped). */
function asError(failure: unknown): Error {
  return failure instanceof Error ? failure : toHubError(failure);
}

export const DEFAULT_MAX_LINE_BYTES = DEFAULT_MAX_ITEM_BYTES;

/**
 * The HTTP $import body limit when none is configured (FHIR_IMPORT_MAX_BYTES):
 * 1 GiB, about a million typical resources, which a 2-core host imports in
 * minutes, within Node's 5-minute request timeout. Larger loads are split (each
 * file its X-Import-Id) or run with `hub fhir import <file>`, which has no limit.
 */
export const DEFAULT_IMPORT_MAX_BYTES = 1024 * 1024 * 1024;

// A chunk is committed at `chunkSize` items or at this much text, whichever comes first:
// 1000 lines of a few MB each must not sit in memory together (two chunks are in flight).
const CHUNK_TEXT_MAX = 32 * 1024 * 1024;

/** Thrown inside runImport only, by the byte counter, and caught there. */
class BodyLimitReached extends Error {}

/**
 * The input, counted: past `max` bytes it throws instead of yielding. The
 * input is not destroyed (destroyOnReturn false): an HTTP request's socket
 * must stay open for the 413 to be answered on it.
 */
async function* limited(input: Readable, max: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of input.iterator({ destroyOnReturn: false })) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
    seen += b.length;
    if (seen > max) throw new BodyLimitReached();
    yield b;
  }
}

export function emptyCounts(): ImportCounts {
  return { created: 0, updated: 0, unchanged: 0, invalid: 0, skipped: 0 };
}

function deadLetter(p: Prepared, bad: Invalid, req: ImportRequest, topic: string): RawRecord {
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

/**
 * Plans each prepared item in order (a refused plan turns the item into a dead letter) and
 * returns the plans and the dead letters of the chunk.
 */
async function planChunk(
  planner: Planner,
  prepared: Prepared[],
  req: ImportRequest,
  dlqTopic: string,
): Promise<{ plans: PlannedOk[]; dlq: RawRecord[] }> {
  await planner.prefetch(prepared.flatMap((p) => (p.entry ? [p.entry] : [])));
  const plans: PlannedOk[] = [];
  const dlq: RawRecord[] = [];
  for (const p of prepared) {
    if (p.entry) {
      const planned = await planner.plan(p.entry);
      if ('ok' in planned) p.bad = planned;
      else plans.push(planned);
    }
    if (p.bad) dlq.push(deadLetter(p, p.bad, req, dlqTopic));
  }
  return { plans, dlq };
}

/**
 * One import's running totals, the fullUrl → id map shared by its chunks, and the chunk
 * being committed.
 *
 * Two-stage pipeline: parsing and validating chunk n+1 (CPU) overlaps the
 * Kafka and Postgres round trips of chunk n. Planning waits for chunk n's
 * store writes, so references across chunks resolve, and checkpoints stay in order.
 */
class ImportRun {
  readonly counts: ImportCounts;
  events = 0;
  deadLetters = 0;
  lastLine: number;
  private readonly clock: () => number;
  private readonly preparer: Preparer;
  private readonly fullUrls = new Map<string, string>();
  /** The commit in flight: resolves to null, or to what it failed with. */
  private inFlight: Promise<unknown> = Promise.resolve(null);

  constructor(
    private readonly deps: ImportDeps,
    private readonly req: ImportRequest,
    cp: ImportCheckpoint | undefined,
  ) {
    this.clock = deps.clock ?? Date.now;
    this.preparer = deps.preparer ?? inlinePreparer();
    this.counts = { ...emptyCounts(), ...(cp?.counts ?? {}) };
    this.lastLine = cp?.lastLine ?? 0;
  }

  async submit(items: ImportItem[]): Promise<void> {
    const last = items.at(-1);
    if (last === undefined) return;
    const prepared = await this.preparer.prepare(items, this.req.label);
    await this.settled();
    this.inFlight = this.commit(last.line, prepared).then(
      () => null,
      (err: unknown) => err,
    );
  }

  /** Waits for the commit in flight and rethrows its failure. */
  async settled(): Promise<void> {
    const failure = await this.inFlight;
    if (failure) throw asError(failure);
  }

  /** Plans against the store (which holds every earlier chunk), publishes, saves, checkpoints. */
  private async commit(lastLine: number, prepared: Prepared[]): Promise<void> {
    const { deps, req, counts } = this;
    const planner = new Planner(
      {
        store: deps.store,
        policy: deps.policy,
        sourceSystem: deps.sourceSystem,
        recordedAt: this.clock(),
        correlationId: req.importKey,
      },
      this.fullUrls,
    );
    const { plans, dlq } = await planChunk(planner, prepared, req, deps.dlqTopic);
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
    this.events += evts.length;
    this.deadLetters += dlq.length;
    this.lastLine = lastLine;
    if (req.importKey) await deps.store.saveCheckpoint({ importKey: req.importKey, lastLine, counts });
    req.onProgress?.(lastLine, counts);
  }
}

export async function runImport(
  deps: ImportDeps,
  input: Readable,
  req: ImportRequest,
): Promise<ImportSummary> {
  const chunkSize = req.chunkSize ?? 1000;
  const cp = req.importKey ? await deps.store.getCheckpoint(req.importKey) : undefined;
  const run = new ImportRun(deps, req, cp);
  const resumedAfterLine = run.lastLine;
  const log = deps.logger.child({ component: 'fhir-import', importKey: req.importKey });
  if (resumedAfterLine > 0) log.info({ resumedAfterLine }, 'resuming import from checkpoint');

  // A line (or entry) this long is dead-lettered as too large rather than parsed.
  const maxBytes = req.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const bytes = req.maxBytes === undefined ? input : limited(input, req.maxBytes);
  const source =
    req.format === 'ndjson'
      ? readNdjson(bytes, { maxLineBytes: maxBytes })
      : readBundleEntries(bytes, { maxEntryBytes: maxBytes });
  let skippedNow = 0;
  let bodyLimitExceeded = false;
  try {
    skippedNow = await submitAll(run, source, resumedAfterLine, chunkSize);
  } catch (err) {
    if (!(err instanceof BodyLimitReached)) throw err;
    bodyLimitExceeded = true;
  }
  await run.settled();
  const { counts, lastLine, events, deadLetters } = run;
  counts.skipped = skippedNow;
  log.info({ lastLine, events, deadLetters, skipped: skippedNow, bodyLimitExceeded }, 'import finished');
  return {
    importKey: req.importKey,
    resumedAfterLine,
    lastLine,
    counts,
    events,
    deadLetters,
    bodyLimitExceeded,
  };
}

/**
 * Reads every item into chunks and submits them; the chunk being gathered
 * when the input fails (or reaches its byte limit) is not submitted.
 * Returns how many items were skipped as already imported.
 */
async function submitAll(
  run: ImportRun,
  source: AsyncIterable<ImportItem>,
  resumedAfterLine: number,
  chunkSize: number,
): Promise<number> {
  let chunk: ImportItem[] = [];
  let text = 0;
  let skipped = 0;
  for await (const item of source) {
    if (item.line <= resumedAfterLine) {
      skipped++;
      continue;
    }
    chunk.push(item);
    text += item.text.length;
    if (chunk.length >= chunkSize || text >= CHUNK_TEXT_MAX) {
      await run.submit(chunk);
      chunk = [];
      text = 0;
    }
  }
  await run.submit(chunk);
  return skipped;
}
