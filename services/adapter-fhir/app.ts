import type { Bundle, BundleEntry, OperationOutcome } from '@medplum/fhirtypes';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import type { Knex } from 'knex';
import type { Readable } from 'node:stream';
import { ERROR_CODES, toHubError } from '../../libs/errors/index.js';
import type { ClinicalEvent } from '../../libs/events/index.js';
import { errorIssue, outcome, type FhirIssue } from '../../libs/fhir/outcome.js';
import type { MappableResource } from '../../libs/fhir/mapping.js';
import {
  FHIR_ID,
  isSupportedType,
  loadFhirDefinitions,
  parseJsonBody,
  validateFhirResource,
  type Invalid,
} from '../../libs/fhir/validate.js';
import { createHttpApp } from '../../libs/http/index.js';
import type { IdentityPolicy } from '../../libs/identity/index.js';
import { ensureTopics } from '../../libs/kafka/admin.js';
import type { KafkaClient } from '../../libs/kafka/client.js';
import type { EventProducer } from '../../libs/kafka/producer.js';
import type { TransactionalProducer } from '../../libs/kafka/transactional.js';
import type { Logger } from '../../libs/telemetry/logger.js';
import type { HubMetrics } from '../../libs/telemetry/metrics.js';
import { Planner, type EntryRequest, type PlannedOk } from './ingest.js';
import { runImport, type ImportSummary } from './import.js';
import { KeyedLock } from './lock.js';
import { createFhirStore, type FhirStore } from './store.js';

export interface FhirAdapterDeps {
  db: Knex;
  kafka: KafkaClient;
  producer: EventProducer;
  txProducer: TransactionalProducer;
  logger: Logger;
  metrics: HubMetrics;
  policy: IdentityPolicy;
  clock?: () => number;
}

export interface FhirAdapterConfig {
  /** Postgres schema of the adapter's store. */
  schema: string;
  dlqTopic: string;
  /** EventMeta.source.system of everything this adapter publishes. */
  sourceSystem: string;
  /** Largest accepted request body for resources and bundles (bytes); above it: 413. */
  maxBodyBytes: number;
  /** Absolute base URL for Location headers; derived from the request when absent. */
  baseUrl?: string;
  importChunkSize?: number;
}

export interface FhirAdapter {
  http: FastifyInstance;
  store: FhirStore;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const JSON_TYPES = new Set(['application/fhir+json', 'application/json']);
const NDJSON_TYPES = new Set(['application/fhir+ndjson', 'application/x-ndjson', 'application/ndjson']);
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function mediaType(req: FastifyRequest): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function sendOutcome(reply: FastifyReply, status: number, oo: OperationOutcome): FastifyReply {
  return reply.status(status).type(FHIR_JSON).send(oo);
}

function sendInvalid(reply: FastifyReply, bad: Invalid): FastifyReply {
  return sendOutcome(reply, bad.status, outcome(bad.issues));
}

function prefixed(bad: Invalid, type: string, prefix: string): Invalid {
  return {
    ...bad,
    issues: bad.issues.map((i) => ({
      ...i,
      ...(i.expression
        ? { expression: i.expression.map((x) => x.replace(new RegExp(`^(${type}|\\$)`), prefix)) }
        : {}),
    })),
  };
}

function resourceTypeOf(v: unknown): string {
  const t = (v as { resourceType?: unknown } | undefined)?.resourceType;
  return typeof t === 'string' ? t : '$';
}

// Keyed by string so that codes other modules add (auth) map without a compile-time dependency.
const HTTP_STATUS: Partial<Record<string, number>> = {
  HUB_NOT_FOUND: 404,
  HUB_INPUT_INVALID: 400,
  HUB_EVENT_INVALID: 422,
  HUB_UNAUTHENTICATED: 401,
  HUB_FORBIDDEN: 403,
};

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  400: '400 Bad Request',
  422: '422 Unprocessable Entity',
  503: '503 Service Unavailable',
};

