/**
 * Paging shared by every list route (FHIR searchsets and the JSON pages of
 * billing): the `_count`/`_offset` parameters and the `next` link. Pure.
 */
export const COUNT_DEFAULT = 50;
export const COUNT_MAX = 200;
export const OFFSET_MAX = 100_000;

/** Query-string schema of `_count` (above the maximum is a 400, not silently clamped) and `_offset`. */
export const PAGING_PARAMS = {
  _count: { type: 'integer', minimum: 1, maximum: COUNT_MAX, default: COUNT_DEFAULT },
  _offset: { type: 'integer', minimum: 0, maximum: OFFSET_MAX, default: 0 },
} as const;

export function asList(v: string | readonly string[] | undefined): string[] {
  if (v === undefined) return [];
  return typeof v === 'string' ? [v] : [...v];
}

/**
 * The link to a page: the same query with the offset moved on. Only
 * parameters the route accepted are carried, and the patient is the one the
 * request was confined to, so a link cannot widen what a token may see.
 */
export function nextLink(
  base: string,
  path: string,
  params: Record<string, string | readonly string[] | undefined>,
  offset: number,
  count: number,
): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (k === '_offset' || k === '_count') continue;
    for (const x of asList(v)) q.append(k, x);
  }
  q.set('_count', String(count));
  q.set('_offset', String(offset));
  return `${base}${path}?${q.toString()}`;
}

/** A page served: where it starts, its size, how many items it holds, and how many there are in all. */
export interface PageSpan {
  offset: number;
  count: number;
  shown: number;
  total: number;
}

/** The link to the page after this one, or null when this one reaches the end. */
export function nextPageLink(
  base: string,
  path: string,
  params: Record<string, string | readonly string[] | undefined>,
  page: PageSpan,
): string | null {
  if (page.offset + page.shown >= page.total) return null;
  return nextLink(base, path, params, page.offset + page.count, page.count);
}
