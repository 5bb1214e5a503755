import type { DiagnosticReport, Observation, Reference, Resource } from '@medplum/fhirtypes';
import { createHash } from 'node:crypto';
import type { ClinicalEvent } from '../../events/index.js';
import { nameUuid } from '../../events/name-uuid.js';
import {
  contentHash,
  hubIdOfReference,
  linksOf,
  mapResource,
  parseLiteralReference,
  patientKeyFromIdentifierReference,
  subjectOf,
  toHubIdentifier,
  type MapContext,
  type MapInput,
  type MappableResource,
  type PriorVersion,
  type ResourceState,
} from '../mapping.js';
import { HubError } from '../../errors/index.js';
import { errorIssue } from '../outcome.js';
import { invalid, type Invalid } from '../validate.js';
import { enterpriseIdentifier, type IdentityPolicy } from '../../identity/index.js';
import { checkIdentifier } from '../../identity/hygiene.js';
import { keyOf, type FhirStore, type StoredResource } from './store.js';

/**
 * Decides, per entry, what a write means: a no-op (same content, or an
 * If-None-Exist match), or a new version with its events and the store row
 * to write after Kafka acknowledges. A Planner is used for one request or
 * one import chunk: it overlays its own pending writes on the store, so
 * later entries see earlier ones (a Patient then its Encounter in one bundle).
 */
export interface EntryRequest {
  resource: MappableResource;
  method: 'POST' | 'PUT';
  /** PUT target id. */
  id?: string | undefined;
  ifNoneExist?: string | undefined;
  /** Bundle entry fullUrl (e.g. urn:uuid:...), for references within the bundle. */
  fullUrl?: string | undefined;
  /** Client request id + entry index, when the client sent one. */
  requestKey: string | null;
  messageId: string | null;
  rawMessageRef?: string | null;
  /** An Observation a DiagnosticReport of the same request lists in result[] (MapInput.partOfReport). */
  partOfReport?: boolean | undefined;
}

export type Planned =
  | {
      kind: 'write';
      created: boolean;
      type: string;
      id: string;
      version: number;
      events: ClinicalEvent[];
      row: StoredResource;
    }
  | {
      kind: 'noop';
      reason: 'unchanged' | 'exists';
      type: string;
      id: string;
      version: number;
      resource: Resource;
    }
  | Invalid;

export type PlannedOk = Exclude<Planned, Invalid>;

export interface PlannerContext {
  store: FhirStore;
  policy: IdentityPolicy;
  sourceSystem: string;
  recordedAt: number;
  correlationId: string | null;
}

// Ids the hub assigns on POST; a fixed namespace keeps them stable across restarts.
const RESOURCE_ID_NAMESPACE = 'c2f0f7a4-6a1e-4d0b-8f5e-2b7d9e3c1a55';

function priorVersionOf(prev: StoredResource): PriorVersion {
  return {
    version: prev.version,
    contentHash: prev.contentHash,
    hubId: prev.hubId,
    patientKey: prev.patientKey,
    status: prev.status,
    location: prev.location,
  };
}

/** Issues name the element from the resource root; inside a bundle, from the entry. */
function rebased(bad: Invalid, type: string, where: string): Invalid {
  if (where !== type) {
    for (const i of bad.issues) {
      if (i.expression) i.expression = i.expression.map((x) => x.replace(new RegExp(`^${type}`), where));
    }
  }
  return bad;
}

/**
 * A write onto a resource another source system wrote: refused, and its content not
 * shown (a lab system must not overwrite, or read back, what the ADT system sent).
 */
function notOwned(type: string, where: string): Invalid {
  return invalid('not-owned', 403, [
    errorIssue('forbidden', `this ${type} was written by another source system`, where),
  ]);
}

export class Planner {
  private readonly overlay = new Map<string, StoredResource>();
  private readonly cache = new Map<string, StoredResource | null>();
  private readonly byIdentifier = new Map<string, string>();
  private readonly fullUrls: Map<string, string>;

