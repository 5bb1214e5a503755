import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { HubError } from '../errors/index.js';

/**
 * The site configuration: what a hospital's interface team knows about its
 * senders and cannot be guessed from a message. One file (path in
 * HUB_SITE_CONFIG, JSON or YAML), read once by each service's main.ts and
 * passed in. Published as a JSON Schema (deploy/site-config.schema.json,
 * generated from the zod schema below) so editors can check it as it is
 * written; docs/site-configuration.md explains every field.
 *
 * - `defaultTimeZone` / `senders`: HL7 v2 (chapter 2, DTM) says a time
 *   without an offset is in the sender's local time. The hub cannot know that
 *   zone, so it is configured, per sender where senders differ.
 * - `authorities`: one assigning authority arrives as a namespace id in one
 *   feed and as a universal id (OID/URI) in another; the table says they are
 *   one authority and which identifier system the hub records for it.
 * - `enterpriseSystems`: the systems whose identifier value is the enterprise
 *   patient identity (libs/identity).
 */

const OID = /^[0-2](\.(0|[1-9][0-9]*))+$/;
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;
/** HD.1 and MSH-3.1/MSH-4.1 values: no HL7 delimiters, no surrounding blanks. */
const HD_VALUE = /^[^\s^&~\\|](?:[^^&~\\|]*[^\s^&~\\|])?$/;
const IANA_HINT = 'an IANA time zone name such as America/Chicago or Europe/Berlin (not an offset)';

/**
 * Whether `name` is an IANA time zone name this runtime knows (its ICU data
 * decides, as it will when times are converted). Offsets ("+05:00") and
 * abbreviations that are not zone names are refused: an offset has no DST,
 * and a sender's local time does.
 */
export function isIanaTimeZone(name: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const timeZoneSchema = z
  .string()
  .refine(isIanaTimeZone, { error: (iss) => `${JSON.stringify(iss.input)} is not ${IANA_HINT}` })
  .meta({ description: `IANA time zone name, e.g. America/Chicago`, examples: ['America/Chicago'] });

const uriSchema = z
  .string()
  .regex(URI, 'expected an absolute URI, e.g. urn:oid:2.16.840.1.113883.3.999 or https://mercy.example/mrn');

const hdValue = (what: string) =>
  z
    .string()
    .min(1)
    .regex(HD_VALUE, `${what}: no HL7 delimiters (^ & ~ \\ |) and no leading or trailing blanks`);

const senderSchema = z
  .strictObject({
    application: hdValue('application')
      .optional()
      .meta({ description: 'MSH-3.1 (sending application namespace id), matched case-insensitively' }),
    facility: hdValue('facility')
      .optional()
      .meta({ description: 'MSH-4.1 (sending facility namespace id), matched case-insensitively' }),
    timeZone: timeZoneSchema,
  })
  .meta({
    description:
      'The local time zone of one sender. The most specific match wins: application and facility, then application only, then facility only, then defaultTimeZone.',
  });

const authoritySchema = z
  .strictObject({
    namespaceId: hdValue('namespaceId')
      .optional()
      .meta({ description: 'HD.1 as senders send it (CX-4.1, EI-2, XCN-9.1), e.g. MERCY' }),
    universalId: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'HD.2: the OID or URI of the authority, e.g. 2.16.840.1.113883.3.999' }),
    universalIdType: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,10}$/, 'expected an HL7 table 0301 code, e.g. ISO or URI')
      .optional()
      .meta({ description: 'HD.3, HL7 table 0301: ISO for an OID, URI for a URI' }),
    identifierType: z
      .string()
      .regex(/^[A-Za-z0-9]{1,10}$/, 'expected an HL7 table 0203 code, e.g. MR, VN, PLAC, FILL')
      .optional()
      .meta({
        description:
          'HL7 table 0203 type of the identifiers it assigns (MR, VN, PLAC, FILL, ...): recorded when the sender leaves CX-5 empty. Not used to match.',
      }),
    system: uriSchema.meta({
      description:
        'The identifier system the hub records for this authority, however it was sent (FHIR Identifier.system)',
    }),
  })
  .meta({
    description:
      'One assigning authority. A message naming it by namespace id only, by universal id only, or by both, gets the same system.',
  });

