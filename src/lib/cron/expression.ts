import {UsageError} from '../cli/errors.js'
import {instantsAt, isKnownTimeZone, isUtcZone, wallTime, zoneOffsetMs} from './timezone.js'

/**
 * Cron expressions as pg_cron 1.4 reads them (its parser is Vixie cron's): five fields, minute
 * hour day-of-month month day-of-week, in UTC (pg_cron 1.4 has no time zone setting and no
 * seconds), plus the @-macros. Pure functions: validation and next-run computation.
 *
 * Day-of-month and day-of-week are OR-ed when both are restricted (neither field starts with
 * '*'): `0 5 1-7 * 0` fires on days 1-7 AND on every Sunday. A field starting with '*' (also
 * `*\/2`) makes the two AND-ed, as in Vixie cron.
 *
 * Newer pg_cron adds `$` (1.6+: the last day of the month, alone in the day-of-month field) and
 * cron.timezone (1.5+: the fields are read in that zone); parseCron takes `$` only when asked
 * (pg-cron-version.ts decides by the server's version) and the next-run functions take a zone.
 * Each minute is judged on its wall-clock time there, as pg_cron does: a time that a
 * spring-forward skips does not run that day, a time that a fall-back repeats runs twice.
 */

export interface CronExpression {
  /** the expression as given (trimmed) */
  source: string
  /** true for @reboot: runs when the server (or, for Oban, the application) starts */
  reboot: boolean
  minutes: ReadonlySet<number>
  hours: ReadonlySet<number>
  daysOfMonth: ReadonlySet<number>
  months: ReadonlySet<number>
  /** 0 = Sunday … 6 = Saturday (7 is read as 0) */
  daysOfWeek: ReadonlySet<number>
  domStar: boolean
  dowStar: boolean
  /** `$` in the day-of-month field (pg_cron 1.6+): the last day of the month */
  lastDayOfMonth: boolean
}

export interface ParseOptions {
  /** accept `$` (the last day of the month) alone in the day-of-month field, as pg_cron 1.6+ does */
  lastDayOfMonth?: boolean
}

export interface NextRunOptions {
  /** IANA zone the fields are read in (pg_cron's cron.timezone); default GMT */
  timezone?: string
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']

interface FieldSpec {
  label: string
  min: number
  max: number
  names?: string[]
  /** first name maps to this number */
  nameBase?: number
}

const FIELDS: FieldSpec[] = [
  {label: 'minute', min: 0, max: 59},
  {label: 'hour', min: 0, max: 23},
  {label: 'day of month', min: 1, max: 31},
  {label: 'month', min: 1, max: 12, names: MONTH_NAMES, nameBase: 1},
  {label: 'day of week', min: 0, max: 7, names: DAY_NAMES, nameBase: 0},
]

/** Thrown for an invalid expression: exit 2, one line. */
export class CronSyntaxError extends UsageError {
  constructor(expression: string, reason: string) {
    super(`invalid cron expression ${JSON.stringify(expression)}: ${reason}`, {
      hint: "five fields in UTC: minute hour day-of-month month day-of-week, e.g. '*/5 * * * *' or '0 3 * * 0'; or @hourly/@daily/@weekly/@monthly/@yearly/@reboot",
      code: 'BAD_CRON_EXPRESSION',
    })
    this.name = 'CronSyntaxError'
  }
}

function parseValue(text: string, field: FieldSpec, expression: string): number {
  if (/^\d+$/.test(text)) {
    const value = Number(text)
    if (value < field.min || value > field.max) {
      throw new CronSyntaxError(expression, `${field.label} ${value} is out of range ${field.min}-${field.max}`)
    }
    return value
  }
  const index = field.names?.indexOf(text.toLowerCase()) ?? -1
  if (index === -1) throw new CronSyntaxError(expression, `${field.label} '${text}' is not a number${field.names ? ' or a name' : ''}`)
  return index + (field.nameBase ?? 0)
}

function parseField(text: string, field: FieldSpec, expression: string): Set<number> {
  const values = new Set<number>()
  for (const part of text.split(',')) {
    if (part === '') throw new CronSyntaxError(expression, `empty list item in the ${field.label} field`)
    const [range, stepText, extra] = part.split('/')
    if (extra !== undefined) throw new CronSyntaxError(expression, `'${part}': one step per item`)
    let low: number
    let high: number
    if (range === '*') {
      low = field.min
      high = field.max === 7 ? 6 : field.max
    } else {
      const bounds = range.split('-')
      if (bounds.length > 2 || bounds.some((b) => b === '')) throw new CronSyntaxError(expression, `'${part}' is not a value, a range or *`)
      low = parseValue(bounds[0], field, expression)
      high = bounds.length === 2 ? parseValue(bounds[1], field, expression) : low
      if (high < low) throw new CronSyntaxError(expression, `range '${range}' runs backwards`)
      // pg_cron (Vixie cron) takes a step only after * or a range, not after a single value
      if (stepText !== undefined && bounds.length === 1) {
        throw new CronSyntaxError(expression, `'${part}': a step needs * or a range before it (e.g. '${range}-${field.max === 7 ? 6 : field.max}/${stepText}')`)
      }
    }
    let step = 1
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) < 1) throw new CronSyntaxError(expression, `step '${stepText}' must be a positive number`)
      step = Number(stepText)
    }
    for (let v = low; v <= high; v += step) values.add(field.max === 7 && v === 7 ? 0 : v)
  }
  return values
}

