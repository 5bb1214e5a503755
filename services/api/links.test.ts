import type { Bundle } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { fakeApiPerTest } from '../../test/support/api.js';

/** Regression: the Host header (any client sets it) built Bundle links. */
const startApi = fakeApiPerTest();

const obs = (id: string) => ({
  resourceType: 'Observation' as const,
  id,
  status: 'final' as const,
  code: {},
});

describe('Bundle links come from configuration, never the request', () => {
  it('given Host and X-Forwarded-* of another site, when a page is served, then no link or fullUrl names it', async () => {
    const page = { total: 3, resources: [obs('O1')] };
    const api = await startApi({
      portal: {
        search: () => Promise.resolve(page),
        everything: () => Promise.resolve(page),
      },
      billing: { accounts: () => Promise.resolve({ total: 3, items: [] }) },
    });
    const evil = {
      host: 'evil.example',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'http',
      forwarded: 'host=evil.example;proto=http',
    };
    const answers = [
      await api.get('/fhir/Observation?_count=1', 'patient', evil),
      await api.get('/fhir/Patient/P1/$everything?_count=1', 'patient', evil),
      await api.get('/billing/accounts?_count=1', 'billing', evil),
    ];
    for (const r of answers) {
      expect(r.statusCode).toBe(200);
      expect(r.body).not.toContain('evil.example');
    }
    const bundle = JSON.parse(answers[0]!.body) as Bundle;
    expect(bundle.link?.map((l) => l.url)).toEqual([
      'https://api.test/fhir/Observation?patient=P1&_count=1&_offset=0',
      'https://api.test/fhir/Observation?patient=P1&_count=1&_offset=1',
    ]);
    expect(bundle.entry?.[0]?.fullUrl).toBe('https://api.test/fhir/Observation/O1');
    expect(JSON.parse(answers[2]!.body)).toMatchObject({
      next: 'https://api.test/billing/accounts?_count=1&_offset=1',
    });
  });
});