/** TLS certificate names: a subject CN or DNS subject alternative name, as issued. */
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
const CERTIFICATE_NAME = /^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$/;

const mllpPeerSchema = z
  .strictObject({
    certificate: z
      .string()
      .regex(
        CERTIFICATE_NAME,
        'a certificate subject CN or DNS name (no control characters, no surrounding blanks), e.g. lab-engine.mercy.example',
      )
      .meta({
        description:
          'The client certificate: its subject CN, or one of its DNS subject alternative names (matched case-insensitively)',
      }),
    senders: z
      .array(
        z.strictObject({
          application: hdValue('application').meta({
            description: 'MSH-3.1 this peer may send as, matched case-insensitively',
          }),
          facility: hdValue('facility').optional().meta({
            description: 'MSH-4.1 this peer may send as; omitted: any facility of that application',
          }),
        }),
      )
      .min(1),
  })
  .meta({
    description:
      'One sending system allowed on the MLLP listener (TLS with client certificates): the MSH-3/MSH-4 senders its certificate may send as. A message from any other sender is answered AR and not published.',
  });

const mllpSchema = z
  .strictObject({
    peers: z.array(mllpPeerSchema).default([]),
  })
  .superRefine((m, ctx) => {
    const seen = new Map<string, number>();
    m.peers.forEach((p, i) => {
      const k = p.certificate.toLowerCase();
      const first = seen.get(k);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['peers', i, 'certificate'],
          message: `the same certificate as peers[${first}]`,
        });
      } else seen.set(k, i);
    });
  })
  .meta({
    description: "The HL7 adapter's MLLP listener: which client certificate may send as which senders",
  });

/** The site configuration file (JSON or YAML). */
export const siteConfigSchema = z
  .strictObject({
    $schema: z
      .string()
      .optional()
      .meta({ description: 'Optional: where editors find this schema; ignored by the hub' }),
    defaultTimeZone: timeZoneSchema.optional().meta({
      description:
        'IANA zone of HL7 v2 times sent without an offset, for senders not listed in `senders`. Required by the HL7 adapter: it refuses to start without a zone rather than assume UTC. Also the reporting zone of the analytics views (their days are local days of this zone).',
    }),
    senders: z.array(senderSchema).default([]),
    authorities: z.array(authoritySchema).default([]),
    enterpriseSystems: z.array(uriSchema).default([]).meta({
      description:
        'Identifier systems whose value is the enterprise patient identity, in priority order (usually the system of the hospital MRN authority)',
    }),
    mllp: mllpSchema.optional(),
  })
  .superRefine((c, ctx) => {
    const problem = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    const seenNs = new Map<string, number>();
    const seenUid = new Map<string, number>();
    c.authorities.forEach((a, i) => {
      if (a.namespaceId === undefined && a.universalId === undefined) {
        problem(['authorities', i], 'give namespaceId and/or universalId');
      }
      if (a.universalIdType !== undefined && a.universalId === undefined) {
        problem(['authorities', i, 'universalIdType'], 'universalIdType without universalId');
      }
      if (a.universalId !== undefined) {
        const type = a.universalIdType?.toUpperCase();
        if (type === 'ISO' && !OID.test(a.universalId)) {
          problem(
            ['authorities', i, 'universalId'],
            'universalIdType ISO needs an OID, e.g. 2.16.840.1.113883.3.999',
          );
        } else if (type === 'URI' && !URI.test(a.universalId)) {
          problem(['authorities', i, 'universalId'], 'universalIdType URI needs an absolute URI');
        } else if (type === undefined && !OID.test(a.universalId) && !URI.test(a.universalId)) {
          problem(
            ['authorities', i, 'universalId'],
            'expected an OID or an absolute URI (or give universalIdType)',
          );
        }
        const k = a.universalId.trim().toLowerCase();
        const first = seenUid.get(k);
        if (first !== undefined) {
          problem(['authorities', i, 'universalId'], `the same universalId as authorities[${first}]`);
        } else seenUid.set(k, i);
      }
      if (a.namespaceId !== undefined) {
        const k = a.namespaceId.toLowerCase();
        const first = seenNs.get(k);
        if (first !== undefined) {
          problem(['authorities', i, 'namespaceId'], `the same namespaceId as authorities[${first}]`);
        } else seenNs.set(k, i);
      }
    });
    const seenSender = new Map<string, number>();
    c.senders.forEach((s, i) => {
      if (s.application === undefined && s.facility === undefined) {
        problem(['senders', i], 'give application and/or facility');
        return;
      }
      const k = `${s.application?.toLowerCase() ?? ''}|${s.facility?.toLowerCase() ?? ''}`;
      const first = seenSender.get(k);
      if (first !== undefined) problem(['senders', i], `the same sender as senders[${first}]`);
      else seenSender.set(k, i);
    });
  })
  .meta({
    title: 'Clinical hub site configuration',
    description:
      'Per-site facts the hub cannot read from messages: sender time zones, assigning authorities and the enterprise identifier systems. See docs/site-configuration.md.',
  });

