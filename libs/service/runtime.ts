import { getPriority, setPriority } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { z } from '../config/index.js';
import { FETCH_PARTITION_MAX_BYTES, GROUPED_FETCH_MAX_BYTES } from '../kafka/client.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * Memory settings every service reads (measured by scripts/bench/memory.ts).
 *
 * V8's heap is sized when the process starts, from flags; a running process
 * cannot change it (`v8.setFlagsFromString` after start-up does not resize
 * the heap that exists). So that these settings are the service's own
 * configuration, validated with the rest, and apply identically under
 * `hub up`, compose, Kubernetes and the benchmarks, the kit re-executes the
 * service once with the flags (process.execve: the same process id, so the
 * container's PID 1, signals and the supervisor see no difference) when the
 * running process does not already have them. The alternative, NODE_OPTIONS
 * in every deployment file, would be a second place to keep in step and
 * would not be validated. Flags on the command line win over NODE_OPTIONS.
 * The cost: the service's modules load twice at start (about 0.7 s from
 * dist/ on the 2-core test VM); with both sizes 0 there is no re-execution.
 *
 * Measured (every service under the scenario-1 HL7 load, FHIR bundles and a
 * $import on a 24 GB machine): V8 sized the young generation at up to 2 x
 * 64 MiB semi-spaces, and under load the busy consumers' new space reached
 * 128 MiB with 30-80 MiB of live objects; the projectors and the matcher
 * peaked at 224-357 MiB RSS, the FHIR adapter at 369-601 MiB. With 16 MiB
 * semi-spaces and 160 MiB of old space every service stayed at or under
 * 228 MiB but the identity matcher (up to 277 MiB under a FHIR $import),
 * whose own defaults are smaller (128/8: 233 MiB at the highest load).
 */

/** Old-space cap in MiB: enough for the FHIR definitions' one-time load (~136 MiB live while parsed) beside a service's own objects. */
export const DEFAULT_HEAP_MB = 160;
/** Semi-space cap in MiB: the young generation is two of them. */
export const DEFAULT_SEMI_SPACE_MB = 16;
/** A consumer fetch over all its partitions: the runner's own cap (2 MiB; why: GROUPED_FETCH_MAX_BYTES). */
export const DEFAULT_FETCH_MAX_BYTES = GROUPED_FETCH_MAX_BYTES;
/** Per partition of a fetch: above kafkajs' 1 MiB so that a replay commits fewer, larger transactions. */
export const DEFAULT_FETCH_PARTITION_MAX_BYTES = FETCH_PARTITION_MAX_BYTES;

/** NODE_HEAP_MB with a service's own default: 0 leaves the old space to V8 (and NODE_OPTIONS). */
export function heapEnv(defaultMb: number = DEFAULT_HEAP_MB) {
  return z.coerce
    .number()
    .int()
    .refine((v) => v === 0 || (v >= 64 && v <= 65_536), 'expected 0 (V8 decides) or 64-65536 MiB')
    .default(defaultMb);
}

/** NODE_SEMI_SPACE_MB with a service's own default: 0 leaves the young generation to V8. */
export function semiSpaceEnv(defaultMb: number = DEFAULT_SEMI_SPACE_MB) {
  return z.coerce.number().int().min(0).max(256).default(defaultMb);
}

/**
 * NODE_HEAP_GROWING_PERCENT: how far the old space may grow past what
 * survived a full collection before the next one (V8's
 * `--heap-growing-percent`); 0 leaves the factor to V8. V8 derives it from
 * the old-space cap (1.3 for a small cap, up to 4 when it sizes the heap
 * itself on a large machine: `MaxGrowingFactor` in V8's heap-controller.cc),
 * so under NODE_HEAP_MB's 160 MiB a service with 50-90 MiB live collects its
 * old space over and over: adapter-fhir under FHIR Bundles ran 25 full
 * collections where V8's own sizing ran 3, for 20-35 % more CPU per
 * resource. 100 (double) cut its CPU per resource by 10-15 % and a
 * projector's catch-up CPU per event by about 10 %, with no change under
 * HL7 (docs/benchmarks.md, issue 23, seventh session). It is off by default
 * because it costs memory: at 100 the memory benchmark's peaks rose by up to
 * 31 MiB, adapter-fhir to 257 MiB and projector-portal to 247, past the 256
 * MB (244 MiB) each service is held to; at 50 adapter-fhir still reached
 * 242 in one of three runs. V8 never plans a limit beyond halfway between
 * the heap and the cap, so the cap still holds: a deployment with room
 * above 256 MB buys the CPU back with it.
 */
export function heapGrowingEnv(defaultPercent = 0) {
  return z.coerce.number().int().min(0).max(300).default(defaultPercent);
}

/**
 * CPU_NICE with a service's own default: the process's scheduling niceness
 * (0 normal, 19 lowest), for hosts where services share cores with each
 * other, Kafka and Postgres (`hub up`, compose, one VM). Only raising it
 * needs no privilege, so a value below the process's current one is reported
 * and not applied.
 *
 * Why the services that fold the log into state default to 10 (niceness
 * only matters when the cores are saturated): an MLLP sender waits for each
 * ACK and times out, while a projector behind the log loses nothing and
 * catches up later. Measured on the 2-core VM (`BENCH_SECONDS=6 npm run
 * bench:hl7`, five runs each way, alternated; docs/benchmarks.md, issue 23,
 * sixth session): the 32-connection ratio to the null listener 0.39 against
 * 0.35 (medians), for an ingest-to-visible p99 that trails by tens to
 * hundreds of milliseconds more during the burst. On Kubernetes the pods'
 * CPU requests weigh containers against each other (deploy/k8s: adapters
 * 500m, projectors 250m); niceness orders processes within one container
 * or host.
 */
