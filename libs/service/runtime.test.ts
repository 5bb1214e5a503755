import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { serviceEnvSchema } from './index.js';
import { createLogger } from '../telemetry/logger.js';
import {
  applyCpuPriority,
  BACKGROUND_NICE,
  DEFAULT_FETCH_MAX_BYTES,
  DEFAULT_FETCH_PARTITION_MAX_BYTES,
  DEFAULT_HEAP_MB,
  DEFAULT_SEMI_SPACE_MB,
  heapEnv,
  heapFlags,
  runsThroughTsx,
  TSX_HEAP_MARGIN_MB,
  isServiceEntry,
  missingFlags,
  niceEnv,
} from './runtime.js';

const spec = { port: 8099, env: {} };

describe('service kit: memory settings', () => {
  it('given a service run through tsx, then its old space gets the loader margin on top; built, exactly NODE_HEAP_MB', () => {
    const tsx = [
      '--require',
      '/repo/node_modules/tsx/dist/preflight.cjs',
      '--import',
      'file:///repo/node_modules/tsx/dist/loader.mjs',
    ];
    expect(runsThroughTsx(tsx)).toBe(true);
    expect(runsThroughTsx(['--enable-source-maps'])).toBe(false);
    expect(runsThroughTsx(['--import', './not-tsx-loader.mjs'])).toBe(false);
    const c = { NODE_HEAP_MB: 160, NODE_SEMI_SPACE_MB: 16, NODE_HEAP_GROWING_PERCENT: 0 };
    expect(heapFlags(c, TSX_HEAP_MARGIN_MB)[0]).toBe(`--max-old-space-size=${160 + TSX_HEAP_MARGIN_MB}`);
    expect(heapFlags(c)[0]).toBe('--max-old-space-size=160');
    // 0 stays "V8 decides", margin or not.
    expect(
      heapFlags({ NODE_HEAP_MB: 0, NODE_SEMI_SPACE_MB: 0, NODE_HEAP_GROWING_PERCENT: 0 }, TSX_HEAP_MARGIN_MB),
    ).toEqual([]);
  });

  it('given nothing set, then every service gets the measured heap and fetch defaults', () => {
    expect(loadConfig(serviceEnvSchema(spec), {})).toMatchObject({
      NODE_HEAP_MB: DEFAULT_HEAP_MB,
      NODE_SEMI_SPACE_MB: DEFAULT_SEMI_SPACE_MB,
      KAFKA_FETCH_MAX_BYTES: DEFAULT_FETCH_MAX_BYTES,
      KAFKA_FETCH_PARTITION_MAX_BYTES: DEFAULT_FETCH_PARTITION_MAX_BYTES,
      NODE_HEAP_GROWING_PERCENT: 0,
      CPU_NICE: 0,
    });
  });

  it('given a service default of its own, then it applies unless the variable is set', () => {
    const own = { port: 8099, env: { NODE_HEAP_MB: heapEnv(192) } };
    expect(loadConfig(serviceEnvSchema(own), {}).NODE_HEAP_MB).toBe(192);
    expect(loadConfig(serviceEnvSchema(own), { NODE_HEAP_MB: '256' }).NODE_HEAP_MB).toBe(256);
  });

  it('given values, then they are read as numbers; 0 leaves the heap to V8', () => {
    const given = { NODE_HEAP_MB: 0, NODE_SEMI_SPACE_MB: 8, KAFKA_FETCH_MAX_BYTES: 1_048_576 };
    const asText = Object.fromEntries(Object.entries(given).map(([k, v]) => [k, String(v)]));
    const cfg = loadConfig(serviceEnvSchema(spec), asText);
    expect(cfg).toMatchObject(given);
    expect(heapFlags(cfg)).toEqual(['--max-semi-space-size=8']);
  });

  it('given NODE_HEAP_GROWING_PERCENT, then the old space may grow by that much between full collections; a process without it is re-executed', () => {
    const cfg = loadConfig(serviceEnvSchema(spec), { NODE_HEAP_GROWING_PERCENT: '100' });
    const flags = heapFlags(cfg);
    expect(flags).toEqual([
      '--max-old-space-size=160',
      '--heap-growing-percent=100',
      '--max-semi-space-size=16',
    ]);
    expect(missingFlags(['--max-old-space-size=160', '--max-semi-space-size=16'], flags)).toEqual([
      '--heap-growing-percent=100',
    ]);
    expect(() => loadConfig(serviceEnvSchema(spec), { NODE_HEAP_GROWING_PERCENT: '1000' })).toThrow(
      /NODE_HEAP_GROWING_PERCENT/,
    );
  });

  it('given a heap too small to start, a negative size or a tiny fetch, then each is named', () => {
    expect(() =>
      loadConfig(serviceEnvSchema(spec), {
        NODE_HEAP_MB: '32',
        NODE_SEMI_SPACE_MB: '-1',
        KAFKA_FETCH_MAX_BYTES: '1000',
        KAFKA_FETCH_PARTITION_MAX_BYTES: 'lots',
        CPU_NICE: '20',
      }),
    ).toThrow(
      /NODE_HEAP_MB[\s\S]*NODE_SEMI_SPACE_MB[\s\S]*KAFKA_FETCH_MAX_BYTES[\s\S]*KAFKA_FETCH_PARTITION_MAX_BYTES[\s\S]*CPU_NICE/,
    );
    expect(() => loadConfig(serviceEnvSchema(spec), { CPU_NICE: '-5' })).toThrow(/CPU_NICE/);
  });
});