export type SiteConfig = z.output<typeof siteConfigSchema>;
export type SiteAuthority = SiteConfig['authorities'][number];
export type SiteSender = SiteConfig['senders'][number];
export type SiteMllpPeer = NonNullable<SiteConfig['mllp']>['peers'][number];

/** No file: no zone, no authorities (every authority gets its deterministic system). */
export const EMPTY_SITE_CONFIG: SiteConfig = { senders: [], authorities: [], enterpriseSystems: [] };

/** `authorities[2].universalId` from a zod issue path. */
function pathText(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out || '(root)';
}

function invalid(source: string, problems: string[]): HubError {
  return new HubError(
    'HUB_CONFIG_INVALID',
    `invalid site configuration ${source}:\n  ${problems.join('\n  ')}`,
    {
      details: { file: source, problems },
    },
  );
}

/**
 * Parses and validates the text of a site configuration. YAML 1.2 is a
 * superset of JSON, so one parser reads both; unlike JSON.parse it also
 * refuses a key given twice, which in a configuration file is a mistake
 * (which of the two was meant?). Every problem is listed in one error.
 */
export function parseSiteConfig(text: string, source = 'site configuration'): SiteConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw invalid(
      source,
      doc.errors.map((e) => {
        const at = e.linePos?.[0];
        const what = (e.message.split('\n')[0] ?? e.code).replace(/ at line \d+, column \d+:?$/, '');
        return `${at ? `line ${at.line}, column ${at.col}` : '(file)'}: ${what}`;
      }),
    );
  }
  const raw: unknown = doc.toJS();
  const parsed = siteConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw invalid(
      source,
      parsed.error.issues.map((i) => `${pathText(i.path)}: ${i.message}`),
    );
  }
  return parsed.data;
}

/** Reads a site configuration file (JSON or YAML); HUB_CONFIG_INVALID listing every problem. */
export function loadSiteConfig(path: string): SiteConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    throw new HubError(
      'HUB_CONFIG_INVALID',
      `HUB_SITE_CONFIG: cannot read ${path}${typeof code === 'string' ? ` (${code})` : ''}`,
      { cause, details: { file: path } },
    );
  }
  return parseSiteConfig(text, path);
}

/** The site configuration named by HUB_SITE_CONFIG, or the empty one when it is not set. */
export function siteConfigFromEnv(path: string | undefined): SiteConfig {
  return path ? loadSiteConfig(path) : EMPTY_SITE_CONFIG;
}

