import {describe, expect, it} from 'vitest'

import {matches} from '../../src/lib/cron/expression.js'
import {plannedCronJobs} from '../../src/lib/cron/names.js'
import {validateScheduleFor} from '../../src/lib/cron/pg-cron-version.js'
import {PINNED_SPREAD_MINUTES, staggerIndex, staggerSchedule} from '../../src/lib/cron/stagger.js'
import {SCHEDULES} from '../../src/schedules.js'
import {estate} from '../../src/topology.js'

/** The minutes of one UTC day (2025-01-06, a Monday) at which an expression fires, as minute-of-day numbers. */
function firings(expression: string, day = '2025-01-06'): number[] {
  const start = Date.parse(`${day}T00:00:00Z`)
  const out: number[] = []
  for (let m = 0; m < 24 * 60; m++) if (matches(expression, new Date(start + m * 60_000))) out.push(m)
  return out
}

describe('staggered schedules: offsets of the instances’ copies', () => {
  it.each([
    // declared, offset index (instance - 1), staggered, offset in minutes
    ['*/2 * * * *', 0, '*/2 * * * *', 0],
    ['*/2 * * * *', 1, '1-59/2 * * * *', 1],
    ['*/2 * * * *', 2, '*/2 * * * *', 0],
    ['*/5 * * * *', 3, '3-59/5 * * * *', 3],
    ['*/5 * * * *', 7, '2-59/5 * * * *', 2],
    ['*/30 * * * *', 29, '29-59/30 * * * *', 29],
    ['0 * * * *', 0, '0 * * * *', 0],
    ['0 * * * *', 19, '19 * * * *', 19],
    ['0 * * * *', 61, '1 * * * *', 1],
    ['0 */6 * * *', 5, '5 */6 * * *', 5],
    ['0 */6 * * *', 65, '5 1-23/6 * * *', 65],
    ['0 2 * * *', 0, '0 2 * * *', 0],
    ['0 2 * * *', 3, '3 2 * * *', 3],
    ['0 2 * * *', 12, '2 2 * * *', 2],
    ['40 4 * * *', 9, '49 4 * * *', 9],
    ['55 4 * * *', 7, '57 4 * * *', 2], // never past minute 59: spread over 55..59
    ['17 * * * *', 4, '21 * * * *', 4], // a pinned minute of an hourly job
    ['0 3 * * 0', 1, '1 3 * * 0', 1],
    ['* * * * *', 5, '* * * * *', 0], // every minute: nothing to spread
    ['@reboot', 5, '@reboot', 0],
    ['5 seconds', 5, '5 seconds', 0],
    ['0,30 * * * *', 5, '0,30 * * * *', 0], // a list is left as declared
  ])('%s, index %i -> %s (+%i min)', (declared, index, schedule, offset) => {
    expect(staggerSchedule(declared, index)).toEqual({schedule, offsetMinutes: offset})
  })

  it('keeps each periodic job’s frequency, and n copies of a */n job take n different minutes', () => {
    for (const every of [2, 3, 5, 10, 15, 30]) {
      const declared = `*/${every} * * * *`
      const perDay = firings(declared).length
      const firstMinutes = new Set<number>()
      for (let k = 0; k < every; k++) {
        const {schedule} = staggerSchedule(declared, k)
        const runs = firings(schedule)
        expect(runs.length, `${schedule}`).toBe(perDay)
        firstMinutes.add(runs[0])
      }
      expect(firstMinutes.size).toBe(every)
    }
  })

  it('spreads hourly copies over the hour’s first minutes, one each, and keeps 6-hourly ones 4 a day', () => {
    const minutes = Array.from({length: 20}, (_, k) => firings(staggerSchedule('0 * * * *', k).schedule))
    for (const runs of minutes) expect(runs.length).toBe(24)
    expect(minutes.map((runs) => runs[0])).toEqual(Array.from({length: 20}, (_, k) => k))
    const sixHourly = Array.from({length: 100}, (_, k) => firings(staggerSchedule('0 */6 * * *', k).schedule))
    for (const runs of sixHourly) expect(runs.length).toBe(4)
    // 100 copies of a 6-hourly job: 100 different minutes of its period (60 in the first hour, 40 in the second)
    expect(new Set(sixHourly.map((runs) => runs[0])).size).toBe(100)
  })

  it('keeps a pinned time pinned, spread over at most ten minutes after it', () => {
    const starts = Array.from({length: 60}, (_, k) => firings(staggerSchedule('0 2 * * *', k).schedule))
    for (const runs of starts) expect(runs.length).toBe(1)
    const first = starts.map((runs) => runs[0])
    expect(Math.min(...first)).toBe(120)
    expect(Math.max(...first)).toBe(120 + PINNED_SPREAD_MINUTES - 1)
    expect(new Set(first).size).toBe(PINNED_SPREAD_MINUTES)
  })

  it('every staggered schedule of the seeds is one pg_cron 1.4 accepts', () => {
    for (const spec of SCHEDULES.filter((s) => s.runner === 'pg_cron')) {
      for (let k = 0; k < 100; k++) expect(() => validateScheduleFor('1.4', staggerSchedule(spec.schedule, k).schedule), `${spec.name} #${k}`).not.toThrow()
    }
  })

  it('plans instance n’s copy with offset index n - 1; one instance (and other kinds) as declared', () => {
    const twenty = plannedCronJobs(estate({instances: 20}), SCHEDULES, 'postgres')
    const assign = twenty.filter((j) => j.spec.name === 'assign-tasks')
    expect(assign).toHaveLength(20)
    expect(assign.map((j) => j.schedule)).toEqual(Array.from({length: 20}, (_, k) => (k % 2 === 0 ? '*/2 * * * *' : '1-59/2 * * * *')))
    expect(twenty.filter((j) => j.database === 'shared_queue').every((j) => j.offsetMinutes === 0 && j.schedule === j.spec.schedule)).toBe(true)
    const single = plannedCronJobs(estate({instances: 1}), SCHEDULES, 'postgres')
    expect(single.every((j) => j.schedule === j.spec.schedule && j.offsetMinutes === 0)).toBe(true)
    expect(staggerIndex(undefined)).toBe(0)
    expect(staggerIndex(3)).toBe(2)
  })
})
