import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { FastifyReply } from 'fastify';
import { FHIR_JSON } from '../../../libs/http/errors.js';
import { nextLink, nextPageLink } from '../paging.js';
import type { Page } from '../readers/portal.js';

/** A searchset Bundle: one page of matches, with its own link and the next page's. */
export function searchset(
  base: string,
  resources: Resource[],
  total: number,
  self: string,
  next: string | null,
): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total,
    link: [{ relation: 'self', url: self }, ...(next ? [{ relation: 'next', url: next }] : [])],
    // FHIR JSON has no empty arrays: a page without matches has no entry element.
    ...(resources.length > 0
      ? {
          entry: resources.map((r) => ({
            fullUrl: `${base}/fhir/${r.resourceType}/${r.id ?? ''}`,
            resource: r,
            search: { mode: 'match' as const },
          })),
        }
      : {}),
  };
}

export interface PageRequest {
  /** Base of the links: PUBLIC_BASE_URL or the listen address, never the request's Host. */
  base: string;
  path: string;
  /** The parameters the links carry (only those the route accepted). */
  params: Record<string, string | readonly string[] | undefined>;
  offset: number;
  count: number;
}

/** Answers one page of a search or $everything as a searchset Bundle. */
export function sendSearchset(reply: FastifyReply, req: PageRequest, page: Page): FastifyReply {
  const { base, path, params, offset, count } = req;
  const span = { offset, count, shown: page.resources.length, total: page.total };
  return reply
    .type(FHIR_JSON)
    .send(
      searchset(
        base,
        page.resources,
        page.total,
        nextLink(base, path, params, offset, count),
        nextPageLink(base, path, params, span),
      ),
    );
}
