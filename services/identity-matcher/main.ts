// Entry point: the shared service kit validates the environment once, makes
// the clients and runs start-up; this file says what is the matcher's own.
import { readFileSync } from 'node:fs';
import { databaseEnv, schemaNameEnv, z } from '../../libs/config/index.js';
import { parseMatchWeights } from '../../libs/identity/matcher/weights.js';
import { DEFAULT_WEIGHTS } from '../../libs/identity/matching/index.js';
import { IDENTITY_SCHEMA } from '../../libs/identity/store.js';
import { dlqTopicFor } from '../../libs/kafka/dlq.js';
import { eventPublisher, runService } from '../../libs/service/index.js';
import { BACKGROUND_NICE, heapEnv, niceEnv, semiSpaceEnv } from '../../libs/service/runtime.js';
import { buildIdentityMatcherService } from './app.js';

await runService({
  name: 'identity-matcher',
  port: 8100,
  env: {
    ...databaseEnv,
    /** The identity schema; the API and `hub identity` must use the same. */
    IDENTITY_SCHEMA: schemaNameEnv(IDENTITY_SCHEMA),
    /** A weights file (as `npm run empi:train` writes); unset: the committed weights. */
    IDENTITY_WEIGHTS_FILE: z
      .string()
      .optional()
      .transform((path, ctx) => {
        if (path === undefined) return DEFAULT_WEIGHTS;
        try {
          return parseMatchWeights(readFileSync(path, 'utf8'));
        } catch {
          ctx.addIssue({ code: 'custom', message: 'not a readable match weights file' });
          return z.NEVER;
        }
      }),
    /** The consumer group (one per deployment; tests use their own). */
    IDENTITY_GROUP_ID: z.string().min(1).default('hub.identity-matcher'),
    /** How often pending steward commands are looked for. */
    IDENTITY_COMMAND_POLL_MS: z.coerce.number().int().min(50).max(10_000).default(250),
    DLQ_TOPIC: z.string().optional(),
    // Below the kit's 160/16: each patient event loads up to 500 candidates, and with the kit's
    // sizes the matcher peaked at 201-277 MiB RSS under a FHIR $import. At 112/8: 202 MiB; at
    // 128/8: 233 MiB under the highest load measured (scripts/bench-memory.ts), no slower per event.
    NODE_HEAP_MB: heapEnv(128),
    NODE_SEMI_SPACE_MB: semiSpaceEnv(8),
    // Behind the ingest adapters on a shared host, as the projectors: its lag is caught up later.
    CPU_NICE: niceEnv(BACKGROUND_NICE),
  },
  // Its topics (with the deployment's suffix) and publish metrics, as every service that publishes events.
  producer: eventPublisher,
  connect: (k) => ({ db: k.database(k.config.DATABASE_URL, { pool: { min: 0, max: 5 } }) }),
  build: (k, { db }) => {
    const cfg = k.config;
    const svc = buildIdentityMatcherService(
      {
        db,
        kafka: k.kafka,
        codec: k.codec,
        producer: k.producer,
        logger: k.logger,
        metrics: k.metrics,
        onFatal: (code) => void k.exit(`fatal ${code}`, 1),
      },
      {
        schema: cfg.IDENTITY_SCHEMA,
        weights: cfg.IDENTITY_WEIGHTS_FILE,
        groupId: cfg.IDENTITY_GROUP_ID,
        dlqTopic: cfg.DLQ_TOPIC ?? dlqTopicFor('identity-matcher', k.topic),
        topic: k.topic,
        commandPollMs: cfg.IDENTITY_COMMAND_POLL_MS,
      },
    );
    return {
      http: svc.http,
      steps: [{ name: 'postgres (identity schema), dead-letter topic and consumer', run: () => svc.start() }],
      stop: () => svc.stop(),
      readyFields: () => ({ schema: cfg.IDENTITY_SCHEMA }),
    };
  },
});
