import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { PatientRow } from '../domain.js';
import { patientRoutes } from './patients.js';

const row: PatientRow = {
  patient_id: 'P1',
  family: 'Alpha',
  given: ['Testy'],
  birth_date: '1961-07-04',
  gender: 'female',
  identifiers: [{ system: 'urn:mrn', value: 'MRN-1', type: 'MR' }],
  merged_into: null,
  version: 2,
  last_event_id: '0b7e5a52-6d1c-4f0e-9a55-3c1a4b9f0a11',
  updated_at: Date.UTC(2026, 1, 1, 8, 30),
};

describe('patient-directory routes: GET /patients/:id', () => {
  let app: FastifyInstance;
  const asked: string[] = [];

  async function appWith(rows: Record<string, PatientRow>): Promise<FastifyInstance> {
    app = Fastify();
    await app.register(patientRoutes, {
      find: (id) => {
        asked.push(id);
        return Promise.resolve(rows[id]);
      },
    });
    return app;
  }
  afterEach(async () => {
    asked.length = 0;
    await app.close();
  });

  it('given a stored patient, then answers its demographics as camelCase JSON with the time in ISO 8601', async () => {
    const res = await (await appWith({ P1: row })).inject({ method: 'GET', url: '/patients/P1' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      patientId: 'P1',
      family: 'Alpha',
      given: ['Testy'],
      birthDate: '1961-07-04',
      gender: 'female',
      identifiers: [{ system: 'urn:mrn', value: 'MRN-1', type: 'MR' }],
      mergedInto: null,
      version: 2,
      updatedAt: '2026-02-01T08:30:00.000Z',
    });
  });

  it('given a retired patient, then says whom it was merged into', async () => {
    const res = await (
      await appWith({ P2: { ...row, patient_id: 'P2', merged_into: 'P1' } })
    ).inject({ method: 'GET', url: '/patients/P2' });
    expect(res.json()).toMatchObject({ patientId: 'P2', mergedInto: 'P1' });
  });

  it('given an unknown id, then 404 HUB_NOT_FOUND', async () => {
    const res = await (await appWith({})).inject({ method: 'GET', url: '/patients/NOPE' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'HUB_NOT_FOUND' });
  });

  it('given an id longer than a path parameter may be (fastify: 100), then 414 without looking it up', async () => {
    const res = await (await appWith({})).inject({ method: 'GET', url: `/patients/${'x'.repeat(101)}` });
    expect(res.statusCode).toBe(414);
    expect(asked).toEqual([]);
  });
});
