import type { ClinicalEvent } from '../../libs/events/index.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import { lagOf } from '../../libs/projections/inspect.js';
import type { ProjectorDeps, ProjectorService } from '../../libs/projections/service.js';
import { clinicalTopics } from '../../libs/projections/topics.js';
import { dropReadModel } from '../../libs/projections/versions.js';
import { createMetrics } from '../../libs/telemetry/metrics.js';
import { buildAnalyticsProjector, type AnalyticsConfig } from '../../services/projector-analytics/app.js';
import { buildBillingProjector } from '../../services/projector-billing/app.js';
import { buildPortalProjector } from '../../services/projector-portal/app.js';
import { createTestContext, eventually, type TestContext } from './harness.js';

export type ProjectorName = 'portal' | 'billing' | 'analytics';
export const PROJECTORS: readonly ProjectorName[] = ['portal', 'billing', 'analytics'];

/** One isolated set of topics with the three projector services running in-process on it. */
export interface ProjectorRun {
  ctx: TestContext;
  topics: string[];
  stable: Record<ProjectorName, string>;
  services: Record<ProjectorName, ProjectorService>;
  publishInOrder(events: readonly ClinicalEvent[], chunk?: number): Promise<void>;
  caughtUp(): Promise<void>;
  /** Version schema currently serving. */
  schemaOf(p: ProjectorName): string;
  cleanup(): Promise<void>;
}

/** A projector's clients from a test context, with metrics of its own. */
export function projectorDeps(ctx: TestContext): ProjectorDeps {
  return {
    db: ctx.db,
    kafka: ctx.kafka,
    codec: ctx.codec,
    producer: ctx.producer,
    logger: ctx.logger,
    metrics: createMetrics({ defaultMetrics: false }),
  };
}

export async function startProjectorRun(
  name: string,
  which: readonly ProjectorName[] = PROJECTORS,
  /** Extra analytics configuration, e.g. the site's registered authorities and reporting time zone. */
  opts: { analytics?: Pick<AnalyticsConfig, 'isRegistered' | 'reportingTimeZone'> } = {},
): Promise<ProjectorRun> {
  const ctx = await createTestContext(name);
  const dlq = `hub.dlq.${ctx.id}`;
  ctx.extraTopics.push(dlq);
  await ensureTopics(ctx.kafka, [{ name: dlq, partitions: 1, replicationFactor: 1, retentionMs: -1 }]);
  const topics = clinicalTopics(ctx.topic);
  const deps = projectorDeps(ctx);
  const stable = {
    portal: `${ctx.schema}_portal`,
    billing: `${ctx.schema}_billing`,
    analytics: `${ctx.schema}_analytics`,
  };
  const common = (p: ProjectorName) => ({
    stableSchema: stable[p],
    dlqTopic: dlq,
    topicFor: ctx.topic,
    groupPrefix: `hub.projection.${ctx.id}`,
    followEveryMs: 500,
  });
  const built: Partial<Record<ProjectorName, ProjectorService>> = {};
  try {
    for (const p of which) {
      const svc =
        p === 'portal'
          ? buildPortalProjector(deps, common(p))
          : p === 'billing'
            ? buildBillingProjector(deps, common(p))
            : buildAnalyticsProjector(deps, { ...common(p), deadLetterTopics: [dlq], ...opts.analytics });
      built[p] = svc;
      await svc.start();
    }
  } catch (err) {
    // Leave nothing behind on the shared stack when a start fails.
    for (const p of which) await built[p]?.stop().catch(() => undefined);
    for (const p of which) await dropReadModel(ctx.db, stable[p]).catch(() => undefined);
    await ctx.cleanup();
    throw err;
  }
  const services = built as Record<ProjectorName, ProjectorService>;
  const run: ProjectorRun = {
    ctx,
    topics,
    stable,
    services,
    async publishInOrder(events, chunk = 1) {
      for (let i = 0; i < events.length; i += chunk) await ctx.producer.publish(events.slice(i, i + chunk));
    },
    async caughtUp() {
      for (const p of which) {
        await eventually(
          async () => {
            const s = services[p].activeSchema();
            if (!s) return undefined;
            const l = await lagOf(ctx.db, ctx.kafka, s, topics);
            return l.lag === 0n ? true : undefined;
          },
          { timeoutMs: 60_000, what: `${p} caught up` },
        );
      }
    },
    schemaOf(p) {
      const s = services[p].activeSchema();
      if (!s) throw new Error(`${p} is not serving`);
      return s;
    },
    async cleanup() {
      for (const p of which) await services[p].stop().catch(() => undefined);
      for (const p of which) await dropReadModel(ctx.db, stable[p]).catch(() => undefined);
      await ctx.cleanup();
    },
  };
  return run;
}
