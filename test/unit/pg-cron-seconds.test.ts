import {describe, expect, it} from 'vitest'

import {pgCronHasSeconds, SCHEDULES, schedulesForPgCron} from '../../src/schedules.js'

describe('the CDC bridge schedule follows the pg_cron version', () => {
  it('pg_cron 1.5 and later schedule in seconds; 1.4 does not', () => {
    expect(pgCronHasSeconds('1.4-1')).toBe(false)
    expect(pgCronHasSeconds('1.4.2')).toBe(false)
    expect(pgCronHasSeconds('1.5')).toBe(true)
    expect(pgCronHasSeconds('1.6.4')).toBe(true)
    expect(pgCronHasSeconds('2.0')).toBe(true)
    expect(pgCronHasSeconds(null)).toBe(false)
  })

  it('every minute on 1.4, every 5 seconds where seconds exist; other jobs unchanged', () => {
    const bridge = (version: string) => schedulesForPgCron(SCHEDULES, version).find((s) => s.name === 'cdc-bridge')!
    expect(bridge('1.4-1').schedule).toBe('* * * * *')
    expect(bridge('1.6').schedule).toBe('5 seconds')
    const others = (version: string) => schedulesForPgCron(SCHEDULES, version).filter((s) => s.name !== 'cdc-bridge').map((s) => s.schedule)
    expect(others('1.6')).toEqual(others('1.4-1'))
  })
})