export function buildFhirAdapter(deps: FhirAdapterDeps, cfg: FhirAdapterConfig): FhirAdapter {
  const clock = deps.clock ?? Date.now;
  const log = deps.logger.child({ svc: 'adapter-fhir' });
  const store = createFhirStore(deps.db, cfg.schema);
  const http = createHttpApp({
    logger: log,
    metrics: deps.metrics.registry,
    bodyLimit: cfg.maxBodyBytes,
    readiness: {
      postgres: async () => {
        await deps.db.raw('select 1');
        return { ok: true };
      },
      // A hung broker shows here, not only in each request's 503.
      kafka: () => {
        const h = deps.producer.health();
        return Promise.resolve(h.ok ? deps.txProducer.health() : h);
      },
    },
  });

  // Route patterns and status codes only: never ids or values from a request.
  const requests =
    (deps.metrics.registry.getSingleMetric('hub_fhir_requests_total') as
      Counter<'route' | 'method' | 'status'> | undefined) ??
    new Counter({
      name: 'hub_fhir_requests_total',
      help: 'FHIR adapter requests by route pattern, method and HTTP status',
      labelNames: ['route', 'method', 'status'],
      registers: [deps.metrics.registry],
    });
  const count = (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    requests.inc({
      route: req.routeOptions.url ?? 'unknown',
      method: req.method,
      status: String(reply.statusCode),
    });
    done();
  };
  const writes = new KeyedLock();
  const planner = (requestId: string | null) =>
    new Planner({
      store,
      policy: deps.policy,
      sourceSystem: cfg.sourceSystem,
      recordedAt: clock(),
      correlationId: requestId,
    });

  const base = (req: FastifyRequest) => cfg.baseUrl ?? `${req.protocol}://${req.host}`;
  const location = (req: FastifyRequest, p: { type: string; id: string; version: number }) =>
    `${base(req)}/${p.type}/${p.id}/_history/${p.version}`;

  function requestIdOf(req: FastifyRequest): string | null | Invalid {
    const h = req.headers['x-request-id'];
    if (h === undefined) return null;
    if (typeof h !== 'string' || !REQUEST_ID.test(h)) {
      return {
        ok: false,
        reason: 'unmappable',
        status: 400,
        issues: [
          errorIssue('invalid', 'X-Request-Id must be 1-128 characters of [A-Za-z0-9._:-]', 'X-Request-Id'),
        ],
      };
    }
    return h;
  }

  /** Publishes, then (only after the acks) records the new versions. */
  async function commit(writes: readonly PlannedOk[], atomic: boolean): Promise<void> {
    const rows = writes.flatMap((w) => (w.kind === 'write' ? [w.row] : []));
    const events: ClinicalEvent[] = writes.flatMap((w) => (w.kind === 'write' ? w.events : []));
    if (events.length > 0) {
      if (atomic) await deps.txProducer.publishAtomically(events);
      else await deps.producer.publish(events);
    }
    await store.save(rows);
  }

  function onError(err: unknown, _req: FastifyRequest, reply: FastifyReply): FastifyReply {
    const e = err as { statusCode?: number; code?: unknown; message?: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendOutcome(
        reply,
        413,
        outcome([errorIssue('too-costly', `request body exceeds ${cfg.maxBodyBytes} bytes`)]),
      );
    }
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendOutcome(
        reply,
        415,
        outcome([errorIssue('not-supported', 'use application/fhir+json or application/json')]),
      );
    }
    if (e.statusCode && e.statusCode < 500 && !String(e.code).startsWith('HUB_')) {
      return sendOutcome(reply, e.statusCode, outcome([errorIssue('invalid', e.message ?? 'bad request')]));
    }
    const h = toHubError(err);
    const status = HTTP_STATUS[h.code] ?? (h.retriable ? 503 : 500);
    if (status >= 500) log.error({ code: h.code, retriable: h.retriable }, 'fhir request failed');
    // Driver messages can quote data: 5xx answer with the code's description.
    const diagnostics = status >= 500 ? `${h.code}: ${ERROR_CODES[h.code].description}` : h.message;
    return sendOutcome(
      reply,
      status,
      outcome([
        errorIssue(status === 503 ? 'transient' : status === 404 ? 'not-found' : 'processing', diagnostics),
      ]),
    );
  }

  // Resources and bundles: JSON bodies up to maxBodyBytes, parsed strictly by us, not by fastify.
  void http.register((scope: FastifyInstance, _opts, done) => {
    scope.setErrorHandler(onError);
    scope.addHook('onResponse', count);
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      ['application/fhir+json', 'application/json'],
      // Bytes, not a string: fastify would decode invalid UTF-8 to U+FFFD; parseJsonBody refuses it.
      { parseAs: 'buffer', bodyLimit: cfg.maxBodyBytes },
      (_req, body, next) => next(null, body),
    );
    scope.addHook('onRequest', (req, reply, next) => {
      if ((req.method === 'POST' || req.method === 'PUT') && !JSON_TYPES.has(mediaType(req))) {
        void sendOutcome(
          reply,
          415,
          outcome([errorIssue('not-supported', 'use application/fhir+json or application/json')]),
        );
        return;
      }
      next();
    });

    async function single(
      req: FastifyRequest,
      reply: FastifyReply,
      type: string,
      method: 'POST' | 'PUT',
      id?: string,
    ): Promise<FastifyReply> {
      if (!isSupportedType(type)) {
        return sendOutcome(
          reply,
          404,
          outcome([errorIssue('not-supported', `resource type ${type} is not served here`)]),
        );
      }
      if (id !== undefined && !FHIR_ID.test(id)) {
        return sendOutcome(
          reply,
          400,
          outcome([errorIssue('value', 'id must be 1-64 characters of [A-Za-z0-9-.]', `${type}.id`)]),
        );
      }
      const requestId = requestIdOf(req);
      if (requestId !== null && typeof requestId !== 'string') return sendInvalid(reply, requestId);
      const parsed = parseJsonBody(req.body instanceof Uint8Array ? req.body : '');
      if (!parsed.ok) return sendInvalid(reply, parsed);
      const v = validateFhirResource(parsed.value, type);
      if (!v.ok) return sendInvalid(reply, v);
      if (method === 'PUT' && v.value.id !== undefined && v.value.id !== id) {
        return sendOutcome(
          reply,
          400,
          outcome([errorIssue('invalid', 'the resource id must match the URL', `${type}.id`)]),
        );
      }
      const ifNoneExist = req.headers['if-none-exist'];
      const entry: EntryRequest = {
        resource: v.value as MappableResource,
        method,
        id,
        ifNoneExist: method === 'POST' && typeof ifNoneExist === 'string' ? ifNoneExist : undefined,
        requestKey: requestId ? `${requestId}#0` : null,
        messageId: requestId,
      };
      const pl = planner(requestId);
      const p = await writes.run([pl.targetKey(entry)], async () => {
        const planned = await pl.plan(entry);
        if (!('ok' in planned) && planned.kind === 'write') await commit([planned], false);
        return planned;
      });
      if ('ok' in p) return sendInvalid(reply, p);
      if (p.kind === 'noop') {
        return reply
          .status(200)
          .type(FHIR_JSON)
          .header('location', location(req, p))
          .header('etag', `W/"${p.version}"`)
          .send(p.resource);
      }
      return reply
        .status(p.created ? 201 : 200)
        .type(FHIR_JSON)
        .header('location', location(req, p))
        .header('etag', `W/"${p.version}"`)
        .header('last-modified', new Date(clock()).toUTCString())
        .send(p.row.resource);
    }

    scope.post<{ Params: { type: string } }>('/:type', (req, reply) =>
      single(req, reply, req.params.type, 'POST'),
    );
    scope.put<{ Params: { type: string; id: string } }>('/:type/:id', (req, reply) =>
      single(req, reply, req.params.type, 'PUT', req.params.id),
    );
    scope.get<{ Params: { type: string; id: string } }>('/:type/:id', async (req, reply) => {
      const { type, id } = req.params;
      const hit = isSupportedType(type)
        ? (await store.getMany([{ type, id }])).get(`${type}/${id}`)
        : undefined;
      if (!hit)
        return sendOutcome(reply, 404, outcome([errorIssue('not-found', `${type}/${id} is not known`)]));
      return reply.type(FHIR_JSON).header('etag', `W/"${hit.version}"`).send(hit.resource);
    });

    scope.post('/', async (req, reply) => {
      const requestId = requestIdOf(req);
      if (requestId !== null && typeof requestId !== 'string') return sendInvalid(reply, requestId);
      const parsed = parseJsonBody(req.body instanceof Uint8Array ? req.body : '');
      if (!parsed.ok) return sendInvalid(reply, parsed);
      const b = parsed.value as Partial<Bundle>;
      if (b.resourceType !== 'Bundle' || (b.type !== 'batch' && b.type !== 'transaction')) {
        return sendOutcome(
          reply,
          400,
          outcome([
            errorIssue('invalid', 'POST / takes a Bundle of type batch or transaction', 'Bundle.type'),
          ]),
        );
      }
      if (b.entry !== undefined && !Array.isArray(b.entry)) {
        return sendOutcome(
          reply,
          400,
          outcome([errorIssue('structure', 'Bundle.entry must be an array', 'Bundle.entry')]),
        );
      }
      const entries: BundleEntry[] = b.entry ?? [];
      const atomic = b.type === 'transaction';
      const pl = planner(requestId);
      // Validate every entry first; each becomes an EntryRequest or an Invalid.
      const prepared: (EntryRequest | Invalid)[] = entries.map((e, i) => {
        const where = `Bundle.entry[${i}]`;
        const method = e.request?.method;
        const url = e.request?.url ?? '';
        const [urlType, urlId] = url.replace(/^\//, '').split('?')[0]!.split('/');
        if (method !== 'POST' && method !== 'PUT') {
          return {
            ok: false,
            reason: 'unmappable',
            status: 400,
            issues: [
              errorIssue(
                'not-supported',
                'entry.request.method must be POST or PUT',
                `${where}.request.method`,
              ),
            ],
          } satisfies Invalid;
        }
        const v = validateFhirResource(e.resource, urlType);
        if (!v.ok) return prefixed(v, resourceTypeOf(e.resource), `${where}.resource`);
        if (v.value.resourceType === 'Bundle') {
          return {
            ok: false,
            reason: 'unsupported-type',
            status: 422,
            issues: [errorIssue('not-supported', 'nested Bundle', `${where}.resource`)],
          } satisfies Invalid;
        }
        if (method === 'PUT' && (!urlId || (v.value.id !== undefined && v.value.id !== urlId))) {
          return {
            ok: false,
            reason: 'unmappable',
            status: 400,
            issues: [
              errorIssue('invalid', 'PUT needs {type}/{id} matching the resource id', `${where}.request.url`),
            ],
          } satisfies Invalid;
        }
        return {
          resource: v.value as MappableResource,
          method,
          id: method === 'PUT' ? urlId : undefined,
          ifNoneExist: method === 'POST' ? e.request?.ifNoneExist : undefined,
          fullUrl: e.fullUrl,
          requestKey: requestId ? `${requestId}#${i}` : null,
          messageId: requestId,
        } satisfies EntryRequest;
      });
      const valid = prepared.filter((p): p is EntryRequest => !('ok' in p));
      const done = await writes.run(
        valid.map((e) => pl.targetKey(e)),
        async (): Promise<
          { refused: Invalid[] } | { results: (PlannedOk | Invalid)[]; commitError: FhirIssue | null }
        > => {
          await pl.prefetch(valid);
          const results: (PlannedOk | Invalid)[] = [];
          for (const [i, p] of prepared.entries()) {
            if ('ok' in p) results.push(p);
            else results.push(await pl.plan(p, `Bundle.entry[${i}].resource`));
          }
          const failed = results.filter((r): r is Invalid => 'ok' in r);
          if (atomic && failed.length > 0) return { refused: failed };
          const ok = results.filter((r): r is PlannedOk => !('ok' in r));
          try {
            await commit(ok, atomic);
            return { results, commitError: null };
          } catch (err) {
            if (atomic) throw err;
            const h = toHubError(err);
            log.error({ code: h.code }, 'batch commit failed');
            return {
              results,
              commitError: errorIssue('transient', `${h.code}: ${ERROR_CODES[h.code].description}`),
            };
          }
        },
      );
      if ('refused' in done) {
        const status = done.refused.some((f) => f.status === 400) ? 400 : 422;
        return sendOutcome(reply, status, outcome(done.refused.flatMap((f) => f.issues)));
      }
      const { results, commitError } = done;
      const response: Bundle = {
        resourceType: 'Bundle',
        type: atomic ? 'transaction-response' : 'batch-response',
        entry: results.map((r): BundleEntry => {
          if ('ok' in r) return { response: { status: STATUS_TEXT[r.status]!, outcome: outcome(r.issues) } };
          if (commitError)
            return { response: { status: STATUS_TEXT[503]!, outcome: outcome([commitError]) } };
          const status = r.kind === 'write' && r.created ? 201 : 200;
          return {
            fullUrl: `${base(req)}/${r.type}/${r.id}`,
            resource: r.kind === 'write' ? r.row.resource : r.resource,
            response: { status: STATUS_TEXT[status]!, location: location(req, r), etag: `W/"${r.version}"` },
          };
        }),
      };
      return reply.status(200).type(FHIR_JSON).send(response);
    });
    done();
  });

  // Bulk import: the body is streamed, never buffered, so no body limit applies.
  void http.register((scope: FastifyInstance, _opts, done) => {
    scope.setErrorHandler(onError);
    scope.addHook('onResponse', count);
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, payload, next) => next(null, payload));
    scope.post<{ Querystring: { label?: string } }>('/$import', async (req, reply) => {
      const mt = mediaType(req);
      const format = NDJSON_TYPES.has(mt) ? 'ndjson' : JSON_TYPES.has(mt) ? 'bundle' : null;
      if (!format) {
        (req.body as Readable).resume();
        return sendOutcome(
          reply,
          415,
          outcome([
            errorIssue(
              'not-supported',
              'use application/fhir+ndjson (NDJSON) or application/fhir+json (a Bundle)',
            ),
          ]),
        );
      }
      const importId = req.headers['x-import-id'];
      if (importId !== undefined && (typeof importId !== 'string' || !REQUEST_ID.test(importId))) {
        (req.body as Readable).resume();
        return sendOutcome(
          reply,
          400,
          outcome([
            errorIssue('invalid', 'X-Import-Id must be 1-128 characters of [A-Za-z0-9._:-]', 'X-Import-Id'),
          ]),
        );
      }
      const label = req.query.label && REQUEST_ID.test(req.query.label) ? req.query.label : 'http-import';
      const summary: ImportSummary = await runImport(
        {
          store,
          producer: deps.producer,
          policy: deps.policy,
          sourceSystem: cfg.sourceSystem,
          dlqTopic: cfg.dlqTopic,
          logger: log,
          clock,
        },
        req.body as Readable,
        {
          importKey: typeof importId === 'string' ? `http:${importId}` : null,
          format,
          label,
          ...(cfg.importChunkSize ? { chunkSize: cfg.importChunkSize } : {}),
        },
      );
      if (summary.deadLetters > 0) {
        deps.metrics.deadLetters.inc({ consumer: 'fhir-import', reason: 'invalid' }, summary.deadLetters);
      }
      return reply.status(200).type('application/json').send(summary);
    });
    done();
  });

  return {
    http,
    store,
    async start() {
      loadFhirDefinitions();
      await store.migrate();
      await ensureTopics(deps.kafka, [
        { name: cfg.dlqTopic, partitions: 1, replicationFactor: 1, retentionMs: -1 },
      ]);
    },
    async stop() {
      await http.close();
    },
  };
}
