import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { HubError } from '../errors/index.js';
import {
  isIanaTimeZone,
  loadSiteConfig,
  localSiteConfigText,
  machineTimeZone,
  parseSiteConfig,
  senderTimeZones,
  siteConfigJsonSchemaText,
  timeZoneFor,
  type SiteConfig,
} from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'site-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HubError);
    expect((err as HubError).code).toBe('HUB_CONFIG_INVALID');
    return (err as HubError).details['problems'] as string[];
  }
  throw new Error('expected HUB_CONFIG_INVALID');
}

const expected: SiteConfig = {
  defaultTimeZone: 'America/Chicago',
  senders: [{ application: 'LABSYS', timeZone: 'America/New_York' }],
  authorities: [
    {
      namespaceId: 'MERCY',
      universalId: '2.16.840.1.113883.3.999',
      universalIdType: 'ISO',
      identifierType: 'MR',
      system: 'urn:oid:2.16.840.1.113883.3.999',
    },
  ],
  enterpriseSystems: ['urn:oid:2.16.840.1.113883.3.999'],
};

describe('loadSiteConfig', () => {
  it('given a JSON file, when loaded, then it is validated and returned', () => {
    const p = write('site.json', JSON.stringify(expected));
    expect(loadSiteConfig(p)).toEqual(expected);
  });

  it('given the same configuration as YAML with comments, when loaded, then it reads the same', () => {
    const p = write(
      'site.yaml',
      `# Mercy General (made up)
defaultTimeZone: America/Chicago
senders:
  - application: LABSYS   # the reference lab is on the east coast
    timeZone: America/New_York
authorities:
  - namespaceId: MERCY
    universalId: 2.16.840.1.113883.3.999
    universalIdType: ISO
    identifierType: MR
    system: urn:oid:2.16.840.1.113883.3.999
enterpriseSystems:
  - urn:oid:2.16.840.1.113883.3.999
`,
    );
    expect(loadSiteConfig(p)).toEqual(expected);
  });

  it('given an empty file, then it is the empty configuration (no zone, no authorities)', () => {
    expect(loadSiteConfig(write('empty.yaml', ''))).toEqual({
      senders: [],
      authorities: [],
      enterpriseSystems: [],
    });
  });

  it('given several mistakes, when loaded, then every one is listed with its path in one error', () => {
    const p = write(
      'bad.yaml',
      `defaultTimeZone: America/Chicgo
senders:
  - timeZone: UTC
  - application: LAB
    timeZone: "+05:00"
authorities:
  - namespaceId: MERCY
    universalId: 2.16.x
    universalIdType: ISO
    system: urn:oid:2.16.840.1.113883.3.999
  - namespaceId: mercy
    system: not a uri
    colour: blue
  - identifierType: MR
    system: urn:oid:1.2.3
enterpriseSystems: [urn:oid:1.2.3]
extra: true
`,
    );
    const problems = problemsOf(() => loadSiteConfig(p));
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^defaultTimeZone: "America\/Chicgo" is not an IANA time zone/),
        expect.stringMatching(/^senders\[0\]: give application and\/or facility/),
        expect.stringMatching(/^senders\[1\]\.timeZone: "\+05:00" is not an IANA time zone/),
        expect.stringMatching(/^authorities\[0\]\.universalId: universalIdType ISO needs an OID/),
        expect.stringMatching(/^authorities\[1\]\.namespaceId: the same namespaceId as authorities\[0\]/),
        expect.stringMatching(/^authorities\[1\]\.system: expected an absolute URI/),
        expect.stringMatching(/^authorities\[1\]: Unrecognized key: "colour"/),
        expect.stringMatching(/^authorities\[2\]: give namespaceId and\/or universalId/),
        expect.stringMatching(/^\(root\): Unrecognized key: "extra"/),
      ]),
    );
    expect(problems).toHaveLength(9);
    // The message itself lists them too, with the file.
    expect(() => loadSiteConfig(p)).toThrow(/invalid site configuration .*bad\.yaml:\n {2}defaultTimeZone/);
  });

  it('given a key twice or broken YAML, then the parse problems are listed with their lines', () => {
    const problems = problemsOf(() => parseSiteConfig('defaultTimeZone: UTC\ndefaultTimeZone: UTC\n'));
    expect(problems).toEqual(['line 2, column 1: Map keys must be unique']);
  });

  it('given a missing file, then HUB_CONFIG_INVALID names HUB_SITE_CONFIG and the path', () => {
    expect(() => loadSiteConfig(join(dir, 'nope.yaml'))).toThrow(
      /HUB_SITE_CONFIG: cannot read .*nope\.yaml \(ENOENT\)/,
    );
  });
});

