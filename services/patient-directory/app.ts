import type { FastifyInstance } from 'fastify';
import { migrateProjection } from '../../libs/db/projection.js';
import { HubError } from '../../libs/errors/index.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import type { ConsumerRunner } from '../../libs/kafka/consumer.js';
import { createHttpApp } from '../../libs/http/index.js';
import { meteredProjectionRunner, type ProjectorDeps } from '../../libs/projections/service.js';
import { findPatient, patientDirectoryProjection } from './projection.js';

/** The same injected clients as every projector: one shape for every consumer service. */
export type PatientDirectoryDeps = ProjectorDeps;

export interface PatientDirectoryConfig {
  schema: string;
  patientTopic: string;
  dlqTopic: string;
  groupId?: string;
  /** A consumer that has not fetched for this long is reported not-ready. */
  stallAfterMs?: number;
}

export interface PatientDirectory {
  http: FastifyInstance;
  runner: ConsumerRunner;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const patientSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['patientId', 'version', 'identifiers'],
  properties: {
    patientId: { type: 'string' },
    family: { type: ['string', 'null'] },
    given: { type: 'array', items: { type: 'string' } },
    birthDate: { type: ['string', 'null'] },
    gender: { type: ['string', 'null'] },
    identifiers: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          system: { type: 'string' },
          value: { type: 'string' },
          type: { type: ['string', 'null'] },
        },
      },
    },
    mergedInto: { type: ['string', 'null'] },
    version: { type: 'integer' },
    updatedAt: { type: 'string' },
  },
} as const;

/**
 * The walking skeleton's consumer: projects clinical.patient into a patient
 * directory and serves it over HTTP. Built from injected clients; main.ts
 * owns config, connections and signals.
 */
export function buildPatientDirectory(
  deps: PatientDirectoryDeps,
  cfg: PatientDirectoryConfig,
): PatientDirectory {
  const clock = deps.clock ?? Date.now;
  const projection = patientDirectoryProjection(cfg.patientTopic);
  const log = deps.logger.child({ svc: 'patient-directory' });
  let fatal: HubError | null = null;
  const runner = meteredProjectionRunner(deps, {
    projection,
    schema: cfg.schema,
    ...(cfg.groupId ? { groupId: cfg.groupId } : {}),
    dlqTopic: cfg.dlqTopic,
    logger: log,
    onFatal: (err) => {
      fatal = err;
      deps.onFatal?.(err);
    },
  });
  const stallAfter = cfg.stallAfterMs ?? 60_000;

  const http = createHttpApp({
    logger: log,
    metrics: deps.metrics.registry,
    readiness: {
      postgres: async () => {
        await deps.db.raw('select 1');
        return { ok: true };
      },
      consumer: () => {
        if (fatal) return Promise.resolve({ ok: false, detail: fatal.code });
        const idle = clock() - runner.lastProgressAt();
        return Promise.resolve(
          idle < stallAfter ? { ok: true } : { ok: false, detail: `no progress for ${idle} ms` },
        );
      },
    },
  });

  http.get<{ Params: { id: string } }>(
    '/patients/:id',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } },
        response: { 200: patientSchema },
      },
    },
    async (req) => {
      const row = await findPatient(deps.db, cfg.schema, req.params.id);
      if (!row) throw new HubError('HUB_NOT_FOUND', 'no such patient');
      return { ...row, updatedAt: new Date(row.updatedAt).toISOString() };
    },
  );

  return {
    http,
    runner,
    async start() {
      await migrateProjection(deps.db, cfg.schema, projection);
      await ensureTopics(deps.kafka, [
        { name: cfg.dlqTopic, partitions: 1, replicationFactor: 1, retentionMs: -1 },
      ]);
      try {
        await runner.start();
      } catch (err) {
        // A half-started consumer is let go, so that start() can be tried again.
        await runner.stop().catch(() => undefined);
        throw err;
      }
    },
    async stop() {
      await runner.stop();
      await http.close();
    },
  };
}