/** Parses and validates an expression; throws CronSyntaxError (exit 2) with the reason. */
export function parseCron(expression: string, options: ParseOptions = {}): CronExpression {
  const source = expression.trim()
  if (source === '') throw new CronSyntaxError(expression, 'empty')
  if (source.startsWith('@')) {
    const macro = source.toLowerCase()
    if (macro === '@reboot') {
      const none = new Set<number>()
      return {source, reboot: true, minutes: none, hours: none, daysOfMonth: none, months: none, daysOfWeek: none, domStar: true, dowStar: true, lastDayOfMonth: false}
    }
    const expanded = MACROS[macro]
    if (!expanded) throw new CronSyntaxError(expression, `unknown macro ${source}`)
    return {...parseCron(expanded), source}
  }
  const parts = source.split(/\s+/)
  if (parts.length !== 5) {
    throw new CronSyntaxError(expression, `${parts.length} fields, expected 5${parts.length === 6 ? ' (pg_cron 1.4 has no seconds field)' : ''}`)
  }
  const lastDayOfMonth = parts[2] === '$'
  if (parts[2].includes('$') && !(lastDayOfMonth && options.lastDayOfMonth)) {
    throw new CronSyntaxError(
      expression,
      options.lastDayOfMonth ? "'$' (the last day of the month) stands alone in the day-of-month field" : "'$' (the last day of the month) needs pg_cron 1.6+",
    )
  }
  const [minutes, hours, daysOfMonth, months, daysOfWeek] = parts.map((p, i) => (i === 2 && lastDayOfMonth ? new Set<number>() : parseField(p, FIELDS[i], expression)))
  return {
    lastDayOfMonth,
    source,
    reboot: false,
    minutes,
    hours,
    daysOfMonth,
    months,
    daysOfWeek,
    domStar: parts[2].startsWith('*'),
    dowStar: parts[4].startsWith('*'),
  }
}

/** The expression's error message, or undefined when it is valid. */
export function cronError(expression: string): string | undefined {
  try {
    parseCron(expression)
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}

const DAY_MS = 86_400_000

function daysInMonth(date: Date): number {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate()
}

/**
 * Whether the (UTC or wall) date is a run day. `$` matches the last day; `loose` also lets the
 * day before it through, for a zone where pg_cron's "tomorrow is the 1st" (now + 24 h) can say
 * so a day early on a 23-hour day; matchesAt then judges the instant exactly.
 */
function dayMatches(cron: CronExpression, date: Date, loose = false): boolean {
  const day = date.getUTCDate()
  const last = cron.lastDayOfMonth && (loose ? day >= daysInMonth(date) - 1 : day === daysInMonth(date))
  const dom = last || cron.daysOfMonth.has(day)
  const dow = cron.daysOfWeek.has(date.getUTCDay())
  return cron.domStar || cron.dowStar ? dom && dow : dom || dow
}

/**
 * Whether the expression fires at this instant's minute in the zone, judged as pg_cron's
 * ShouldRunTask does: the wall-clock fields of the instant, and for `$` whether the wall date
 * 24 hours later is the 1st.
 */
function matchesAt(cron: CronExpression, instantMs: number, timeZone: string): boolean {
  const wall = wallTime(instantMs, timeZone)
  if (!cron.minutes.has(wall.getUTCMinutes()) || !cron.hours.has(wall.getUTCHours()) || !cron.months.has(wall.getUTCMonth() + 1)) return false
  const last = cron.lastDayOfMonth && wallTime(instantMs + DAY_MS, timeZone).getUTCDate() === 1
  const dom = last || cron.daysOfMonth.has(wall.getUTCDate())
  const dow = cron.daysOfWeek.has(wall.getUTCDay())
  return cron.domStar || cron.dowStar ? dom && dow : dom || dow
}

/** The expression parsed for evaluation (the newest pg_cron syntax); null when it cannot be. */
function evaluable(expression: CronExpression | string): CronExpression | null {
  if (typeof expression !== 'string') return expression
  try {
    return parseCron(expression, {lastDayOfMonth: true})
  } catch {
    return null
  }
}

/** Whether the expression fires at this minute (UTC). Never for @reboot. */
export function matches(expression: CronExpression | string, at: Date): boolean {
  const cron = typeof expression === 'string' ? parseCron(expression) : expression
  if (cron.reboot) return false
  return (
    cron.minutes.has(at.getUTCMinutes()) &&
    cron.hours.has(at.getUTCHours()) &&
    cron.months.has(at.getUTCMonth() + 1) &&
    dayMatches(cron, at)
  )
}

/** Search horizon: 28 years covers every day-of-week/leap-year combination. */
const HORIZON_YEARS = 28

/** The first wall minute strictly after `from` whose fields match (naive: no zone). */
function nextWallMatch(cron: CronExpression, from: Date, loose: boolean): Date | null {
  const t = new Date(Math.floor(from.getTime() / 60_000) * 60_000 + 60_000)
  const limit = from.getUTCFullYear() + HORIZON_YEARS
  while (t.getUTCFullYear() <= limit) {
    if (!cron.months.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1)
      t.setUTCHours(0, 0, 0, 0)
      continue
    }
    if (!dayMatches(cron, t, loose)) {
      t.setUTCDate(t.getUTCDate() + 1)
      t.setUTCHours(0, 0, 0, 0)
      continue
    }
    if (!cron.hours.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0)
      continue
    }
    if (!cron.minutes.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0)
      continue
    }
    return t
  }
  return null
}

