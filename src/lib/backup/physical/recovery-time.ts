import {UsageError} from '../../cli/errors.js'

export interface RecoveryTime {
  /** for comparisons (millisecond precision) */
  date: Date
  /** what PostgreSQL and pgBackRest are given: the user's instant to the microsecond, in UTC */
  target: string
}

const PATTERN = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?$/i

/**
 * Parses a --to-time: ISO 8601 or PostgreSQL's text form (`2026-11-25 10:59:00.123456+00`), UTC
 * when no zone is given. Microseconds are kept: a mark taken with now() between two transactions
 * must fall between them, and rounding to milliseconds could move it before the first.
 */
export function parseRecoveryTime(text: string): RecoveryTime {
  const m = PATTERN.exec(text.trim())
  if (!m) {
    throw new UsageError(`invalid --to-time '${text.slice(0, 60)}'`, {hint: "a timestamp such as '2026-11-25 10:59:00+00' or 2026-11-25T10:59:00Z (UTC when no zone is given)", code: 'BAD_TIME'})
  }
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m
  let offsetMinutes = 0
  if (!/^(z|utc)$/i.test(zone)) {
    const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!
    offsetMinutes = (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3] ?? 0))
  }
  const micros = Number(frac.padEnd(6, '0'))
  const utcMs = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - offsetMinutes * 60_000
  const date = new Date(utcMs + Math.floor(micros / 1000))
  const fields = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)))
  const valid = fields.getUTCFullYear() === Number(y) && fields.getUTCMonth() === Number(mo) - 1 && fields.getUTCDate() === Number(d) && fields.getUTCHours() === Number(h) && fields.getUTCMinutes() === Number(mi)
  if (Number.isNaN(date.getTime()) || !valid) {
    throw new UsageError(`invalid --to-time '${text.slice(0, 60)}': no such date`, {code: 'BAD_TIME'})
  }
  const base = new Date(utcMs)
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  const target = `${base.getUTCFullYear()}-${pad(base.getUTCMonth() + 1)}-${pad(base.getUTCDate())} ${pad(base.getUTCHours())}:${pad(base.getUTCMinutes())}:${pad(base.getUTCSeconds())}.${pad(micros, 6)}+00`
  return {date, target}
}
