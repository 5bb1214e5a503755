import type { Patient } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Knex } from '../../libs/db/index.js';
import { readTopic } from '../../libs/hl7/raw-store.js';
import { enterprisePatientId, type IdentityPolicy } from '../../libs/identity/index.js';
import { startTestFhirAdapter, type TestFhirAdapter } from '../../test/support/fhir-adapter.js';
import { advisoryLock } from './lock.js';
import { createTestContext, type TestContext } from '../../test/support/harness.js';

const MRN = 'urn:oid:2.16.840.1.113883.3.999.1';
const policy: IdentityPolicy = { enterpriseSystems: [MRN], authorityAliases: {} };
const WRITES = 12;

const patient = (given: string) => ({
  resourceType: 'Patient',
  id: 'scale-1',
  identifier: [{ system: MRN, value: 'MRN-SCALE-1' }],
  name: [{ family: 'Zzscaleout', given: [given] }],
  gender: 'female',
  birthDate: '1980-02-03',
});

/**
 * Two adapter instances (as behind an HTTP load balancer) over one store:
 * concurrent updates of one resource through both are serialised by
 * Postgres advisory locks (lock.ts), so every write gets a version of its own
 * and the store ends where the log ends. With the in-process lock alone, both
 * instances planned "version n+1" from the same stored version.
 */
describe('adapter-fhir scaled out: two instances, one store', () => {
  let ctx: TestContext;
  const lockDbs: Knex[] = [];
  const instances: TestFhirAdapter[] = [];

  beforeAll(async () => {
    ctx = await createTestContext('fhirscale');
    for (const name of ['a', 'b']) {
      const lockDb = createDb(ctx.ep.databaseUrl, { pool: { min: 0, max: 4 } });
      lockDbs.push(lockDb);
      instances.push(
        await startTestFhirAdapter(ctx, { policy, maxBodyBytes: 1 << 20, instance: name, lockDb }),
      );
    }
  }, 120_000);

  afterAll(async () => {
    for (const i of instances) await i.stop();
    for (const d of lockDbs) await d.destroy();
    await ctx?.cleanup();
  });

  const put = (i: number, body: object) =>
    instances[i % 2]!.adapter.http.inject({
      method: 'PUT',
      url: '/Patient/scale-1',
      headers: { ...instances[i % 2]!.auth, 'content-type': 'application/fhir+json' },
      payload: JSON.stringify(body),
    });

  it('given concurrent updates of one Patient through both instances, then each is its own version and the store ends where the log ends', async () => {
    // given the patient exists
    expect((await put(0, patient('V0'))).statusCode).toBe(201);

    // when differently named updates arrive at both instances at once
    const answers = await Promise.all(Array.from({ length: WRITES }, (_, i) => put(i, patient(`V${i + 1}`))));

    // then every one was a write of its own: versions 2..WRITES+1, none twice
    expect(answers.map((a) => a.statusCode)).toEqual(Array.from({ length: WRITES }, () => 200));
    const versions = answers.map((a) => a.headers['etag']).sort();
    expect(new Set(versions).size).toBe(WRITES);
    // and the log holds one event per write, in the order of the versions
    const key = enterprisePatientId([{ system: MRN, value: 'MRN-SCALE-1', type: 'MR' }], policy)!;
    const records = (await readTopic(ctx.kafka, ctx.topicFor('PatientUpdated'))).filter((r) => r.key === key);
    expect(new Set(records.map((r) => r.headers['hub-event-id'])).size).toBe(WRITES + 1);
    const last = await ctx.codec.decode(
      records.sort((a, b) => Number(BigInt(a.offset) - BigInt(b.offset))).at(-1)!.value,
    );
    if (last.type !== 'PatientUpdated') throw new Error(`last event is ${last.type}`);
    const lastGiven = last.data.demographics.names[0]?.given;
    // and both instances read back what the log's last event says, at the last version
    for (const inst of instances) {
      const got = await inst.adapter.http.inject({
        method: 'GET',
        url: '/Patient/scale-1',
        headers: inst.auth,
      });
      expect(got.statusCode).toBe(200);
      expect(got.headers['etag']).toBe(`W/"${WRITES + 1}"`);
      expect(got.json<Patient>().name?.[0]?.given).toEqual(lastGiven);
    }
  }, 120_000);

  it('given a resource whose lock another instance holds past the lock wait, then the write fails as HUB_DB_UNAVAILABLE (503) and runs nothing', async () => {
    // given another instance in the middle of a write of Patient/held
    const holder = advisoryLock(lockDbs[0]!, ctx.schema);
    let release!: () => void;
    let holding!: () => void;
    const held = new Promise<void>((r) => (holding = r));
    const first = holder(['Patient/held'], () => {
      holding();
      return new Promise<void>((r) => (release = r));
    });
    await held;
    // when this instance writes it, waiting at most 200 ms
    let ran = false;
    const second = advisoryLock(
      lockDbs[1]!,
      ctx.schema,
      '200ms',
    )(['Patient/held', 'Patient/free'], () => {
      ran = true;
      return Promise.resolve();
    });
    // then
    await expect(second).rejects.toMatchObject({ code: 'HUB_DB_UNAVAILABLE' });
    expect(ran).toBe(false);
    release();
    await first;
  });
});
