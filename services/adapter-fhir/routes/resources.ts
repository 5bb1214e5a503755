import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { EntryRequest } from '../../../libs/fhir/import/ingest.js';
import type { FhirStore } from '../../../libs/fhir/import/store.js';
import type { MappableResource } from '../../../libs/fhir/mapping.js';
import { FHIR_ID, isSupportedType, validateFhirResource } from '../../../libs/fhir/validate.js';
import { FHIR_JSON } from '../../../libs/http/errors.js';
import type { Writer } from '../writer.js';
import {
  fhirJsonScope,
  isRefused,
  jsonBody,
  permitted,
  refusal,
  requestIdOf,
  sendRefusal,
  type Caller,
  type CallerOf,
  type Links,
  type Refusal,
} from './common.js';

/** Create (POST /{type}), update or create by id (PUT /{type}/{id}) and read (GET /{type}/{id}). */
export interface ResourceRoutesOptions {
  store: Pick<FhirStore, 'getMany'>;
  writer: Writer;
  maxBodyBytes: number;
  /** Public base URL for Location headers; relative links when absent. */
  baseUrl?: string | undefined;
  clock: () => number;
  /** Who calls (security.ts): what it may write as and read. */
  callerOf: CallerOf;
}

/** The request as an EntryRequest, or why it is refused (nothing is written then). */
function entryOf(
  req: FastifyRequest,
  type: string,
  method: 'POST' | 'PUT',
  id: string | undefined,
): EntryRequest | Refusal {
  if (!isSupportedType(type)) {
    return refusal(404, 'not-supported', `resource type ${type} is not served here`);
  }
  if (id !== undefined && !FHIR_ID.test(id)) {
    return refusal(400, 'value', 'id must be 1-64 characters of [A-Za-z0-9-.]', `${type}.id`);
  }
  const requestId = requestIdOf(req);
  if (isRefused(requestId)) return requestId;
  const parsed = jsonBody(req);
  if (!parsed.ok) return parsed;
  const v = validateFhirResource(parsed.value, type);
  if (!v.ok) return v;
  if (method === 'PUT' && v.value.id !== undefined && v.value.id !== id) {
    return refusal(400, 'invalid', 'the resource id must match the URL', `${type}.id`);
  }
  const ifNoneExist = req.headers['if-none-exist'];
  return {
    resource: v.value as MappableResource,
    method,
    id,
    ifNoneExist: method === 'POST' && typeof ifNoneExist === 'string' ? ifNoneExist : undefined,
    requestKey: requestId ? `${requestId}#0` : null,
    messageId: requestId,
  };
}

async function write(
  o: ResourceRoutesOptions,
  link: Links,
  caller: Caller,
  reply: FastifyReply,
  entry: EntryRequest,
): Promise<FastifyReply> {
  const pl = o.writer.planner(entry.messageId, caller.sourceSystem);
  const p = await o.writer.lock.run([pl.targetKey(entry)], async () => {
    const planned = permitted(caller, await pl.plan(entry));
    if (!isRefused(planned) && planned.kind === 'write') await o.writer.commit([planned], false);
    return planned;
  });
  if (isRefused(p)) return sendRefusal(reply, p);
  reply.type(FHIR_JSON).header('location', link.location(p)).header('etag', `W/"${p.version}"`);
  if (p.kind === 'noop') return reply.status(200).send(p.resource);
  return reply
    .status(p.created ? 201 : 200)
    .header('last-modified', new Date(o.clock()).toUTCString())
    .send(p.row.resource);
}

export const resourceRoutes: FastifyPluginAsync<ResourceRoutesOptions> = (scope, o) => {
  const link = fhirJsonScope(scope, o);
  const single = (
    req: FastifyRequest,
    reply: FastifyReply,
    type: string,
    method: 'POST' | 'PUT',
    id?: string,
  ) => {
    const entry = entryOf(req, type, method, id);
    return isRefused(entry) ? sendRefusal(reply, entry) : write(o, link, o.callerOf(req), reply, entry);
  };

  scope.post<{ Params: { type: string } }>('/:type', (req, reply) =>
    single(req, reply, req.params.type, 'POST'),
  );
  scope.put<{ Params: { type: string; id: string } }>('/:type/:id', (req, reply) =>
    single(req, reply, req.params.type, 'PUT', req.params.id),
  );
  // A client reads back only what was written under its own source systems; another's
  // resource is answered as unknown (404, not 403: its existence is not told either).
  scope.get<{ Params: { type: string; id: string } }>('/:type/:id', async (req, reply) => {
    const { type, id } = req.params;
    const caller = o.callerOf(req);
    // The id is not quoted back: it may be an identifier someone tried.
    if (!isSupportedType(type))
      return sendRefusal(reply, refusal(404, 'not-found', 'no such resource type here'));
    const unknown = () => sendRefusal(reply, refusal(404, 'not-found', `no such ${type} here`));
    if (!FHIR_ID.test(id)) return unknown();
    const hit = (await o.store.getMany([{ type, id }])).get(`${type}/${id}`);
    if (!hit) return unknown();
    caller.touched(hit.patientKey);
    if (hit.sourceSystem === null || !caller.systems.includes(hit.sourceSystem)) {
      caller.refused('not-owned');
      return unknown();
    }
    return reply.type(FHIR_JSON).header('etag', `W/"${hit.version}"`).send(hit.resource);
  });
  return Promise.resolve();
};
