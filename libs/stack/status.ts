// `status`: what runs, by pid file and by probe, without starting or stopping anything.
import type { ComponentName, StackConfig } from './config.js';
import { components } from './components.js';
import { pgReachable } from './postgres.js';
import { livePid } from './supervisor.js';

export interface ComponentStatus {
  name: ComponentName | 'postgres';
  running: boolean;
  pid: number | null;
  port: number;
  url: string;
  detail: string;
}

/** A component's state in words, from whether it answers and whether our pid file names it. */
export function componentDetail(answers: boolean, pid: number | null): string {
  if (answers) return pid === null ? 'answering, not started by this tool' : 'ready';
  return pid === null ? 'stopped' : 'process alive, not answering';
}

export async function stackStatus(cfg: StackConfig): Promise<ComponentStatus[]> {
  const specs = components(cfg);
  const out: ComponentStatus[] = [];
  for (const n of ['kafka', 'registry'] as const) {
    const spec = specs[n];
    const [pid, answers] = await Promise.all([livePid(cfg, spec), spec.answers()]);
    const url = n === 'kafka' ? `${cfg.kafka.host}:${cfg.kafka.port}` : cfg.registry.url;
    out.push({ name: n, running: answers, pid, port: spec.port, url, detail: componentDetail(answers, pid) });
  }
  const pgErr = await pgReachable(cfg);
  out.push({
    name: 'postgres',
    running: pgErr === null,
    pid: null,
    port: cfg.postgres.port,
    url: cfg.postgres.url,
    detail: pgErr ? pgErr.message : 'reachable',
  });
  return out;
}
