import { describe, expect, it } from 'vitest';
import { nextLink, nextPageLink } from './paging.js';

describe('paging links', () => {
  it('given a page, when the next link is built, then it keeps the filters and moves the offset', () => {
    const url = nextLink(
      'https://x',
      '/fhir/Observation',
      { patient: 'P1', date: ['ge2026', 'lt2027'], _offset: '0' },
      20,
      10,
    );
    const u = new URL(url);
    expect(u.pathname).toBe('/fhir/Observation');
    expect(u.searchParams.get('patient')).toBe('P1');
    expect(u.searchParams.getAll('date')).toEqual(['ge2026', 'lt2027']);
    expect(u.searchParams.get('_offset')).toBe('20');
    expect(u.searchParams.get('_count')).toBe('10');
  });
  it('given a page, when it reaches the total, then there is no next link', () => {
    const span = (offset: number, shown: number, total: number) => ({ offset, count: 2, shown, total });
    expect(nextPageLink('https://x', '/billing/accounts', {}, span(0, 2, 5))).toBe(
      'https://x/billing/accounts?_count=2&_offset=2',
    );
    expect(nextPageLink('https://x', '/billing/accounts', {}, span(4, 1, 5))).toBeNull();
    expect(nextPageLink('https://x', '/billing/accounts', {}, span(2, 2, 4))).toBeNull();
    expect(nextPageLink('https://x', '/billing/accounts', {}, span(10, 0, 0))).toBeNull();
  });
});
