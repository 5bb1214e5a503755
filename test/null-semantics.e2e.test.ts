import type { Patient } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawMllpClient, ackField } from './support/raw-mllp-client.js';
import type { Hl7Adapter } from '../services/adapter-hl7/app.js';
import { findPatient } from '../services/patient-directory/projection.js';
import { startTestApi, type TestApi } from './support/api.js';
import { eventually } from './support/harness.js';
import { startPatientDirectory, type RunningDirectory } from './support/patient-directory.js';
import { testHl7Adapter } from './support/private-broker.js';
import { startProjectorRun, type ProjectorRun } from './support/projectors.js';

/**
 * HL7 v2 null semantics through the whole path: messages over a real MLLP
 * socket into the HL7 adapter, events on real Kafka, the portal projector
 * and the patient directory in Postgres, the Patient read back as FHIR
 * through the API with a bearer token. A field not sent keeps the stored
 * value, `""` deletes it, a repeating field that is sent replaces the list.
 */

const MSH = (trigger: string, id: string) =>
  `MSH|^~\\&|NULLEHR|NULLHOSP|HUB|HUB|20260115${id.slice(-2)}0000+0000||ADT^${trigger}^ADT_A01|${id}|P|2.5.1`;
const EVN = (trigger: string, id: string) => `EVN|${trigger}|20260115${id.slice(-2)}0000+0000`;
const PV1 = 'PV1|1|O|CLINIC^^^NULLHOSP||||||||||||||||NULLV1^^^NULLHOSP^VN';
const NAME = 'Nullpath^Nadia';

/** PID with the fields given by number (PID-3 and PID-5 always sent). */
function pid(fields: Record<number, string>): string {
  const f: string[] = Array.from({ length: 17 }, () => '');
  f[1] = '1';
  f[3] = 'MRNNULL1^^^NULLHOSP^MR';
  f[5] = NAME;
  for (const [k, v] of Object.entries(fields)) f[Number(k)] = v;
  return `PID|${f.slice(1).join('|')}`;
}

const message = (trigger: string, id: string, pidFields: Record<number, string>) =>
  [MSH(trigger, id), EVN(trigger, id), pid(pidFields), PV1].join('\r') + '\r';