  /** `fullUrls` may be shared across planners (the chunks of one Bundle document import). */
  constructor(
    private readonly ctx: PlannerContext,
    fullUrls?: Map<string, string>,
  ) {
    this.fullUrls = fullUrls ?? new Map<string, string>();
  }

  /**
   * The id a POST creates: from the business identifier, else the request,
   * else the content and its resolved patient (the same text can name another
   * patient through a bundle-local urn:uuid). Before references are resolved
   * (prefetch, lock keys) `subjectKey` is unknown, which only costs a lookup.
   */
  postId(e: EntryRequest, hash: string, subjectKey?: string): string {
    const r = e.resource;
    const ids = (r.identifier ?? [])
      .map((i) => toHubIdentifier(i, this.ctx.policy))
      .filter((i): i is NonNullable<typeof i> => i !== null);
    const chosen = r.resourceType === 'Patient' ? enterpriseIdentifier(ids, this.ctx.policy) : ids[0];
    const basis = chosen
      ? `${r.resourceType}|${chosen.system}|${chosen.value}`
      : e.requestKey
        ? `${r.resourceType}|request|${e.requestKey}`
        : `${r.resourceType}|content|${hash}|${subjectKey ?? ''}`;
    return nameUuid(basis, RESOURCE_ID_NAMESPACE);
  }

  /** `Type/id` this entry writes (for the write lock). */
  targetKey(e: EntryRequest): string {
    const id = e.method === 'PUT' && e.id ? e.id : this.postId(e, contentHash(e.resource));
    return keyOf(e.resource.resourceType, id);
  }

  private literalKeys(e: EntryRequest): { type: string; id: string }[] {
    const out: { type: string; id: string }[] = [];
    const add = (ref: Reference | undefined) => {
      const lit = parseLiteralReference(ref?.reference);
      if (lit) out.push(lit);
    };
    add(subjectOf(e.resource));
    const refs = linksOf(e.resource);
    add(refs.encounter);
    add(refs.basedOn);
    for (const x of refs.related) add(x.ref);
    if (e.resource.resourceType === 'DiagnosticReport') for (const r of e.resource.result ?? []) add(r);
    return out;
  }

  /** Loads, in one round trip, everything the entries will look up by id. */
  async prefetch(entries: readonly EntryRequest[]): Promise<void> {
    const keys: { type: string; id: string }[] = [];
    for (const e of entries) {
      keys.push({
        type: e.resource.resourceType,
        id: e.method === 'PUT' && e.id ? e.id : this.postId(e, contentHash(e.resource)),
      });
      keys.push(...this.literalKeys(e));
    }
    const missing = keys.filter((k) => !this.cache.has(keyOf(k.type, k.id)));
    if (missing.length === 0) return;
    const found = await this.ctx.store.getMany(missing);
    for (const k of missing) this.cache.set(keyOf(k.type, k.id), found.get(keyOf(k.type, k.id)) ?? null);
  }

  private async lookup(type: string, id: string): Promise<StoredResource | undefined> {
    const k = keyOf(type, id);
    const o = this.overlay.get(k);
    if (o) return o;
    if (!this.cache.has(k)) {
      const found = await this.ctx.store.getMany([{ type, id }]);
      this.cache.set(k, found.get(k) ?? null);
    }
    return this.cache.get(k) ?? undefined;
  }

  private async resolve(ref: Reference | undefined, type: string): Promise<StoredResource | undefined> {
    if (!ref?.reference) return undefined;
    const inBundle = this.fullUrls.get(ref.reference);
    if (inBundle) {
      const slash = inBundle.indexOf('/');
      return this.lookup(inBundle.slice(0, slash), inBundle.slice(slash + 1));
    }
    const lit = parseLiteralReference(ref.reference);
    if (!lit || lit.type !== type) return undefined;
    return this.lookup(lit.type, lit.id);
  }

  private async subjectKey(ref: Reference | undefined): Promise<string | undefined> {
    if (!ref) return undefined;
    const viaId = patientKeyFromIdentifierReference(ref, this.ctx.policy);
    if (viaId) return viaId;
    return (await this.resolve(ref, 'Patient'))?.patientKey;
  }