describe('service kit: CPU niceness', () => {
  const entry = '/app/dist/services/projector-portal/main.js';
  function fakeOs(start: number, fail?: string) {
    const calls: number[] = [];
    let nice = start;
    return {
      calls,
      get: () => nice,
      set: (n: number) => {
        calls.push(n);
        if (fail) throw Object.assign(new Error('EACCES'), { code: fail });
        nice = n;
      },
    };
  }
  function captured() {
    const lines: string[] = [];
    const logger = createLogger({
      name: 'test',
      level: 'warn',
      destination: { write: (l: string) => lines.push(l) },
    });
    return { logger, lines };
  }

  it('given a service that folds the log (a projector, the matcher), then its default is BACKGROUND_NICE unless set', () => {
    const background = { port: 8099, env: { CPU_NICE: niceEnv(BACKGROUND_NICE) } };
    expect(BACKGROUND_NICE).toBe(10);
    expect(loadConfig(serviceEnvSchema(background), {}).CPU_NICE).toBe(10);
    expect(loadConfig(serviceEnvSchema(background), { CPU_NICE: '0' }).CPU_NICE).toBe(0);
  });

  it('given a service entry at another niceness, then it is set once; at the same one, nothing is called', () => {
    const os = fakeOs(0);
    applyCpuPriority({ CPU_NICE: 10 }, captured().logger, os, entry);
    expect(os.calls).toEqual([10]);
    applyCpuPriority({ CPU_NICE: 10 }, captured().logger, os, entry);
    expect(os.calls).toEqual([10]);
  });

  it('given a test runner calling runService in its own process, then its niceness is left alone', () => {
    const os = fakeOs(0);
    applyCpuPriority(
      { CPU_NICE: 10 },
      captured().logger,
      os,
      '/work/node_modules/vitest/dist/workers/forks.js',
    );
    expect(os.calls).toEqual([]);
  });

  it('given a niceness below the current one without the privilege, then a warning names both and the service runs on', () => {
    const os = fakeOs(5, 'EACCES');
    const { logger, lines } = captured();
    expect(() => applyCpuPriority({ CPU_NICE: 0 }, logger, os, entry)).not.toThrow();
    const warning = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(warning).toMatchObject({ wanted: 0, current: 5, code: 'EACCES' });
  });
});

describe('service kit: applying the heap flags', () => {
  const flags = heapFlags({ NODE_HEAP_MB: 160, NODE_SEMI_SPACE_MB: 16, NODE_HEAP_GROWING_PERCENT: 0 });

  it('asks for the old-space and semi-space caps', () => {
    expect(flags).toEqual(['--max-old-space-size=160', '--max-semi-space-size=16']);
  });

  it('given a process started without them, with other values or with ours overridden later, then they are missing', () => {
    expect(missingFlags([], flags)).toEqual(flags);
    expect(missingFlags(['--max-old-space-size=4096', '--max-semi-space-size=16'], flags)).toEqual([
      '--max-old-space-size=160',
    ]);
    expect(missingFlags(['--max-old-space-size=160', '--max-old-space-size=512'], flags)).toEqual(flags);
  });

  it('given a process re-executed with them after its own flags, then nothing is missing (no second re-execution)', () => {
    expect(missingFlags(['--import', 'x.mjs', '--max-old-space-size=512', ...flags], flags)).toEqual([]);
  });

  it('re-executes only a service entry, never a test runner that calls runService in its own process', () => {
    expect(isServiceEntry('/app/dist/services/api/main.js')).toBe(true);
    expect(isServiceEntry('/work/services/api/main.ts')).toBe(true);
    expect(isServiceEntry('/work/node_modules/vitest/dist/workers/forks.js')).toBe(false);
    expect(isServiceEntry(undefined)).toBe(false);
  });

  it('given a service entry started without the flags, then the same process runs on with them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hub-runtime-'));
    try {
      const main = join(dir, 'main.ts');
      await writeFile(
        main,
        `import { getHeapStatistics } from 'node:v8';
import { applyHeapSettings } from ${JSON.stringify(join(import.meta.dirname, 'runtime.ts'))};
import { createLogger } from ${JSON.stringify(join(import.meta.dirname, '..', 'telemetry', 'logger.ts'))};
const silent = createLogger({ name: 'test', level: 'silent' });
process.stdout.write(JSON.stringify({ pid: process.pid, limit: getHeapStatistics().heap_size_limit }) + '\\n');
applyHeapSettings({ NODE_HEAP_MB: 96, NODE_SEMI_SPACE_MB: 2 }, silent);
`,
      );
      const tsx = join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'tsx');
      const { stdout } = await promisify(execFile)(tsx, [main], { timeout: 30_000 });
      const [first, second] = stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { pid: number; limit: number });
      expect(second?.pid).toBe(first?.pid);
      // 96 MiB of old space, plus the tsx margin (it runs through tsx), and a young
      // generation of three 2 MiB semi-spaces' worth.
      expect((second?.limit ?? 0) / 2 ** 20).toBeGreaterThan(96 + TSX_HEAP_MARGIN_MB);
      expect((second?.limit ?? 0) / 2 ** 20).toBeLessThan(110 + TSX_HEAP_MARGIN_MB);
      expect(first?.limit).toBeGreaterThan(second?.limit ?? 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // Two start-ups through tsx on a busy machine.
  }, 60_000);
});
