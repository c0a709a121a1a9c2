import {describe, expect, it} from 'vitest'

import {resolveJobAlias} from '../../src/lib/cron/names.js'
import {SCHEDULES, SEED_JOB_ALIASES} from '../../src/schedules.js'

describe("the seeds' job names as aliases", () => {
  it('every alias names a declared schedule', () => {
    for (const [alias, {name}] of Object.entries(SEED_JOB_ALIASES)) {
      expect(SCHEDULES.some((s) => s.name === name), `${alias} -> ${name}`).toBe(true)
      expect(SCHEDULES.some((s) => s.name === alias), `${alias} is not also one of ours`).toBe(false)
    }
  })

  it('resolves the names seeds 000 and 001 use', () => {
    expect(resolveJobAlias('learn-patterns-every-5min', SCHEDULES)).toEqual({name: 'learn-patterns', alias: 'learn-patterns-every-5min', source: 'seed 000'})
    expect(resolveJobAlias('sync-learning-every-10min', SCHEDULES)).toMatchObject({name: 'sync-learning'})
    expect(resolveJobAlias('daily-vacuum-analyze', SCHEDULES)).toEqual({name: 'vacuum-analyze', alias: 'daily-vacuum-analyze', source: 'seed 001'})
  })

  it('keeps our job-name head and an instance tail', () => {
    expect(resolveJobAlias('singularity:learn-patterns-every-5min', SCHEDULES).name).toBe('singularity:learn-patterns')
    expect(resolveJobAlias('singularity:t_x_daily-vacuum-analyze:2', SCHEDULES, 't_x_').name).toBe('singularity:t_x_vacuum-analyze:2')
    expect(resolveJobAlias('daily-vacuum-analyze:2', SCHEDULES, 'p_').name).toBe('singularity:p_vacuum-analyze:2')
  })

  it('passes other names through unchanged', () => {
    expect(resolveJobAlias('learn-patterns', SCHEDULES)).toEqual({name: 'learn-patterns'})
    expect(resolveJobAlias('Singularity.Jobs.CacheClearWorker', SCHEDULES)).toEqual({name: 'Singularity.Jobs.CacheClearWorker'})
    expect(resolveJobAlias('no-such-job', SCHEDULES)).toEqual({name: 'no-such-job'})
  })
})
