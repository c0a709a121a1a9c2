import {describe, expect, it} from 'vitest'

import {percentile, startDelayCheck} from '../../src/lib/doctor/capacity-checks.js'
import {plannedCronJobs} from '../../src/lib/cron/names.js'
import {busiestMinute, capacityReport, predictedLateStart} from '../../src/lib/reconcile/capacity.js'
import {SCHEDULES} from '../../src/schedules.js'
import {estate} from '../../src/topology.js'

const server = {maxConnections: 200, reservedConnections: 3, usedConnections: 10, cronMaxRunningJobs: 5, cronBackgroundWorkers: true}
const schedulesOf = (instances: number, staggered = true) => plannedCronJobs(estate({instances}), SCHEDULES, 'postgres').map((j) => (staggered ? j.schedule : j.spec.schedule))

describe('capacity: pg_cron jobs per minute and connections against the server', () => {
  it('finds the busiest minute of a week, counting interval jobs every minute and @reboot jobs apart', () => {
    expect(busiestMinute(['*/2 * * * *', '0 * * * *', '0 2 * * 0', '5 seconds', '@reboot'])).toEqual({jobs: 4, minute: 'Sun 02:00 UTC', atStartup: 1})
    expect(busiestMinute([])).toEqual({jobs: 0, minute: null, atStartup: 0})
  })

  it('staggering cuts the busiest minute of 60 instances from 722 jobs to 130', () => {
    expect(busiestMinute(schedulesOf(60, false)).jobs).toBe(722)
    expect(busiestMinute(schedulesOf(60)).jobs).toBe(130)
  })

  it('predicts the late start of the last job from the waves through the running slots', () => {
    expect(predictedLateStart(5, 5)).toBe(0)
    expect(predictedLateStart(6, 5)).toBeCloseTo(0.26)
    expect(predictedLateStart(252, 5)).toBeCloseTo(13)
  })

  it('one instance fits the local cluster; 20 instances outgrow max_connections; the cron warning follows the threshold', () => {
    expect(capacityReport(estate({instances: 1}), server, schedulesOf(1)).warnings).toEqual([])
    const twenty = capacityReport(estate({instances: 20}), server, schedulesOf(20))
    expect(twenty.connections.services).toBe(23 * 2 * 10)
    expect(twenty.warnings).toHaveLength(1)
    expect(twenty.warnings[0]).toMatch(/^the estate needs about 469 connections .* max_connections is 200 \(3 reserved/)
    const strict = capacityReport(estate({instances: 20}), server, schedulesOf(20), 1)
    expect(strict.warnings.some((w) => w.startsWith('48 pg_cron jobs of the estate can start in the same minute (Sun 00:00 UTC)'))).toBe(true)
    // without background workers each running job holds a connection, plus the launcher
    expect(capacityReport(estate({instances: 1}), {...server, cronBackgroundWorkers: false}, schedulesOf(1)).connections.jobs).toBe(6)
  })

  it('p95 interpolates as percentile_cont; the start-delay row warns only above its threshold', () => {
    expect(percentile([0, 0, 0, 4, 8], 0.95)).toBeCloseTo(7.2)
    expect(percentile([3], 0.95)).toBe(3)
    const delays = {runs: 20, p95Seconds: 8.1, worst: {minute: '2026-01-01 00:00 UTC', jobs: 15, maxDelaySeconds: 8.4}}
    expect(startDelayCheck(delays, 5).status).toBe('warn')
    expect(startDelayCheck(delays, 5).detail).toContain('2026-01-01 00:00 UTC: 15 job(s) due, the last 8.4 s late')
    expect(startDelayCheck(delays, 10).status).toBe('ok')
    expect(startDelayCheck({runs: 0, p95Seconds: null, worst: null}, 10).status).toBe('ok')
  })
})