const same = (a: string | undefined, b: string) =>
  a !== undefined && a.toLowerCase() === b.trim().toLowerCase();

/**
 * The local zone of a sender (MSH-3.1 application, MSH-4.1 facility): the
 * most specific `senders` entry wins (application and facility, then
 * application only, then facility only), else `defaultTimeZone`. Names are
 * compared case-insensitively. Undefined when nothing applies.
 */
export function timeZoneFor(
  site: Pick<SiteConfig, 'senders' | 'defaultTimeZone'>,
  sendingApplication: string,
  sendingFacility: string,
): string | undefined {
  const both = site.senders.find(
    (s) =>
      s.application !== undefined &&
      s.facility !== undefined &&
      same(s.application, sendingApplication) &&
      same(s.facility, sendingFacility),
  );
  if (both) return both.timeZone;
  const app = site.senders.find((s) => s.facility === undefined && same(s.application, sendingApplication));
  if (app) return app.timeZone;
  const fac = site.senders.find((s) => s.application === undefined && same(s.facility, sendingFacility));
  if (fac) return fac.timeZone;
  return site.defaultTimeZone;
}

/**
 * For the HL7 adapter: a zone for every sender, or HUB_CONFIG_INVALID when
 * the site configuration has no defaultTimeZone. HL7 v2 times without an
 * offset are the sender's local time; assuming UTC would shift every one of
 * them silently, so the adapter does not start instead.
 */
export function senderTimeZones(
  site: Pick<SiteConfig, 'senders' | 'defaultTimeZone'>,
  configPath: string | undefined,
): (sendingApplication: string, sendingFacility: string) => string {
  const fallback = site.defaultTimeZone;
  if (fallback === undefined) {
    throw new HubError(
      'HUB_CONFIG_INVALID',
      configPath
        ? `invalid site configuration ${configPath}:\n  defaultTimeZone: required by the HL7 adapter (HL7 v2 times without an offset are the sender's local time; the hub does not assume UTC)`
        : "HUB_SITE_CONFIG is not set: the HL7 adapter needs a site configuration with defaultTimeZone (HL7 v2 times without an offset are the sender's local time; the hub does not assume UTC). See docs/site-configuration.md",
      { details: { file: configPath || null, problems: ['defaultTimeZone: required'] } },
    );
  }
  return (app, fac) => timeZoneFor(site, app, fac) ?? fallback;
}

/**
 * The shipped sample (deploy/local/site.sample.yaml) with its defaultTimeZone
 * set to `zone`, comments kept, validated: what `hub up` runs with when
 * HUB_SITE_CONFIG is not set, so a fresh clone reads local times in the
 * machine's zone rather than refusing to start or assuming UTC.
 */
export function localSiteConfigText(sampleText: string, zone: string): string {
  const doc = parseDocument(sampleText);
  doc.set('defaultTimeZone', zone);
  const text = doc.toString();
  parseSiteConfig(text, `site.sample.yaml with defaultTimeZone ${zone}`);
  return text;
}

/** The machine's IANA zone, or UTC when the runtime cannot name one. */
export function machineTimeZone(): string {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return zone && isIanaTimeZone(zone) ? zone : 'UTC';
}

/** The published JSON Schema of the file (deploy/site-config.schema.json), generated from the zod schema. */
export function siteConfigJsonSchema(): Record<string, unknown> {
  // io: 'input' describes the file as written (defaulted arrays are optional there).
  const schema = z.toJSONSchema(siteConfigSchema, { io: 'input', target: 'draft-2020-12' }) as Record<
    string,
    unknown
  >;
  return {
    ...schema,
    $id: 'https://clinical-hub.example/schemas/site-config.schema.json',
  };
}

/** The committed file's exact text. */
export function siteConfigJsonSchemaText(): string {
  return `${JSON.stringify(siteConfigJsonSchema(), null, 2)}\n`;
}