  private async findByIdentifier(
    type: string,
    system: string,
    value: string,
  ): Promise<StoredResource | undefined> {
    const pending = this.byIdentifier.get(`${type}|${system}|${value}`);
    if (pending) return this.overlay.get(pending);
    return this.ctx.store.findByIdentifier(type, system, value);
  }

  async plan(e: EntryRequest, where: string = e.resource.resourceType): Promise<Planned> {
    const r = e.resource;
    const type = r.resourceType;
    if (e.ifNoneExist !== undefined) {
      const matched = await this.ifNoneExist(type, e.ifNoneExist);
      if (matched) return matched;
    }
    const content = contentHash(r);
    const subjectKey = await this.subjectKey(subjectOf(r));
    const id = e.method === 'PUT' && e.id ? e.id : this.postId(e, content, subjectKey);
    // The same text can point at another patient (a bundle-local urn:uuid): that is a change.
    const hash = createHash('sha256')
      .update(`${content}|${subjectKey ?? ''}`)
      .digest('hex')
      .slice(0, 32);
    const prev = await this.lookup(type, id);
    if (prev && !this.owns(prev)) return notOwned(type, where);
    if (prev && prev.contentHash === hash) {
      return { kind: 'noop', reason: 'unchanged', type, id, version: prev.version, resource: prev.resource };
    }
    const version = (prev?.version ?? 0) + 1;
    const mapped = mapResource(
      {
        resource: r,
        id,
        version,
        contentHash: hash,
        previous: prev ? priorVersionOf(prev) : null,
        subjectKey,
        partOfReport: e.partOfReport,
        ...(await this.linkedIds(r)),
      },
      this.mapContext(e),
    );
    if (!mapped.ok) return rebased(mapped, type, where);
    const row = this.record(e, { type, id, version, contentHash: hash, state: mapped.state });
    return { kind: 'write', created: prev === undefined, type, id, version, events: mapped.events, row };
  }

  /**
   * If-None-Exist: the stored resource its identifier names (a no-op), a refusal of a
   * search other than identifier=system|value, or undefined when nothing matches.
   */
  private async ifNoneExist(type: string, search: string): Promise<Planned | undefined> {
    const q = new URLSearchParams(search);
    const ident = q.get('identifier');
    const bar = ident?.indexOf('|') ?? -1;
    if (!ident || bar <= 0 || bar === ident.length - 1 || [...q.keys()].length !== 1) {
      return invalid('unmappable', 400, [
        errorIssue('not-supported', 'If-None-Exist supports only identifier=system|value', 'If-None-Exist'),
      ]);
    }
    // The same hygiene as Identifier elements, so the search matches the stored canonical form.
    const checked = [ident.slice(0, bar), ident.slice(bar + 1)].map(checkIdentifier);
    const bad = checked.find((c) => !c.ok);
    if (bad && !bad.ok) {
      return invalid('identifier-invalid', 400, [
        errorIssue('value', `If-None-Exist identifier ${bad.message}`, 'If-None-Exist'),
      ]);
    }
    const wanted = toHubIdentifier(
      { system: ident.slice(0, bar), value: ident.slice(bar + 1) },
      this.ctx.policy,
    );
    // Null only for an empty value, which the checks above refused.
    if (!wanted) throw new HubError('HUB_INTERNAL', 'If-None-Exist identifier lost its value after checking');
    const hit = await this.findByIdentifier(type, wanted.system, wanted.value);
    if (!hit) return undefined;
    if (!this.owns(hit)) return notOwned(type, type);
    return { kind: 'noop', reason: 'exists', type, id: hit.id, version: hit.version, resource: hit.resource };
  }

  /** A resource belongs to the source system that wrote it (null: stored before sources were recorded). */
  private owns(row: StoredResource): boolean {
    return row.sourceSystem === null || row.sourceSystem === this.ctx.sourceSystem;
  }

