// `status`: what runs, by pid file and by probe, without starting or stopping anything.
import type { ComponentName, StackConfig } from './config.js';
import { components, nodeConfig, type ComponentSpec } from './components.js';
import { runningEmbeddedSettings } from './embedded-postgres.js';
import { pgReachable } from './postgres.js';
import { livePid } from './supervisor.js';

export interface ComponentStatus {
  /** kafka-<id>: a node of a multi-broker stack. */
  name: ComponentName | 'postgres' | `kafka-${number}`;
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
  const units: { name: ComponentStatus['name']; c: StackConfig; spec: ComponentSpec; url: string }[] = [];
  // A multi-broker stack's nodes each have their own pid file and port.
  for (const { c, name } of cfg.kafka.nodes
    ? cfg.kafka.nodes.map((n) => ({ c: nodeConfig(cfg, n.id), name: `kafka-${n.id}` as const }))
    : [{ c: cfg, name: 'kafka' as const }]) {
    units.push({ name, c, spec: components(c).kafka, url: `${c.kafka.host}:${c.kafka.port}` });
  }
  units.push({ name: 'registry', c: cfg, spec: specs.registry, url: cfg.registry.url });
  for (const { name, c, spec, url } of units) {
    const [pid, answers] = await Promise.all([livePid(c, spec), spec.answers()]);
    out.push({ name, running: answers, pid, port: spec.port, url, detail: componentDetail(answers, pid) });
  }
  // The embedded server (when it runs on this port) is probed with its own password, which is not shown.
  const own = await runningEmbeddedSettings(cfg).catch(() => null);
  const pgErr = await pgReachable(own ? { ...cfg, postgres: own.settings } : cfg);
  const url = new URL(cfg.postgres.url);
  if (own) [url.username, url.password] = [own.settings.user, '***'];
  out.push({
    name: 'postgres',
    running: pgErr === null,
    pid: own?.pid ?? null,
    port: cfg.postgres.port,
    url: own ? url.toString() : cfg.postgres.url,
    detail: pgErr ? pgErr.message : own ? `embedded (${cfg.postgres.embeddedDir}), ready` : 'reachable',
  });
  return out;
}