export function niceEnv(defaultNice = 0) {
  return z.coerce.number().int().min(0).max(19).default(defaultNice);
}

/** The niceness of the services that consume the log into read models (projectors, matcher). */
export const BACKGROUND_NICE = 10;

export const runtimeEnv = {
  NODE_HEAP_MB: heapEnv(),
  NODE_SEMI_SPACE_MB: semiSpaceEnv(),
  NODE_HEAP_GROWING_PERCENT: heapGrowingEnv(),
  KAFKA_FETCH_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .default(DEFAULT_FETCH_MAX_BYTES),
  KAFKA_FETCH_PARTITION_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .default(DEFAULT_FETCH_PARTITION_MAX_BYTES),
  CPU_NICE: niceEnv(),
};

export interface RuntimeConfig {
  NODE_HEAP_MB: number;
  NODE_SEMI_SPACE_MB: number;
  NODE_HEAP_GROWING_PERCENT: number;
}

/**
 * Old space added when the service runs through tsx (tests, `hub up` from a
 * checkout), whose loader keeps every transpiled module and its source map
 * in the heap: at 160 MiB adapter-fhir ran out of heap while parsing the
 * FHIR definitions at start under tsx, never from dist/. So NODE_HEAP_MB
 * means what a built service (the image) gets.
 */
export const TSX_HEAP_MARGIN_MB = 64;

/** Whether the process runs through tsx's loader (its arguments name it). Pure. */
export function runsThroughTsx(execArgv: readonly string[]): boolean {
  return execArgv.some((a) => /(^|[\\/])tsx([\\/]|$)/.test(a));
}

/** The V8 flags a configuration asks for; 0 asks for none. `marginMb` is added to the old space. Pure. */
export function heapFlags(c: RuntimeConfig, marginMb = 0): string[] {
  return [
    ...(c.NODE_HEAP_MB > 0 ? [`--max-old-space-size=${c.NODE_HEAP_MB + marginMb}`] : []),
    ...(c.NODE_HEAP_GROWING_PERCENT > 0 ? [`--heap-growing-percent=${c.NODE_HEAP_GROWING_PERCENT}`] : []),
    ...(c.NODE_SEMI_SPACE_MB > 0 ? [`--max-semi-space-size=${c.NODE_SEMI_SPACE_MB}`] : []),
  ];
}

/** The flags among `wanted` that the process's own arguments do not end up with (the last occurrence of a flag counts). Pure. */
export function missingFlags(execArgv: readonly string[], wanted: readonly string[]): string[] {
  return wanted.filter((flag) => {
    const name = flag.slice(0, flag.indexOf('='));
    const last = execArgv.findLast((a) => a.startsWith(`${name}=`));
    return last !== flag;
  });
}

/**
 * Whether this process is a service started from its main.ts/main.js (node,
 * tsx, the image's `node dist/services/<name>/main.js`). A test runner that
 * calls runService in its own process must never be replaced. Pure.
 */
export function isServiceEntry(argv1: string | undefined): boolean {
  return /[\\/]main\.[cm]?[jt]s$/.test(argv1 ?? '');
}

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * Re-executes the process with the configured heap flags when it does not
 * have them yet; returns when it has them, when none are asked for, or when
 * it cannot (not a service entry, a runtime without process.execve: then a
 * warning names what is missing and the service runs with V8's own sizing).
 */
export function applyHeapSettings(c: RuntimeConfig, logger: Logger): void {
  const margin = runsThroughTsx(process.execArgv) ? TSX_HEAP_MARGIN_MB : 0;
  const missing = missingFlags(process.execArgv, heapFlags(c, margin));
  if (missing.length === 0 || !isServiceEntry(process.argv[1])) return;
  const execve = (process as { execve?: Execve }).execve;
  if (!execve) {
    logger.warn(
      { missing },
      'this Node.js cannot re-execute itself (process.execve): heap settings not applied',
    );
    return;
  }
  try {
    execve(
      process.execPath,
      [process.execPath, ...process.execArgv, ...missing, ...process.argv.slice(1)],
      process.env,
    );
  } catch (err) {
    // Only the code: the message would quote paths of the host.
    logger.warn(
      { missing, code: (err as { code?: unknown }).code },
      're-executing with the heap settings failed: not applied',
    );
  }
}

type PriorityOs = { get: () => number; set: (nice: number) => void };
const processPriority: PriorityOs = { get: () => getPriority(0), set: (n) => setPriority(0, n) };

/**
 * Sets the process's niceness to CPU_NICE, once, in a service entry only (a
 * test runner calling runService in its own process keeps its own). A
 * failure (lowering the niceness without the privilege) is a warning: the
 * service runs on at the niceness it was started with.
 */
export function applyCpuPriority(
  c: { CPU_NICE: number },
  logger: Logger,
  os: PriorityOs = processPriority,
  argv1: string | undefined = process.argv[1],
): void {
  if (!isServiceEntry(argv1) || os.get() === c.CPU_NICE) return;
  try {
    os.set(c.CPU_NICE);
  } catch (err) {
    logger.warn(
      { wanted: c.CPU_NICE, current: os.get(), code: (err as { code?: unknown }).code },
      'could not set the CPU niceness (lowering it needs privilege): running at the current one',
    );
  }
}

/** The heap and niceness in effect, for the ready line: the heap is what an operator compares the container's memory limit with. */
export function runtimeInEffect(): { heapLimitMiB: number; nice: number } {
  return { heapLimitMiB: Math.round(getHeapStatistics().heap_size_limit / 2 ** 20), nice: getPriority(0) };
}
