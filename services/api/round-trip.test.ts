import type { Observation } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fakeApiPerTest } from '../../test/support/api.js';
import { buildReadModels } from '../../test/support/log-segment.js';
import { oruLine, oruSegments } from '../../test/support/oru-arbitraries.js';
import { avroTypeOf, type ClinicalEvent, type ResultReported } from '../../libs/events/index.js';
import { DEFAULT_IDENTITY_POLICY } from '../../libs/identity/index.js';
import { mapHl7Message } from '../../libs/hl7/map.js';
import { observationIdOf } from '../../libs/read-models/portal/resources.js';
import type { Owned } from './readers/portal.js';

const startApi = fakeApiPerTest();

/** FHIR dateTime text at the precision HL7 sent (day, hour → minute is the closest FHIR allows, …). */
const FHIR_LENGTH = { day: 10, hour: 16, minute: 16, second: 19 } as const;

describe('round trip: HL7 → event → Avro → portal → API', () => {
  it('given generated OBX lines, when mapped, encoded, decoded, projected and read through the API, then codings, units, flags, notes and time precision arrive unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(oruLine, { minLength: 1, maxLength: 3 }), async (lines) => {
        // given: an ORU as a sender writes it, mapped and carried through the log's Avro
        const out = mapHl7Message(Buffer.from(oruSegments(lines).join('\r')), {
          recordedAt: 0,
          policy: DEFAULT_IDENTITY_POLICY,
          rawMessageRef: null,
          timeZone: 'America/New_York',
        });
        if (out.kind !== 'mapped') throw new Error(out.refusal.error.message);
        const decoded = out.events.map((e): ClinicalEvent => {
          const t = avroTypeOf(e.type);
          const data: unknown = t.fromBuffer(t.toBuffer(e.data));
          return { ...e, data } as ClinicalEvent;
        });
        const report = decoded.find((e) => e.type === 'ResultReported')?.data as ResultReported;
        // when: the portal projection builds its rows and the API serves them
        const portal = buildReadModels(decoded.map((event) => ({ topic: 'clinical.result.v1', event })))[
          'portal'
        ];
        const rows = (portal?.['observations'] ?? []) as { observation_id: string; resource: Observation }[];
        const held = new Map<string, Owned>(
          rows.map((r) => [
            `Observation/${r.observation_id}`,
            { patientId: report.patientId, resource: r.resource },
          ]),
        );
        const api = await startApi({
          portal: { read: (t, id) => Promise.resolve(held.get(`${t}/${id}`) ?? null) },
        });
        try {
          expect(rows).toHaveLength(lines.length);
          for (const [i, l] of lines.entries()) {
            const id = observationIdOf(report.resultId, report.observations[i]!);
            const res = await api.get(`/fhir/Observation/${encodeURIComponent(id)}`, 'staff');
            expect(res.statusCode).toBe(200);
            const o = JSON.parse(res.body) as Observation;
            // then: every coding as sent, LOINC first and the local code beside it
            expect(o.code.coding?.map((c) => [c.system, c.code, c.display])).toEqual([
              ['http://loinc.org', l.loinc, l.display],
              ...(l.local ? [['urn:hl7:codesystem:99LAB', l.local.code, l.local.display]] : []),
            ]);
            // the quantity with its unit text and, where the sender said UCUM, the UCUM coding
            expect(o.valueQuantity?.value).toBe(l.value);
            expect(o.valueQuantity?.unit).toBe(l.unit.text ?? l.unit.code);
            expect(o.valueQuantity?.code).toBe(l.unit.code);
            if (l.unit.ucum) expect(o.valueQuantity?.system).toBe('http://unitsofmeasure.org');
            // every abnormal flag, the sender's v2-0078 coding kept
            const v2Flags = (o.interpretation ?? []).map(
              (c) =>
                c.coding?.find((x) => x.system === 'http://terminology.hl7.org/CodeSystem/v2-0078')?.code,
            );
            expect(v2Flags).toEqual(l.flags);
            // the notes that followed the OBX, on that observation
            expect((o.note ?? []).map((n) => n.text)).toEqual(l.notes.map((n) => n.lines.join('\n')));
            // the observed time at the precision sent (an hour-precise time is shown to the minute)
            if (l.observedAt)
              expect(o.effectiveDateTime?.length).toBeGreaterThanOrEqual(FHIR_LENGTH[l.observedAt.precision]);
          }
        } finally {
          await api.close();
        }
      }),
      { numRuns: 40 },
    );
  }, 120_000);
});
