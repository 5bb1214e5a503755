import { createHash } from 'node:crypto';
import { Hl7Client } from '@medplum/hl7';
import { Hl7Message } from '@medplum/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProjectorRun, type ProjectorRun } from './support/projectors.js';
import { expectPdfPresented, pseudoPdf } from './support/reports.js';
import { INGEST_TOPICS } from '../libs/events/contracts.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../libs/hl7/mllp.js';
import type { ProjectorService } from '../libs/projections/service.js';
import { lagOf } from '../libs/projections/inspect.js';
import type { Hl7Adapter } from '../services/adapter-hl7/app.js';
import { readTopic } from '../libs/hl7/raw-store.js';
import { clinicalTopics } from '../libs/projections/topics.js';
import { startTestApi, type TestApi } from './support/api.js';
import { testHl7Adapter } from './support/private-broker.js';
import { eventually, type TestContext } from './support/harness.js';

/**
 * A real-size report end to end: a 5 MB ORU^R01 whose OBX-5 is a base64 PDF
 * (HL7 ED) goes over a real MLLP socket (@medplum/hl7's client, not the
 * hub's code) into the adapter, which answers AA once Kafka holds the raw
 * message, the result and the PDF (lifted into AttachmentStored); the portal
 * projector stores the PDF by content; the API serves it as
 * DiagnosticReport.presentedForm -> Binary, byte-identical.
 */

const PDF = pseudoPdf(3_750_000); // 5.0 MB as base64
const SHA256 = createHash('sha256').update(PDF).digest('hex');
const CANARY_FAMILY = 'Zzlargereportfamily';

function oru(controlId: string): string {
  return [
    `MSH|^~\\&|PATHLIS|GENHOSP|HUB|HUBFAC|20260303101500||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    `PID|1||MRN-LR-001^^^HOSP^MR||${CANARY_FAMILY}^Rhea||19700214|F`,
    'PV1|1|O|PATH^^^GENHOSP||||||||||||||||VN-LR-1^^^HOSP^VN',
    'ORC|RE|PLC-LR-1^EHR|FIL-LR-1^PATHLIS',
    'OBR|1|PLC-LR-1^EHR|FIL-LR-1^PATHLIS|11526-1^Pathology study^LN|||20260303090000|||||||||||||||20260303101000|||F',
    'OBX|1|TX|22637-3^Pathology report final diagnosis^LN||Benign tissue, see attached report.||||||F',
    `OBX|2|ED|11526-1^Pathology report PDF^LN||PATHLIS^AP^PDF^Base64^${PDF.toString('base64')}||||||F`,
    '',
  ].join('\r');
}

describe('large report: 5 MB ORU with a base64 PDF, MLLP -> Kafka -> portal -> API Binary', () => {
  let run: ProjectorRun;
  let ctx: TestContext;
  let adapter: Hl7Adapter;
  let portal: ProjectorService;
  let api: TestApi;
  let stable: string;
  let port: number;

  beforeAll(async () => {
    run = await startProjectorRun('largerpt', ['portal']);
    ctx = run.ctx;
    stable = run.stable.portal;
    portal = run.services.portal;

    api = await startTestApi(ctx, {
      portalSchema: stable,
      clinicalTopics: clinicalTopics(ctx.topic),
      subject: 'pathologist-1',
    });

    adapter = testHl7Adapter(ctx, ctx.producer, {
      controlIdPrefix: 'ACK',
      cfg: {
        // The production default (MLLP_MAX_MESSAGE_BYTES) is what is under test.
        maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
        frameTimeoutMs: 60_000,
        // A loaded 2-core test machine writes ~9 MB to Kafka more slowly than production would.
        ackTimeoutMs: 30_000,
      },
    });
    port = (await adapter.start()).port;
  });

  /** Sends one message with @medplum/hl7's client and returns MSA-1. */
  async function send(text: string): Promise<string | undefined> {
    const client = new Hl7Client({ host: '127.0.0.1', port });
    try {
      const ack = await client.sendAndWait(Hl7Message.parse(text), { timeoutMs: 60_000 });
      return ack.getSegment('MSA')?.getField(1)?.toString();
    } finally {
      await client.close();
    }
  }

  afterAll(async () => {
    await adapter?.stop();
    await api?.stop();
    await run?.cleanup();
  });

  it('answers AA and serves the PDF back byte-identical through DiagnosticReport.presentedForm and Binary', async () => {
    // given a 5 MB ORU^R01 with the PDF as base64 ED in OBX-5
    const text = oru('LR-0001');
    expect(text.length).toBeGreaterThan(5_000_000);

    // when it is sent over MLLP by a client that is not the hub's code
    const code = await send(text);

    // then AA: the raw message, the result and the attachment are in Kafka
    expect(code).toBe('AA');
    const attachments = await readTopic(ctx.kafka, ctx.topicFor('AttachmentStored'));
    expect(attachments).toHaveLength(1);
    expect(attachments[0]!.value.length).toBeGreaterThan(PDF.length);
    const raw = await readTopic(ctx.kafka, ctx.topic(INGEST_TOPICS.hl7Raw));
    expect(raw).toHaveLength(1);
    expect(raw[0]!.value.length).toBeGreaterThan(5_000_000);
    expect(raw[0]!.value.includes(PDF.toString('base64').slice(-200))).toBe(true);
    // and the result event carries the reference, not the megabytes
    const results = await readTopic(ctx.kafka, ctx.topicFor('ResultReported'));
    expect(results).toHaveLength(1);
    expect(results[0]!.value.length).toBeLessThan(16 * 1024);
    const decoded = await ctx.codec.decode(results[0]!.value);
    const observations = (decoded as { data: { observations: { attachment: unknown }[] } }).data.observations;
    expect(observations[1]!.attachment).toMatchObject({ sha256: SHA256, size: PDF.length });

    // when the portal has projected it, the report presents the PDF ...
    const report = await expectPdfPresented(ctx, api, stable, PDF, 'Pathology report PDF');
    const asFhir = await api.get(`/fhir/${report.presentedForm![0]!.url!}`, 'application/fhir+json');
    expect(asFhir.statusCode).toBe(200);
    const binary = asFhir.json<{ resourceType: string; contentType: string; data: string }>();
    expect(binary.resourceType).toBe('Binary');
    expect(createHash('sha256').update(Buffer.from(binary.data, 'base64')).digest('hex')).toBe(SHA256);
  });

  it('given another message with the same PDF (a re-sent report), when sent, then AA and the PDF is still stored once', async () => {
    // when
    expect(await send(oru('LR-0002'))).toBe('AA');
    // then the log holds the second message as received, and the same AttachmentStored fact (same event id) ...
    const attachments = await readTopic(ctx.kafka, ctx.topicFor('AttachmentStored'));
    expect(attachments).toHaveLength(2);
    expect(new Set(attachments.map((a) => a.headers['hub-event-id'])).size).toBe(1);
    // ... and, once the portal has applied everything, one row for the content
    await eventually(
      async () => {
        const lag = await lagOf(ctx.db, ctx.kafka, portal.activeSchema()!, clinicalTopics(ctx.topic));
        return lag.lag === 0n && lag.total > 0n ? true : undefined;
      },
      { what: 'portal caught up', timeoutMs: 60_000 },
    );
    const stored: { sha256: string; size: number }[] = await ctx.db
      .withSchema(stable)
      .from('attachments')
      .select('sha256', 'size');
    expect(stored).toEqual([{ sha256: SHA256, size: PDF.length }]);
  });
});
