import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  HISTORY_MARKER,
  appendHistory,
  historyRows,
  machineLabel,
  mergeHistory,
  settingsLabel,
  type RunRecord,
} from './history.js';
import { markdownReport, parseCpuinfo, ratioOf, spreadOf, type MachineFacts } from './lib.js';

const machine: MachineFacts = {
  cores: 2,
  cpuModel: 'AMD EPYC 7B13',
  memoryGiB: 24,
  freeMemoryGiB: 20,
  node: 'v24',
  java: 'j',
  kafka: '4.1.1',
  registry: 'r',
  postgres: '15',
  date: '2026-12-06T14:01:02.345Z',
  loadAtStart: [1, 1, 1],
};

const run = (date = machine.date): RunRecord => ({
  machine: { ...machine, date },
  results: [
    {
      scenario: '1. HL7',
      key: 'hl7',
      setup: '',
      figures: [
        {
          name: 'hub 32 conn closed msg/s',
          value: 1500,
          unit: 'msg/s',
          better: 'higher',
          limit: 'null 32 conn closed msg/s',
          ratioSpread: spreadOf([0.3, 0.28, 0.31, 0.29, 0.33]),
        },
        { name: 'null 32 conn closed msg/s', value: 5000, unit: 'msg/s', better: 'higher' },
        // A ratio without slice pairs (measured after the services stop) has no history row.
        {
          name: 'hub 32 conn closed records/s',
          value: 3500,
          unit: 'records/s',
          better: 'higher',
          limit: 'kafka ProducerPerformance',
        },
      ],
    },
  ],
});

const meta = { commit: 'abc1234+dirty', settings: 'BENCH_SCALE=0.05 BENCH_SECONDS=5' };

describe('bench history rows', () => {
  it('given a run, when its rows are made, then only ratios with slice pairs get one, with median, IQR and pairs', () => {
    const rows = historyRows(run(), meta);
    expect(rows).toEqual([
      {
        date: '2026-12-06 14:01:02',
        commit: 'abc1234+dirty',
        machine: '2 × AMD EPYC 7B13, 24 GiB',
        settings: 'BENCH_SCALE=0.05 BENCH_SECONDS=5',
        scenario: 'hl7',
        ratio: 'hub 32 conn closed msg/s',
        median: 0.3,
        q1: 0.29,
        q3: 0.31,
        n: 5,
      },
    ]);
  });

  it('given no file yet, when merged, then the template with the marker and one row comes out', () => {
    const { text, added } = mergeHistory(null, historyRows(run(), meta));
    expect(added).toBe(1);
    expect(text).toContain(HISTORY_MARKER);
    expect(text).toContain(
      '| 2026-12-06 14:01:02 | abc1234+dirty | 2 × AMD EPYC 7B13, 24 GiB | BENCH_SCALE=0.05 BENCH_SECONDS=5 | hl7 | hub 32 conn closed msg/s | 0.30 | 0.29–0.31 | 5 |',
    );
  });

  it('given a run already in the history, when merged again, then nothing is added and the text is unchanged', () => {
    const once = mergeHistory(null, historyRows(run(), meta)).text;
    const twice = mergeHistory(once, historyRows(run(), meta));
    expect(twice.added).toBe(0);
    expect(twice.text).toBe(once);
  });

  it('given an earlier run merged after a later one, then the rows are ordered by date and the prose is kept', () => {
    let text = mergeHistory(null, historyRows(run('2026-12-07T09:00:00.000Z'), meta)).text;
    text = text.replace('# Benchmark history', '# Benchmark history\n\nA note someone added.');
    const merged = mergeHistory(text, historyRows(run('2026-12-06T09:00:00.000Z'), meta));
    expect(merged.added).toBe(1);
    expect(merged.text).toContain('A note someone added.');
    const dates = merged.text
      .split('\n')
      .filter((l) => /^\| 2026/.test(l))
      .map((l) => l.slice(2, 12));
    expect(dates).toEqual(['2026-12-06', '2026-12-07']);
  });

  it('given a history file, when appended to twice through the IO shell, then it is prettier-formatted and holds one row', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bench-history-'));
    try {
      const file = join(dir, 'history.md');
      expect(await appendHistory(file, historyRows(run(), meta))).toBe(1);
      const first = await readFile(file, 'utf8');
      expect(await appendHistory(file, historyRows(run(), meta))).toBe(0);
      expect(await readFile(file, 'utf8')).toBe(first);
      expect(first.split('\n').filter((l) => l.includes('hub 32 conn closed msg/s'))).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('run labels', () => {
  it('given /proc/cpuinfo of two processors, when parsed, then the model name and count come out', () => {
    const text = [0, 1]
      .map(
        (i) =>
          `processor\t: ${i}\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\ncpu MHz\t\t: 2450.000\n`,
      )
      .join('\n');
    expect(parseCpuinfo(text)).toEqual({ model: 'AMD EPYC 7B13', processors: 2 });
    expect(parseCpuinfo('')).toEqual({ model: null, processors: 0 });
  });

  it('given a machine, when labelled, then cores, model and memory are said', () => {
    expect(machineLabel({ cores: 2, cpuModel: 'Intel(R)  Xeon(R) ', memoryGiB: 8 })).toBe(
      '2 × Intel(R) Xeon(R), 8 GiB',
    );
  });

  it('given BENCH_* settings, when labelled, then the set ones are listed sorted, BENCH_HISTORY left out', () => {
    expect(settingsLabel({ BENCH_SECONDS: '5', BENCH_HISTORY: '1', BENCH_SCALE: '0.05', PATH: '/bin' })).toBe(
      'BENCH_SCALE=0.05 BENCH_SECONDS=5',
    );
    expect(settingsLabel({ BENCH_SLICES: '' })).toBe('defaults');
  });
});

describe('report of a figure with slice pairs', () => {
  const figures = run().results[0]?.figures ?? [];
  const [hub] = figures;

  it('given a ratio spread, when the ratio is asked for, then it is the median of the pairs, not the pooled quotient', () => {
    // Pooled: 1,500 / 5,000 = 0.30 as well; a limit of 6,000 tells the two apart.
    const other = figures.map((f) => (f.name.startsWith('null') ? { ...f, value: 6000 } : f));
    if (!hub) throw new Error('fixture has a hub figure');
    const { ratioSpread: _pairs, ...pooled } = hub;
    expect(ratioOf(hub, other)).toBeCloseTo(0.3);
    expect(ratioOf(pooled, other)).toBeCloseTo(0.25);
  });

  it('given a ratio spread, when reported, then the table shows the median, the IQR and the number of pairs', () => {
    const md = markdownReport(machine, [{ scenario: 's', setup: '', figures }]);
    expect(md).toContain(
      '| hub 32 conn closed msg/s | 1,500 |  | msg/s | null 32 conn closed msg/s | 0.30 | 0.29–0.31 | 5 |',
    );
  });
});