describe('HL7 null semantics end to end: MLLP -> Kafka -> portal -> API', () => {
  let run: ProjectorRun;
  let adapter: Hl7Adapter;
  let client: RawMllpClient;
  let directory: RunningDirectory;
  let api: TestApi;
  let patientId: string;

  beforeAll(async () => {
    run = await startProjectorRun('nulls');
    const { ctx } = run;
    adapter = testHl7Adapter(ctx, ctx.producer, { controlIdPrefix: 'NULLACK' });
    const { port } = await adapter.start();
    client = await RawMllpClient.connect(port);

    directory = await startPatientDirectory(ctx);

    api = await startTestApi(ctx, {
      portalSchema: run.stable.portal,
      billingSchema: run.stable.billing,
      analyticsSchema: run.stable.analytics,
      clinicalTopics: run.topics,
      subject: 'nurse-nulls',
    });
  });

  afterAll(async () => {
    client?.close();
    await api?.stop();
    await directory?.stop();
    await adapter?.stop();
    await run?.cleanup();
  });

  async function send(text: string): Promise<void> {
    await client.send(text);
    const ack = await client.nextAck();
    expect(ackField(ack, 'MSA', 1), ackField(ack, 'ERR', 3)).toBe('AA');
  }

  /** The portal's Patient through the API, once `ready` holds for it. */
  async function patientWhen(what: string, ready: (p: Patient) => boolean): Promise<Patient> {
    return eventually(
      async () => {
        const res = await api.get(`/fhir/Patient/${encodeURIComponent(patientId)}`);
        if (res.statusCode !== 200) return undefined;
        const p = res.json<Patient>();
        return ready(p) ? p : undefined;
      },
      { what, timeoutMs: 60_000 },
    );
  }

  /** The directory's row as a downstream team reads it: the stable schema, in SQL (its port serves no patient). */
  async function directoryRow(): Promise<Record<string, unknown>> {
    const row = await findPatient(run.ctx.db, directory.schema, patientId);
    expect(row).toBeDefined();
    return { ...row };
  }

  it('registers a patient with phone, address and marital status', async () => {
    await send(
      message('A04', 'NULL01', {
        7: '19790321',
        8: 'F',
        11: '7 Quiet Lane^^Nulltown^IL^62701^USA^H',
        13: '^PRN^PH^^1^217^5550101',
        16: 'M^Married^HL70002',
      }),
    );
    patientId = await eventually(
      async () => {
        const rows = await run.ctx.db
          .withSchema(run.schemaOf('portal'))
          .from('patients')
          .where({ placeholder: false })
          .select<{ patient_id: string }[]>('patient_id');
        return rows.length === 1 ? rows[0]!.patient_id : undefined;
      },
      { what: 'the registered patient in the portal', timeoutMs: 60_000 },
    );
    const p = await patientWhen('registration', (x) => (x.telecom?.length ?? 0) > 0);
    expect(p.telecom).toEqual([{ system: 'phone', value: '+1 217 5550101', use: 'home' }]);
    expect(p.address).toMatchObject([{ line: ['7 Quiet Lane'], city: 'Nulltown' }]);
    expect(p.maritalStatus?.coding?.[0]?.code).toBe('M');
    expect(p.birthDate).toBe('1979-03-21');
  });

  it('keeps the phone when an A08 does not send PID-13', async () => {
    await send(
      message('A08', 'NULL02', {
        7: '19790321',
        8: 'F',
        11: '7 Quiet Lane^^Nulltown^IL^62701^USA^H',
        16: 'S^Single^HL70002',
      }),
    );
    const p = await patientWhen('the A08 without PID-13', (x) => x.maritalStatus?.coding?.[0]?.code === 'S');
    expect(p.telecom).toEqual([{ system: 'phone', value: '+1 217 5550101', use: 'home' }]);
    expect(p.address).toMatchObject([{ line: ['7 Quiet Lane'] }]);
  });

  it('deletes the address when an A08 sends PID-11 as ""; what it does not send stays', async () => {
    await send(message('A08', 'NULL03', { 11: '""' }));
    const p = await patientWhen('the A08 with PID-11 ""', (x) => (x.address ?? []).length === 0);
    expect(p.telecom).toEqual([{ system: 'phone', value: '+1 217 5550101', use: 'home' }]);
    expect(p.maritalStatus?.coding?.[0]?.code).toBe('S');
    expect(p.birthDate).toBe('1979-03-21');
    expect(p.gender).toBe('female');
    expect(JSON.stringify(p)).not.toContain('\\"\\"');
    // The patient directory applies the same rule to what it keeps.
    const row = await eventually(
      async () => {
        const r = await directoryRow();
        return r['version'] === 3 ? r : undefined;
      },
      { what: 'the directory at version 3', timeoutMs: 60_000 },
    );
    expect(row).toMatchObject({ family: 'Nullpath', birth_date: '1979-03-21', gender: 'female' });
  });

  it('replaces the phone list when an A08 sends two PID-13 repetitions', async () => {
    await send(message('A08', 'NULL04', { 13: '^PRN^PH^^1^217^5550201~^PRN^CP^^1^217^5550202' }));
    const p = await patientWhen('the A08 with two PID-13 repetitions', (x) => (x.telecom ?? []).length === 2);
    expect(p.telecom).toEqual([
      { system: 'phone', value: '+1 217 5550201', use: 'home' },
      { system: 'phone', value: '+1 217 5550202', use: 'mobile' },
    ]);
    // FHIR JSON has no empty arrays: the deleted address is absent.
    expect(p.address).toBeUndefined();
    expect(p.maritalStatus?.coding?.[0]?.code).toBe('S');
  });
});
