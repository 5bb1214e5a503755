import type { Bundle, Patient, Resource } from '@medplum/fhirtypes';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { portalProjection } from '../../libs/read-models/portal/model.js';
import { startFakeApi, type FakeApi } from '../../test/support/api.js';
import { appliedSchema, type AppliedSchema } from '../../test/support/applied-schema.js';
import { admitted, at, registered } from '../../test/support/hospital-day.js';
import { linked, unlinked } from '../../test/support/identity-events.js';
import { createPortalReader } from './readers/portal.js';

/**
 * The portal API over two records of one person (master patient index),
 * read from a real portal read model: linked, either id shows both MRNs and
 * a `seealso` link, and the record of both; unlinked, each is alone again.
 * The routes and security are the real app's (inject), the tokens fake
 * (test/support/api.ts: the patient token is bound to P1).
 */
describe('portal API: records linked as one person', () => {
  let rm: AppliedSchema;
  let api: FakeApi | undefined;

  const start = async () =>
    (api = await startFakeApi({ portal: createPortalReader(rm.ctx.db, rm.schema, 5000) }));
  const body = <T>(r: { body: string }) => JSON.parse(r.body) as T;
  const mrns = (p: Patient) => (p.identifier ?? []).map((i) => i.value).sort();
  const ids = (b: Bundle) =>
    (b.entry ?? []).map((e) => `${e.resource?.resourceType}/${e.resource?.id}`).sort();

  beforeAll(async () => {
    rm = await appliedSchema('api_person', portalProjection(['t']));
    // The same person registered by two facilities, each with its own MRN and visit.
    await rm.apply([
      registered('P1', 'Doe', 'Jane', 'reg-p1', at(7)),
      registered('P2', 'Doe', 'Jnae', 'reg-p2', at(7, 5)),
      admitted('P1', 'E1', 'inpatient', '4W', 'adt-e1', at(8)),
      admitted('P2', 'E2', 'outpatient', 'CL', 'adt-e2', at(9)),
    ]);
  });
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });
  afterAll(() => rm?.cleanup());

  it('given two records not linked, when read, then each shows only its own MRN and visit', async () => {
    const a = await start();
    const p2 = body<Patient>(await a.get('/fhir/Patient/P2', 'staff'));
    expect(mrns(p2)).toEqual(['MRN-P2']);
    expect(p2.link).toBeUndefined();
    expect(ids(body<Bundle>(await a.get('/fhir/Patient/P1/$everything', 'staff')))).toEqual([
      'Encounter/E1',
      'Patient/P1',
    ]);
  });

  it('given the records linked, when either is read, then it shows both MRNs and a seealso link to the other', async () => {
    await rm.apply([linked('P1', 'P2', 'link-1', at(10), 'steward-ann')]);
    const a = await start();
    const p2 = body<Patient>(await a.get('/fhir/Patient/P2', 'staff'));
    expect(p2).toMatchObject({
      resourceType: 'Patient',
      id: 'P2',
      name: [{ family: 'Doe', given: ['Jnae'] }],
    });
    expect(mrns(p2)).toEqual(['MRN-P1', 'MRN-P2']);
    expect(p2.link).toEqual([{ other: { reference: 'Patient/P1' }, type: 'seealso' }]);
    const p1 = body<Patient>(await a.get('/fhir/Patient/P1', 'patient'));
    expect(mrns(p1)).toEqual(['MRN-P1', 'MRN-P2']);
    expect(p1.link).toEqual([{ other: { reference: 'Patient/P2' }, type: 'seealso' }]);
  });

  it('given the records linked, then $everything, searches and reads follow the person', async () => {
    const a = await start();
    const all = body<Bundle>(await a.get('/fhir/Patient/P1/$everything', 'patient'));
    expect(ids(all)).toEqual(['Encounter/E1', 'Encounter/E2', 'Patient/P1', 'Patient/P2']);
    const p2 = all.entry?.find((e) => e.resource?.id === 'P2')?.resource as Patient;
    expect(p2.link).toEqual([{ other: { reference: 'Patient/P1' }, type: 'seealso' }]);
    const enc = await a.get('/fhir/Encounter?patient=P1', 'patient');
    expect(ids(body<Bundle>(enc))).toEqual(['Encounter/E1', 'Encounter/E2']);
    // The other record's visit is the patient's own too: its reference resolves for their token.
    const e2 = await a.get('/fhir/Encounter/E2', 'patient');
    expect(e2.statusCode).toBe(200);
    expect(body<Resource>(e2)).toMatchObject({ resourceType: 'Encounter', id: 'E2' });
    expect(a.audits.at(-1)?.entity?.[0]?.what?.reference).toBe('Patient/P1');
  });

  it('given the link undone, then each record is alone again everywhere', async () => {
    await rm.apply([unlinked('P1', 'P2', 'unlink-1', at(11))]);
    const a = await start();
    const p1 = body<Patient>(await a.get('/fhir/Patient/P1', 'patient'));
    expect(mrns(p1)).toEqual(['MRN-P1']);
    expect(p1.link).toBeUndefined();
    const all = body<Bundle>(await a.get('/fhir/Patient/P1/$everything', 'patient'));
    expect(ids(all)).toEqual(['Encounter/E1', 'Patient/P1']);
    expect(ids(body<Bundle>(await a.get('/fhir/Encounter?patient=P1', 'patient')))).toEqual(['Encounter/E1']);
    expect((await a.get('/fhir/Encounter/E2', 'patient')).statusCode).toBe(403);
  });
});
