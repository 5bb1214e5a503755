import type { Attachment, Binary, DiagnosticReport, Resource } from '@medplum/fhirtypes';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import { HubError } from '../../libs/errors/index.js';
import { timedRead } from './db.js';
import { fhirErrors } from './schemas.js';

/**
 * FHIR Binary: the attachments of released reports (PDFs sent as HL7 ED),
 * stored once per content by the portal projector (`attachments`, keyed by
 * SHA-256) and presented by DiagnosticReport.presentedForm as
 * `Binary/<sha256>`.
 *
 * A Binary has no patient of its own: it may be read by whoever may read a
 * released report that presents it. So the reports presenting it are looked
 * up first (GIN index on presentedForm), and the request is authorized as a
 * read of that patient's DiagnosticReport, scoped and audited like every PHI
 * read. Content no released report presents (not yet, or no more: a
 * corrected report without it) is not found, whoever asks.
 */
export interface StoredBinary {
  contentType: string;
  size: number;
  /** FHIR Attachment.hash: base64 SHA-1. */
  sha1: string;
  data: Buffer;
}

export interface BinaryReader {
  /** Patients with a released report presenting this content. */
  owners(sha256: string): Promise<string[]>;
  read(sha256: string): Promise<StoredBinary | null>;
  /** sha256 → base64 SHA-1, for the contents stored so far. */
  hashes(sha256s: readonly string[]): Promise<Map<string, string>>;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function createBinaryReader(db: Knex, schema: string, timeoutMs: number): BinaryReader {
  const run = <T>(q: Knex.QueryBuilder | Knex.Raw): Promise<T> => timedRead<T>(q, timeoutMs);
  return {
    async owners(sha256) {
      const rows = await run<{ patient_id: string }[]>(
        db
          .withSchema(schema)
          .from('reports')
          .distinct('patient_id')
          .where('visible', true)
          .whereRaw(`resource->'presentedForm' @> ?::jsonb`, [JSON.stringify([{ url: `Binary/${sha256}` }])])
          .orderBy('patient_id'),
      );
      return rows.map((r) => r.patient_id);
    },
    async read(sha256) {
      const rows = await run<{ content_type: string; size: number; sha1: string; data: Buffer }[]>(
        db
          .withSchema(schema)
          .from('attachments')
          .where({ sha256 })
          .select('content_type', 'size', 'sha1', 'data')
          .limit(1),
      );
      const r = rows[0];
      return r ? { contentType: r.content_type, size: r.size, sha1: r.sha1, data: r.data } : null;
    },
    async hashes(sha256s) {
      if (sha256s.length === 0) return new Map();
      const rows = await run<{ sha256: string; sha1: string }[]>(
        db
          .withSchema(schema)
          .from('attachments')
          .whereIn('sha256', [...sha256s])
          .select('sha256', 'sha1'),
      );
      return new Map(rows.map((r) => [r.sha256, r.sha1]));
    },
  };
}

const shaOf = (a: Attachment): string | null => {
  const m = /^Binary\/([0-9a-f]{64})$/.exec(a.url ?? '');
  return m ? m[1]! : null;
};

/**
 * Adds Attachment.hash to the presentedForm of DiagnosticReports. The hash
 * is computed by the projector when it stores the bytes, which may be after
 * the report arrived (the topics are not ordered with each other): until
 * then the entry has no hash, and its Binary answers 404.
 */
export async function withAttachmentHashes(
  reader: BinaryReader | undefined,
  resources: Resource[],
): Promise<Resource[]> {
  if (!reader) return resources;
  const wanted = new Set<string>();
  for (const r of resources) {
    if (r.resourceType !== 'DiagnosticReport') continue;
    for (const a of r.presentedForm ?? []) {
      const sha = shaOf(a);
      if (sha) wanted.add(sha);
    }
  }
  if (wanted.size === 0) return resources;
  const hashes = await reader.hashes([...wanted]);
  return resources.map((r) => {
    if (r.resourceType !== 'DiagnosticReport' || !r.presentedForm) return r;
    const report: DiagnosticReport = {
      ...r,
      presentedForm: r.presentedForm.map((a) => {
        const sha = shaOf(a);
        const hash = sha ? hashes.get(sha) : undefined;
        return hash ? { ...a, hash } : a;
      }),
    };
    return report;
  });
}

/** FHIR's own JSON asked for: the Binary resource; anything else gets the content itself (FHIR R4 Binary read). */
export function wantsFhirJson(accept: string | undefined): boolean {
  return /application\/(fhir\+json|json\+fhir)/i.test(accept ?? '');
}

export function binaryResource(id: string, b: StoredBinary): Binary {
  return { resourceType: 'Binary', id, contentType: b.contentType, data: b.data.toString('base64') };
}

/** GET /fhir/Binary/:id, inside fhirRoutes (OperationOutcome errors). */
export function binaryRoute(app: FastifyInstance, binaries: BinaryReader): void {
  /** The patients found for a request before it is authorized. */
  const ownersOf = new WeakMap<FastifyRequest, string[]>();
  const idOf = (req: FastifyRequest): string => {
    const id = (req.params as { id?: unknown }).id;
    return typeof id === 'string' ? id : '';
  };

  app.get<{ Params: { id: string } }>(
    '/Binary/:id',
    {
      schema: {
        tags: ['fhir'],
        summary:
          'Read an attachment of a released report (DiagnosticReport.presentedForm): the content itself, or a FHIR Binary with Accept: application/fhir+json',
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
        },
        response: { ...fhirErrors },
      },
      // After the shared authentication check, before the shared authorization:
      // the patient the access decision is about is only known from the reports.
      preValidation: async (req) => {
        const id = idOf(req);
        if (!SHA256_HEX.test(id)) return; // the params schema answers 400
        const owners = await binaries.owners(id);
        if (owners.length === 0) throw new HubError('HUB_NOT_FOUND', 'no such Binary');
        ownersOf.set(req, owners);
      },
      config: {
        security: {
          interaction: 'read',
          resourceType: 'Binary',
          patientOf: (req) => ownersOf.get(req)?.[0] ?? null,
          access: (req) => {
            const owners = ownersOf.get(req) ?? [];
            // A patient's own token reads it as theirs when one of its reports is theirs.
            const own = req.principal?.patient;
            const patientId = own && owners.includes(own) ? own : (owners[0] ?? null);
            if (patientId === null) throw new HubError('HUB_NOT_FOUND', 'no such Binary');
            return { kind: 'fhir', interaction: 'read', resourceType: 'DiagnosticReport', patientId };
          },
        },
      },
    },
    async (req, reply) => {
      const d = req.decision;
      if (!d?.allow) throw new HubError('HUB_FORBIDDEN', 'access denied');
      const b = await binaries.read(req.params.id);
      // Presented by a released report, bytes not (yet) projected: the topics are not ordered with each other.
      if (!b) throw new HubError('HUB_NOT_FOUND', 'no such Binary');
      if (wantsFhirJson(req.headers.accept)) {
        return reply
          .type('application/fhir+json; charset=utf-8')
          .send(JSON.stringify(binaryResource(req.params.id, b)));
      }
      return reply.type(b.contentType).header('content-length', String(b.data.length)).send(b.data);
    },
  );
}
