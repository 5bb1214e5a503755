import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from '../../libs/config/index.js';
import { HubError } from '../../libs/errors/index.js';

/**
 * The backend clients allowed to use the adapter and the source systems each
 * may write as (FHIR_CLIENTS_FILE, JSON or YAML). The identity provider says
 * who a client is (its token's client_id); this file says what it may claim
 * to be: every event it causes carries one of its source systems as
 * EventMeta.source.system, and it reads back only resources written under
 * them. The first system is the default; `X-Source-System` picks another.
 *
 * ```yaml
 * clients:
 *   - clientId: lab-system          # the token's client_id (or azp, or sub)
 *     sourceSystems: [lab-system]   # first: the default
 * ```
 */
const NAME = /^[A-Za-z0-9._:-]{1,128}$/;
const name = (what: string) => z.string().regex(NAME, `${what}: 1-128 characters of [A-Za-z0-9._:-]`);

export const fhirClientsSchema = z.strictObject({
  clients: z
    .array(
      z.strictObject({
        clientId: name('clientId'),
        sourceSystems: z.array(name('source system')).min(1),
        description: z.string().max(200).optional(),
      }),
    )
    .refine((cs) => new Set(cs.map((c) => c.clientId)).size === cs.length, 'a clientId is listed twice'),
});

export type FhirClientsConfig = z.output<typeof fhirClientsSchema>;

/** client_id → its source systems, default first. */
export type FhirClients = ReadonlyMap<string, readonly string[]>;

export function fhirClients(cfg: FhirClientsConfig): FhirClients {
  return new Map(cfg.clients.map((c) => [c.clientId, [...new Set(c.sourceSystems)]]));
}

/** Parses the text of a clients file; HUB_CONFIG_INVALID listing every problem (never a value). */
export function parseFhirClients(text: string, source: string): FhirClients {
  const doc = parseDocument(text, { uniqueKeys: true });
  const problems: string[] = doc.errors.map((e) => e.code);
  const parsed = problems.length === 0 ? fhirClientsSchema.safeParse(doc.toJS() ?? {}) : null;
  if (parsed?.success) return fhirClients(parsed.data);
  for (const i of parsed?.error.issues ?? []) problems.push(`${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new HubError('HUB_CONFIG_INVALID', `invalid FHIR clients file ${source}: ${problems.join('; ')}`, {
    details: { file: source, problems },
  });
}

/** Reads FHIR_CLIENTS_FILE; unset: no client may use the adapter (every token is refused with 403). */
export function loadFhirClients(path: string | undefined): FhirClients {
  if (!path) return new Map();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new HubError('HUB_CONFIG_INVALID', `FHIR_CLIENTS_FILE ${path} cannot be read`, { cause });
  }
  return parseFhirClients(text, path);
}
