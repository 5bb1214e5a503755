import type { Knex } from 'knex';
import { HubError } from '../../libs/errors/index.js';
import type { SiteConfig } from '../../libs/site-config/index.js';

/**
 * The zone analytics counts days in: a hospital's "day" is its local day (an
 * evening admission in New York is not tomorrow's). The site configuration's
 * defaultTimeZone, already validated as an IANA name; UTC when none is
 * configured (a hub without HL7 feeds has no local zone to assume).
 */
export function reportingTimeZone(site: Pick<SiteConfig, 'defaultTimeZone'>): string {
  return site.defaultTimeZone ?? 'UTC';
}

/** Postgres: "time zone ... not recognized". */
const INVALID_PARAMETER_VALUE = '22023';

/**
 * Postgres converts with its own tz database, which may not know a zone the
 * runtime's ICU accepted when the site configuration was validated: refused
 * at start, rather than by every analyst query.
 */
export async function checkReportingTimeZone(db: Knex, zone: string): Promise<void> {
  try {
    await db.raw(`select now() at time zone ?`, [zone]);
  } catch (err) {
    if ((err as { code?: string }).code !== INVALID_PARAMETER_VALUE) throw err;
    throw new HubError(
      'HUB_CONFIG_INVALID',
      `defaultTimeZone: Postgres does not know the time zone ${JSON.stringify(zone)} (its tz database is older than the runtime's); analytics counts days in it`,
      { cause: err, details: { problems: ['defaultTimeZone: unknown to Postgres'] } },
    );
  }
}

/**
 * Writes the reporting zone into the read model's one-row `settings` table,
 * through the stable schema (so the active version gets it; a rebuild
 * carries it over). The views read it when queried: changing the zone needs
 * a restart, not a rebuild, and the fact tables are the same for every zone.
 */
export async function writeReportingTimeZone(db: Knex, stable: string, zone: string): Promise<void> {
  await db
    .withSchema(stable)
    .into('settings')
    .insert({ id: true, reporting_time_zone: zone })
    .onConflict('id')
    .merge(['reporting_time_zone']);
}
