import type pg from 'pg'

import {CliError, UsageError} from '../cli/errors.js'
import type {ScheduleSpec} from '../../topology.js'
import {parseCron, type CronExpression} from './expression.js'

/**
 * What each pg_cron version accepts, keyed on the extension's version in the cron database
 * (pg_extension.extversion: '1.4-1' for 1.4.x, '1.5', '1.6'). Written for 1.4 to 1.6:
 * - 1.4: five-field cron expressions and @-macros, in GMT;
 * - 1.5: interval schedules ('[1-59] seconds') and cron.timezone;
 * - 1.6: `$` in the day-of-month field, the last day of the month.
 * extversion is the SQL schema's version: a server whose binaries were upgraded without
 * ALTER EXTENSION pg_cron UPDATE reports the older one, and we accept only what that one does.
 */

export interface PgCronVersion {
  major: number
  minor: number
  /** as the server reported it */
  text: string
}

/** The oldest pg_cron the estate is written for; an unknown version is taken as this one. */
export const OLDEST_PG_CRON = '1.4'
/** The newest pg_cron whose syntax we know (the declared schedules are checked against it). */
export const NEWEST_PG_CRON = '1.6'

const FEATURES = {
  intervalSchedules: {since: [1, 5], what: "interval schedules ('[1-59] seconds')"},
  timezone: {since: [1, 5], what: 'cron.timezone'},
  lastDayOfMonth: {since: [1, 6], what: "'$' for the last day of the month"},
} as const

export type PgCronFeature = keyof typeof FEATURES

/** '1.4-1' → 1.4, '1.6' → 1.6, '1.6.4' → 1.6; null when absent or not a version. */
export function parsePgCronVersion(text: string | null | undefined): PgCronVersion | null {
  const m = /^\s*(\d+)\.(\d+)/.exec(text ?? '')
  return m ? {major: Number(m[1]), minor: Number(m[2]), text: text!.trim()} : null
}

function asVersion(version: string | PgCronVersion | null | undefined): PgCronVersion | null {
  return typeof version === 'string' || version === null || version === undefined ? parsePgCronVersion(version) : version
}

/** Whether that pg_cron version has the feature (an unknown version is taken as the oldest, 1.4). */
export function pgCronSupports(version: string | PgCronVersion | null | undefined, feature: PgCronFeature): boolean {
  const v = asVersion(version) ?? parsePgCronVersion(OLDEST_PG_CRON)!
  const [major, minor] = FEATURES[feature].since
  return v.major > major || (v.major === major && v.minor >= minor)
}

/** A schedule as pg_cron reads it: a cron expression, or (1.5+) an interval in seconds. */
export type PgCronSchedule = {kind: 'cron'; source: string; cron: CronExpression} | {kind: 'interval'; source: string; seconds: number}

/** pg_cron's interval form (its TryParseInterval): a number, "second" or "seconds", any case, spaces around. */
const INTERVAL = /^\s*(\d+)\s*seconds?\s*$/i

function label(version: PgCronVersion | null): string {
  return version ? `pg_cron ${version.major}.${version.minor}` : `pg_cron of unknown version (taken as ${OLDEST_PG_CRON})`
}

function tooOld(schedule: string, feature: PgCronFeature, version: PgCronVersion | null, hint: string): UsageError {
  const [major, minor] = FEATURES[feature].since
  return new UsageError(`schedule ${JSON.stringify(schedule)} uses ${FEATURES[feature].what}, which needs pg_cron ${major}.${minor}+; this server has ${label(version)}`, {
    hint: `${hint}, or upgrade pg_cron (install the newer package, then ALTER EXTENSION pg_cron UPDATE in the cron database)`,
    code: 'PG_CRON_TOO_OLD',
  })
}

/**
 * Checks a schedule against what the installed pg_cron accepts (`version`: extversion, or null
 * when unknown) and returns it parsed. Throws a UsageError (exit 2, one line, with a hint): a
 * syntax error (BAD_CRON_EXPRESSION), or syntax of a newer pg_cron (PG_CRON_TOO_OLD). Pure.
 */