/** How far back of `from`'s wall time a run can still lie ahead of `from` (a fall-back repeats up to this). */
const MAX_ZONE_SHIFT_MS = 3 * 3600_000
/** Same offset this far before and after `from`: no change of offset near it (zones change at most twice a year). */
const ZONE_STEADY_MS = 2 * DAY_MS

/**
 * The first minute strictly after `from` at which the expression fires; in UTC (GMT) unless
 * `options.timezone` names the zone pg_cron reads it in. Null for @reboot, for expressions that
 * never fire (e.g. `0 0 30 2 *`), and for what cannot be evaluated here (an interval schedule
 * such as '30 seconds', a zone this runtime does not know, a schedule no pg_cron accepts):
 * never throws for a string.
 */
export function nextRun(expression: CronExpression | string, from: Date = new Date(), options: NextRunOptions = {}): Date | null {
  const cron = evaluable(expression)
  if (!cron || cron.reboot) return null
  const zone = options.timezone
  if (isUtcZone(zone)) return nextWallMatch(cron, from, false)
  if (!isKnownTimeZone(zone!)) return null
  const fromMs = from.getTime()
  // walk wall-clock matches from `from`'s wall time; near a change of offset from a little before
  // it, since in a fall-back overlap an earlier wall time can still be a later instant
  const steady = zoneOffsetMs(fromMs - ZONE_STEADY_MS, zone!) === zoneOffsetMs(fromMs + ZONE_STEADY_MS, zone!)
  let wall: Date | null = new Date(wallTime(fromMs, zone!).getTime() - (steady ? 0 : MAX_ZONE_SHIFT_MS))
  const limit = from.getUTCFullYear() + HORIZON_YEARS
  while ((wall = nextWallMatch(cron, wall, true)) && wall.getUTCFullYear() <= limit) {
    for (const t of instantsAt(wall, zone!)) {
      if (t > fromMs && matchesAt(cron, t, zone!)) return new Date(t)
    }
  }
  return null
}

/**
 * The next run of a job whose command acts only on days 1..maxDayOfMonth (the "first Sunday of
 * the month" pattern: fire every Sunday, let the command check the date).
 */
export function nextEffectiveRun(expression: CronExpression | string, from: Date = new Date(), maxDayOfMonth?: number, options: NextRunOptions = {}): Date | null {
  const cron = evaluable(expression)
  if (!cron) return null
  let at: Date | null = nextRun(cron, from, options)
  if (maxDayOfMonth === undefined) return at
  const zone = options.timezone ?? 'GMT'
  for (let i = 0; at && i < 10_000; i++) {
    if (wallTime(at.getTime(), zone).getUTCDate() <= maxDayOfMonth) return at
    at = nextRun(cron, at, options)
  }
  return null
}

/**
 * The last minute at or before `at` at which the expression fired, searching back at most
 * `lookbackMinutes` (default 40 days); null when none.
 */
export function previousRun(expression: CronExpression | string, at: Date = new Date(), lookbackMinutes = 40 * 24 * 60): Date | null {
  const cron = typeof expression === 'string' ? parseCron(expression) : expression
  if (cron.reboot) return null
  const t = new Date(Math.floor(at.getTime() / 60_000) * 60_000)
  const stop = t.getTime() - lookbackMinutes * 60_000
  while (t.getTime() >= stop) {
    if (!cron.months.has(t.getUTCMonth() + 1) || !dayMatches(cron, t)) {
      // to the last minute of the previous day
      t.setUTCHours(0, 0, 0, 0)
      t.setTime(t.getTime() - 60_000)
      continue
    }
    if (!cron.hours.has(t.getUTCHours())) {
      t.setUTCMinutes(0, 0, 0)
      t.setTime(t.getTime() - 60_000)
      continue
    }
    if (!cron.minutes.has(t.getUTCMinutes())) {
      t.setTime(t.getTime() - 60_000)
      continue
    }
    return t
  }
  return null
}

/** How many times the expression fires in (after, until]; counting stops at `cap`. */
export function runsBetween(expression: CronExpression | string, after: Date, until: Date, cap = 1000): number {
  const cron = typeof expression === 'string' ? parseCron(expression) : expression
  let count = 0
  let at = nextRun(cron, after)
  while (at && at.getTime() <= until.getTime() && count < cap) {
    count++
    at = nextRun(cron, at)
  }
  return count
}
