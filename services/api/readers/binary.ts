import type { Attachment, DiagnosticReport, Resource } from '@medplum/fhirtypes';
import type { Knex } from 'knex';
import { timedRead } from '../db.js';

/**
 * The attachments of released reports (PDFs sent as HL7 ED), stored once per
 * content by the portal projector (`attachments`, keyed by SHA-256) and
 * presented by DiagnosticReport.presentedForm as `Binary/<sha256>`. Who may
 * read one is decided by routes/fhir-binary.ts from `owners`.
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

const shaOf = (a: Attachment): string | null => /^Binary\/([0-9a-f]{64})$/.exec(a.url ?? '')?.[1] ?? null;

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