export function validateScheduleFor(version: string | PgCronVersion | null | undefined, schedule: string): PgCronSchedule {
  const v = asVersion(version)
  const macro = /^\s*(@\S*)\s*$/.exec(schedule)?.[1]
  if (macro !== undefined && macro !== macro.toLowerCase()) {
    throw new UsageError(`invalid cron expression ${JSON.stringify(schedule)}: pg_cron reads its @-macros in lower case only`, {
      hint: `write ${macro.toLowerCase()}`,
      code: 'BAD_CRON_EXPRESSION',
    })
  }
  let cronError: CliError
  try {
    // @restart is pg_cron's other name for @reboot
    const cron = macro === '@restart' ? {...parseCron('@reboot'), source: macro} : parseCron(schedule, {lastDayOfMonth: true})
    if (cron.lastDayOfMonth && !pgCronSupports(v, 'lastDayOfMonth')) {
      throw tooOld(schedule, 'lastDayOfMonth', v, "use days 28-31 with a date check in the command (e.g. WHERE (now() + interval '1 day')::date = date_trunc('month', now() + interval '1 day'))")
    }
    return {kind: 'cron', source: cron.source, cron}
  } catch (error) {
    if ((error as CliError).code === 'PG_CRON_TOO_OLD') throw error
    cronError = error as CliError
  }
  // pg_cron reads a schedule as cron first and as an interval only when that fails
  const interval = INTERVAL.exec(schedule)
  if (!interval) {
    if (!pgCronSupports(v, 'intervalSchedules')) throw cronError
    throw new UsageError(cronError.message, {hint: `${cronError.hint}; or an interval of 1 to 59 seconds, e.g. '30 seconds'`, code: 'BAD_CRON_EXPRESSION'})
  }
  const seconds = Number(interval[1])
  if (!pgCronSupports(v, 'intervalSchedules')) {
    throw tooOld(schedule, 'intervalSchedules', v, "use a cron expression (the shortest is '* * * * *', every minute)")
  }
  if (seconds < 1 || seconds > 59) {
    throw new UsageError(`invalid schedule ${JSON.stringify(schedule)}: an interval schedule takes 1 to 59 seconds`, {
      hint: "for a minute or more use a cron expression, e.g. '* * * * *' (every minute) or '*/5 * * * *'",
      code: 'BAD_CRON_EXPRESSION',
    })
  }
  return {kind: 'interval', source: schedule.trim(), seconds}
}

/** validateScheduleFor over the pg_cron schedules of a list, naming the schedule in the error (exit 2). */
export function validateSchedulesFor(version: string | PgCronVersion | null | undefined, schedules: readonly ScheduleSpec[]): void {
  for (const spec of schedules) {
    if (spec.runner !== 'pg_cron') continue
    try {
      validateScheduleFor(version, spec.schedule)
    } catch (error) {
      const e = error as CliError
      throw new UsageError(`schedule ${spec.name}: ${e.message}`, {hint: e.hint, code: e.code})
    }
  }
}

/** The zone pg_cron reads schedules in: cron.timezone from 1.5 on (default GMT), GMT before. */
export function cronTimezoneFor(version: string | PgCronVersion | null | undefined, setting: string | null | undefined): string {
  if (!pgCronSupports(version, 'timezone')) return 'GMT'
  return setting && setting.trim() !== '' ? setting.trim() : 'GMT'
}

export interface PgCronSettings {
  /** extversion in the connected database; null when the extension is not created there */
  version: string | null
  /** the zone next runs are computed in (GMT before 1.5) */
  timezone: string
}

/** pg_cron's version and time zone, read on a client connected to the cron database. */
export async function readPgCronSettings(client: pg.Client): Promise<PgCronSettings> {
  const {rows} = await client.query<{version: string | null; timezone: string | null}>(
    `SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') AS version,
            current_setting('cron.timezone', true) AS timezone`,
  )
  return {version: rows[0].version, timezone: cronTimezoneFor(rows[0].version, rows[0].timezone)}
}