describe('time zones', () => {
  it('accepts IANA names (and their links), refuses offsets and unknown names', () => {
    for (const ok of ['UTC', 'America/Chicago', 'Europe/Berlin', 'US/Central', 'Etc/GMT+5'])
      expect(isIanaTimeZone(ok), ok).toBe(true);
    for (const bad of ['+05:00', '-0500', 'Mars/Olympus', '', 'America/Chicago ', 'Z'])
      expect(isIanaTimeZone(bad), bad).toBe(false);
  });

  const site = parseSiteConfig(`
defaultTimeZone: America/Chicago
senders:
  - facility: EASTLAB
    timeZone: America/New_York
  - application: RADIS
    timeZone: America/Denver
  - application: RADIS
    facility: WEST
    timeZone: America/Los_Angeles
`);

  it('given sender entries, then the most specific match wins: application+facility, application, facility, default', () => {
    expect(timeZoneFor(site, 'RADIS', 'WEST')).toBe('America/Los_Angeles');
    expect(timeZoneFor(site, 'radis', 'west')).toBe('America/Los_Angeles');
    expect(timeZoneFor(site, 'RADIS', 'EASTLAB')).toBe('America/Denver');
    expect(timeZoneFor(site, 'LIS', 'EASTLAB')).toBe('America/New_York');
    expect(timeZoneFor(site, 'ADT', 'MERCY')).toBe('America/Chicago');
    expect(timeZoneFor({ senders: [] }, 'ADT', 'MERCY')).toBeUndefined();
  });

  it('given no defaultTimeZone, then the HL7 adapter zones refuse with HUB_CONFIG_INVALID naming the field', () => {
    expect(senderTimeZones(site, '/etc/hub/site.yaml')('RADIS', '')).toBe('America/Denver');
    expect(() => senderTimeZones({ senders: [] }, '/etc/hub/site.yaml')).toThrow(
      /site\.yaml:\n {2}defaultTimeZone: required by the HL7 adapter/,
    );
    expect(() => senderTimeZones({ senders: [] }, undefined)).toThrow(/HUB_SITE_CONFIG is not set/);
  });
});

describe('published JSON Schema', () => {
  it('deploy/site-config.schema.json is the one generated from the zod schema (npm run gen:site-schema)', () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const committed = readFileSync(join(root, 'deploy', 'site-config.schema.json'), 'utf8');
    expect(committed).toBe(siteConfigJsonSchemaText());
  });

  it("given the shipped sample and a machine zone, then hub up runs with that zone and the sample's comments and authorities", () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const sample = readFileSync(join(root, 'deploy', 'local', 'site.sample.yaml'), 'utf8');
    const text = localSiteConfigText(sample, 'Asia/Kolkata');
    expect(text).toContain('# Assigning authorities');
    const local = parseSiteConfig(text);
    expect(local.defaultTimeZone).toBe('Asia/Kolkata');
    expect(local.authorities).toEqual(parseSiteConfig(sample).authorities);
    expect(isIanaTimeZone(machineTimeZone())).toBe(true);
  });

  it('the shipped sample validates', () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const sample = loadSiteConfig(join(root, 'deploy', 'local', 'site.sample.yaml'));
    expect(sample.authorities.length).toBeGreaterThanOrEqual(3);
    expect(sample.defaultTimeZone).toBeDefined();
  });
});
