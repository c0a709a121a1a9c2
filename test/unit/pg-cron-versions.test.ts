import {describe, expect, it} from 'vitest'

import {ExitCode, UsageError} from '../../src/lib/cli/errors.js'
import {nextEffectiveRun, nextRun, parseCron} from '../../src/lib/cron/expression.js'
import {
  cronTimezoneFor,
  parsePgCronVersion,
  pgCronSupports,
  validateScheduleFor,
  validateSchedulesFor,
} from '../../src/lib/cron/pg-cron-version.js'
import {instantsAt, wallTime} from '../../src/lib/cron/timezone.js'
import type {ScheduleSpec} from '../../src/topology.js'

const at = (iso: string) => new Date(iso)
const runs = (expr: string, from: string, n: number, timezone?: string): string[] => {
  const out: string[] = []
  let t: Date | null = at(from)
  for (let i = 0; i < n && t; i++) {
    t = nextRun(expr, t, {timezone})
    if (t) out.push(t.toISOString())
  }
  return out
}

function refusal(version: string | null, schedule: string): UsageError {
  try {
    validateScheduleFor(version, schedule)
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    return error as UsageError
  }
  throw new Error(`expected ${JSON.stringify(schedule)} to be refused under pg_cron ${version}`)
}

describe('pg_cron versions: what each accepts (validateScheduleFor)', () => {
  it('reads extversion as pg_extension reports it', () => {
    expect(parsePgCronVersion('1.4-1')).toMatchObject({major: 1, minor: 4}) // pg_cron 1.4.x
    expect(parsePgCronVersion('1.5')).toMatchObject({major: 1, minor: 5})
    expect(parsePgCronVersion('1.6')).toMatchObject({major: 1, minor: 6})
    expect(parsePgCronVersion(null)).toBeNull()
    expect(parsePgCronVersion('devel')).toBeNull()
    expect(pgCronSupports('1.4-1', 'intervalSchedules')).toBe(false)
    expect(pgCronSupports('1.5', 'intervalSchedules')).toBe(true)
    expect(pgCronSupports('1.5', 'lastDayOfMonth')).toBe(false)
    expect(pgCronSupports('1.6', 'lastDayOfMonth')).toBe(true)
    expect(pgCronSupports('2.0', 'lastDayOfMonth')).toBe(true)
    expect(pgCronSupports(null, 'timezone')).toBe(false) // unknown is taken as 1.4
  })

  it.each(['1.4-1', '1.5', '1.6'])('%s accepts five-field expressions and the macros', (version) => {
    for (const s of ['*/5 * * * *', '0 5 1-7 * 0', '0 12 * * mon-fri', '@reboot', '@daily', '@hourly']) {
      expect(validateScheduleFor(version, s).kind, s).toBe('cron')
    }
  })

  it('macros as pg_cron reads them: lower case only, @restart is @reboot', () => {
    const restart = validateScheduleFor('1.4-1', '@restart')
    expect(restart.kind === 'cron' && restart.cron.reboot).toBe(true)
    expect(refusal('1.6', '@DAILY').code).toBe('BAD_CRON_EXPRESSION')
    expect(refusal('1.6', '@Reboot').hint).toBe('write @reboot')
  })

  it('1.4 refuses interval schedules and `$`, naming the version that accepts them (exit 2)', () => {
    for (const [schedule, needs] of [
      ['30 seconds', '1.5+'],
      ['1 second', '1.5+'],
      ['0 12 $ * *', '1.6+'],
    ] as const) {
      const error = refusal('1.4-1', schedule)
      expect(error.exitCode).toBe(ExitCode.usage)
      expect(error.code).toBe('PG_CRON_TOO_OLD')
      expect(error.message).toContain(`needs pg_cron ${needs}`)
      expect(error.message).toContain('this server has pg_cron 1.4')
      expect(error.message).not.toContain('\n')
      expect(error.hint).toMatch(/ALTER EXTENSION pg_cron UPDATE/)
    }
    // a plain syntax error stays a syntax error
    expect(refusal('1.4-1', '60 * * * *').code).toBe('BAD_CRON_EXPRESSION')
    expect(refusal('1.4-1', 'every minute').code).toBe('BAD_CRON_EXPRESSION')
  })

  it('1.5 accepts 1 to 59 seconds as pg_cron reads them, refuses `$`', () => {
    expect(validateScheduleFor('1.5', '30 seconds')).toEqual({kind: 'interval', source: '30 seconds', seconds: 30})
    expect(validateScheduleFor('1.5', '1 second')).toMatchObject({kind: 'interval', seconds: 1})
    expect(validateScheduleFor('1.5', '59 Seconds')).toMatchObject({kind: 'interval', seconds: 59})
    expect(validateScheduleFor('1.5', ' 5seconds ')).toMatchObject({kind: 'interval', seconds: 5})
    for (const s of ['0 seconds', '60 seconds', '90 seconds']) {
      const error = refusal('1.5', s)
      expect(error.code, s).toBe('BAD_CRON_EXPRESSION')
      expect(error.message).toContain('1 to 59 seconds')
    }
    for (const s of ['30 secs', '30 seconds later', '30 minutes', '-5 seconds']) expect(refusal('1.5', s).code, s).toBe('BAD_CRON_EXPRESSION')
    const dollar = refusal('1.5', '0 12 $ * *')
    expect(dollar.code).toBe('PG_CRON_TOO_OLD')
    expect(dollar.message).toContain('this server has pg_cron 1.5')
    // on 1.5+ a bad expression's hint mentions the interval form too
    expect(refusal('1.5', '* * * *').hint).toContain('30 seconds')
  })

  it('1.6 accepts `$` alone in the day-of-month field and intervals', () => {
    const last = validateScheduleFor('1.6', '0 12 $ * *')
    expect(last.kind === 'cron' && last.cron.lastDayOfMonth).toBe(true)
    expect(validateScheduleFor('1.6', '0 12 $ * 1').kind).toBe('cron')
    expect(validateScheduleFor('1.6', '10 seconds').kind).toBe('interval')
    for (const s of ['0 0 1,$ * *', '0 0 $-1 * *', '0 0 * * $', '$ * * * *']) expect(refusal('1.6', s).code, s).toBe('BAD_CRON_EXPRESSION')
    expect(refusal('1.6', '0 0 L * *').code).toBe('BAD_CRON_EXPRESSION') // Quartz's L is not pg_cron's
  })

  it('an unknown version is taken as 1.4 and says so', () => {
    const error = refusal(null, '30 seconds')
    expect(error.code).toBe('PG_CRON_TOO_OLD')
    expect(error.message).toContain('unknown version (taken as 1.4)')
  })

  it('validateSchedulesFor names the schedule and checks pg_cron schedules only', () => {
    const spec = (name: string, schedule: string, runner: ScheduleSpec['runner'] = 'pg_cron'): ScheduleSpec =>
      ({name, runner, schedule, database: 'singularity', command: 'SELECT 1', description: 'test schedule', source: 'test'}) as ScheduleSpec
    expect(() => validateSchedulesFor('1.5', [spec('fast', '30 seconds'), spec('a', '*/5 * * * *')])).not.toThrow()
    let error: UsageError | undefined
    try {
      validateSchedulesFor('1.4-1', [spec('a', '*/5 * * * *'), spec('fast', '30 seconds')])
    } catch (e) {
      error = e as UsageError
    }
    expect(error?.exitCode).toBe(ExitCode.usage)
    expect(error?.code).toBe('PG_CRON_TOO_OLD')
    expect(error?.message).toMatch(/^schedule fast: /)
    // Oban and system cron are not pg_cron's to judge
    expect(() => validateSchedulesFor('1.4-1', [spec('w', '0 0 $ * *', 'oban')])).not.toThrow()
  })

  it('without the 1.6 option, parseCron (Oban, the 1.4 baseline) refuses `$` with the reason', () => {
    expect(() => parseCron('0 12 $ * *')).toThrow(/needs pg_cron 1\.6\+/)
  })
})