  /** Hub ids of the encounter and order the resource points at, and a report's result observations. */
  private async linkedIds(
    r: MappableResource,
  ): Promise<Pick<MapInput, 'encounterId' | 'orderId' | 'order' | 'resultObservations' | 'related'>> {
    const refs = linksOf(r);
    const encounterRow = await this.resolve(refs.encounter, 'Encounter');
    const orderRow = await this.resolve(refs.basedOn, 'ServiceRequest');
    const related = new Map<string, Resource>();
    for (const x of refs.related) {
      const row = await this.resolve(x.ref, x.type);
      if (row && x.ref.reference) related.set(x.ref.reference, row.resource);
    }
    return {
      encounterId: encounterRow?.hubId ?? hubIdOfReference('enc', refs.encounter, this.ctx.policy),
      orderId: orderRow?.hubId ?? hubIdOfReference('ord', refs.basedOn, this.ctx.policy),
      order: orderRow?.resource.resourceType === 'ServiceRequest' ? orderRow.resource : undefined,
      related,
      resultObservations:
        r.resourceType === 'DiagnosticReport' ? await this.resultObservations(r) : undefined,
    };
  }

  /** DiagnosticReport.result: contained Observations, or ones this store (or bundle) holds. */
  private async resultObservations(r: DiagnosticReport): Promise<Observation[]> {
    const out: Observation[] = [];
    for (const ref of r.result ?? []) {
      const reference = ref.reference;
      if (reference?.startsWith('#')) {
        const localId = reference.slice(1);
        const c = r.contained?.find((x) => x.id === localId);
        if (c?.resourceType === 'Observation') out.push(c);
        continue;
      }
      const row = await this.resolve(ref, 'Observation');
      if (row?.resource.resourceType === 'Observation') out.push(row.resource);
    }
    return out;
  }

  private mapContext(e: EntryRequest): MapContext {
    return {
      policy: this.ctx.policy,
      recordedAt: this.ctx.recordedAt,
      source: { system: this.ctx.sourceSystem, facility: null, messageId: e.messageId },
      correlationId: this.ctx.correlationId,
      requestKey: e.requestKey,
      rawMessageRef: e.rawMessageRef ?? null,
    };
  }

  /** The store row of a new version, overlaid so that later entries of this request see it. */
  private record(
    e: EntryRequest,
    v: { type: string; id: string; version: number; contentHash: string; state: ResourceState },
  ): StoredResource {
    const r = e.resource;
    const stored = {
      ...this.withResolvedReferences(r),
      id: v.id,
      meta: {
        ...(r.meta ?? {}),
        versionId: String(v.version),
        lastUpdated: new Date(this.ctx.recordedAt).toISOString(),
      },
    } as Resource;
    const identifiers = (r.identifier ?? [])
      .map((i) => toHubIdentifier(i, this.ctx.policy))
      .filter((i): i is NonNullable<typeof i> => i !== null)
      .map((i) => ({ system: i.system, value: i.value }));
    const row: StoredResource = {
      type: v.type,
      id: v.id,
      version: v.version,
      contentHash: v.contentHash,
      hubId: v.state.hubId,
      patientKey: v.state.patientKey,
      status: v.state.status,
      location: v.state.location,
      resource: stored,
      identifiers,
      sourceSystem: this.ctx.sourceSystem,
    };
    const key = keyOf(v.type, v.id);
    this.overlay.set(key, row);
    if (e.fullUrl) this.fullUrls.set(e.fullUrl, key);
    for (const i of identifiers) this.byIdentifier.set(`${v.type}|${i.system}|${i.value}`, key);
    return row;
  }

  /** Bundle-local references (urn:uuid fullUrls) in the stored copy become `Type/id`. */
  private withResolvedReferences(r: MappableResource): MappableResource {
    if (this.fullUrls.size === 0) return r;
    const walk = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === 'object') {
        const o = v as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(o)) {
          out[k] = k === 'reference' && typeof x === 'string' ? (this.fullUrls.get(x) ?? x) : walk(x);
        }
        return out;
      }
      return v;
    };
    return walk(r) as MappableResource;
  }

  /** For a bundle whose entry is rejected after planning: forget what it would have written. */
  forget(p: Planned): void {
    if ('kind' in p && p.kind === 'write') this.overlay.delete(keyOf(p.type, p.id));
  }
}