describe('cron.timezone: which zone next runs are computed in', () => {
  it('GMT before 1.5 whatever the setting; the setting from 1.5 on, default GMT', () => {
    expect(cronTimezoneFor('1.4-1', 'Europe/Berlin')).toBe('GMT') // 1.4 has no such setting: a stray value is ignored
    expect(cronTimezoneFor('1.5', null)).toBe('GMT')
    expect(cronTimezoneFor('1.5', '')).toBe('GMT')
    expect(cronTimezoneFor('1.5', 'Europe/Berlin')).toBe('Europe/Berlin')
    expect(cronTimezoneFor('1.6', 'America/New_York')).toBe('America/New_York')
  })
})

describe('next runs under a time zone (hand-checked: Europe/Berlin is UTC+1, UTC+2 in summer)', () => {
  const BERLIN = 'Europe/Berlin'

  it('wall time and its instants around the 2025 changes (30 Mar 02:00 → 03:00, 26 Oct 03:00 → 02:00)', () => {
    expect(wallTime(at('2025-01-15T12:00:00Z').getTime(), BERLIN).toISOString()).toBe('2025-01-15T13:00:00.000Z')
    expect(wallTime(at('2025-07-15T12:00:00Z').getTime(), BERLIN).toISOString()).toBe('2025-07-15T14:00:00.000Z')
    expect(instantsAt(at('2025-03-30T02:30:00Z'), BERLIN)).toEqual([]) // 02:30 does not exist that night
    expect(instantsAt(at('2025-10-26T02:30:00Z'), BERLIN).map((t) => new Date(t).toISOString())).toEqual([
      '2025-10-26T00:30:00.000Z', // 02:30 CEST
      '2025-10-26T01:30:00.000Z', // 02:30 CET
    ])
  })

  it('a daily job at local midnight runs at 23:00 UTC in winter and 22:00 UTC in summer', () => {
    expect(nextRun('0 0 * * *', at('2025-01-01T00:00:00Z'), {timezone: BERLIN})?.toISOString()).toBe('2025-01-01T23:00:00.000Z')
    expect(nextRun('0 0 * * *', at('2025-07-01T00:00:00Z'), {timezone: BERLIN})?.toISOString()).toBe('2025-07-01T22:00:00.000Z')
    // the same expression in GMT (pg_cron 1.4, or 1.5+ without cron.timezone)
    expect(nextRun('0 0 * * *', at('2025-01-01T00:00:00Z'))?.toISOString()).toBe('2025-01-02T00:00:00.000Z')
    expect(nextRun('0 0 * * *', at('2025-01-01T00:00:00Z'), {timezone: 'GMT'})?.toISOString()).toBe('2025-01-02T00:00:00.000Z')
  })

  it('spring forward: a time the clock skips does not run that day (pg_cron judges each real minute)', () => {
    expect(runs('30 2 * * *', '2025-03-29T12:00:00Z', 2, BERLIN)).toEqual(['2025-03-31T00:30:00.000Z', '2025-04-01T00:30:00.000Z'])
    // 03:00 exists (the first minute of summer time), 01:00 too
    expect(runs('0 3 * * *', '2025-03-29T12:00:00Z', 2, BERLIN)).toEqual(['2025-03-30T01:00:00.000Z', '2025-03-31T01:00:00.000Z'])
    expect(runs('0 1 * * *', '2025-03-29T12:00:00Z', 1, BERLIN)).toEqual(['2025-03-30T00:00:00.000Z'])
    // every 30 minutes: no runs between 01:30 CET (00:30Z) and 03:00 CEST (01:00Z)
    expect(runs('*/30 * * * *', '2025-03-30T00:00:00Z', 3, BERLIN)).toEqual(['2025-03-30T00:30:00.000Z', '2025-03-30T01:00:00.000Z', '2025-03-30T01:30:00.000Z'])
  })

  it('fall back: a time the clock repeats runs twice', () => {
    expect(runs('30 2 * * *', '2025-10-25T12:00:00Z', 3, BERLIN)).toEqual([
      '2025-10-26T00:30:00.000Z', // 02:30 CEST
      '2025-10-26T01:30:00.000Z', // 02:30 CET, an hour later
      '2025-10-27T01:30:00.000Z',
    ])
    // from inside the first 02:xx hour, the repeated 02:30 is still ahead although its wall time is earlier
    expect(nextRun('30 2 * * *', at('2025-10-26T00:45:00Z'), {timezone: BERLIN})?.toISOString()).toBe('2025-10-26T01:30:00.000Z')
    expect(runs('0 12 * * *', '2025-10-25T00:00:00Z', 2, BERLIN)).toEqual(['2025-10-25T10:00:00.000Z', '2025-10-26T11:00:00.000Z'])
  })

  it('New York changes on other dates (9 Mar and 2 Nov 2025)', () => {
    expect(runs('0 9 * * *', '2025-03-08T00:00:00Z', 2, 'America/New_York')).toEqual(['2025-03-08T14:00:00.000Z', '2025-03-09T13:00:00.000Z'])
    expect(runs('0 9 * * *', '2025-11-01T00:00:00Z', 2, 'America/New_York')).toEqual(['2025-11-01T13:00:00.000Z', '2025-11-02T14:00:00.000Z'])
  })

  it('the zone path agrees with the GMT path in a zone that is always UTC+0 (Africa/Abidjan)', () => {
    const expressions = ['*/5 * * * *', '0 2 * * *', '0 0 * * 0', '0 5 1-7 * 0', '0 0 */2 * 1', '0 0 29 2 *', '0 0 $ * *', '@monthly', '0 0 30 2 *']
    for (let day = 0; day < 400; day += 7) {
      const from = new Date(Date.UTC(2025, 0, 1 + day, (day * 5) % 24, (day * 13) % 60))
      for (const e of expressions) expect(nextRun(e, from, {timezone: 'Africa/Abidjan'}), `${e} after ${from.toISOString()}`).toEqual(nextRun(e, from))
    }
  })

  it('`$`: the last day of the month, in GMT and in a zone', () => {
    expect(runs('0 0 $ * *', '2024-02-01T00:00:00Z', 3)).toEqual(['2024-02-29T00:00:00.000Z', '2024-03-31T00:00:00.000Z', '2024-04-30T00:00:00.000Z'])
    expect(runs('0 12 $ * *', '2025-02-01T00:00:00Z', 2, BERLIN)).toEqual(['2025-02-28T11:00:00.000Z', '2025-03-31T10:00:00.000Z'])
    // `$` with a restricted day of week is OR-ed like a number: Fri 31 Jan 2025, then Monday 3 Feb
    expect(runs('0 0 $ * 1', '2025-01-28T01:00:00Z', 2)).toEqual(['2025-01-31T00:00:00.000Z', '2025-02-03T00:00:00.000Z'])
    // pg_cron's test is "24 hours later is the 1st": before the 23-hour 31 Mar 2024 in Berlin,
    // 23:30 on the 30th already passes it, so the job runs on the 30th and on the 31st
    expect(runs('30 23 $ * *', '2024-03-30T00:00:00Z', 2, BERLIN)).toEqual(['2024-03-30T22:30:00.000Z', '2024-03-31T21:30:00.000Z'])
  })

  it('the first-Sunday check reads the date in the zone', () => {
    // Sunday 8 June 2025 00:30 in Berlin is 7 June in UTC: not the first week there, so the
    // next effective run is Sunday 6 July 00:30 CEST (a UTC date check would take 7 June 22:30Z)
    expect(nextEffectiveRun('30 0 * * 0', at('2025-06-02T00:00:00Z'), 7, {timezone: BERLIN})?.toISOString()).toBe('2025-07-05T22:30:00.000Z')
    expect(nextEffectiveRun('30 0 * * 0', at('2025-06-02T00:00:00Z'), 7)?.toISOString()).toBe('2025-07-06T00:30:00.000Z') // in GMT: 8 June is past the first week too
  })
})

describe('next runs never throw for a schedule they cannot evaluate', () => {
  it.each(['30 seconds', 'every minute', '0 0 1,$ * *', '', '@every 5m'])('%j has no next run', (schedule) => {
    expect(nextRun(schedule, at('2025-01-01T00:00:00Z'))).toBeNull()
    expect(nextEffectiveRun(schedule, at('2025-01-01T00:00:00Z'), 7)).toBeNull()
  })

  it('nor for a zone this runtime does not know (PostgreSQL also takes POSIX zone rules)', () => {
    expect(nextRun('0 0 * * *', at('2025-01-01T00:00:00Z'), {timezone: 'Mars/Olympus_Mons'})).toBeNull()
  })
})
